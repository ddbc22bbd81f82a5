"""Every option of every group survives a smoke run through the real `dltrain` command."""

import json
import shutil

import pytest

from dltrain.checkpoints import unsafe_globals
from tests.conftest import REPO, read_metrics, run_dirs
from tests.datasets import write_cifar10, write_csv, write_image_folder, write_mnist


def assert_multirun(dltrain, *args, jobs: int):
    """Run a multirun of smoke runs; every job must leave a complete run directory."""
    result = dltrain("fit", "-m", "trainer=smoke", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    found = run_dirs(dltrain.cwd / "runs")
    assert len(found) == jobs
    for job in found:
        metrics = read_metrics(job)
        assert 0 <= metrics["test/acc"] <= 1 and len(metrics["test/confusion_matrix"]) >= 2
        for checkpoint in ("best.ckpt", "last.ckpt"):  # data only: weights_only loading reads it
            assert unsafe_globals(job / "checkpoints" / checkpoint) == [], (job, checkpoint)
    return found


def test_every_optimizer_schedule_and_regularization_bundle(dltrain):
    assert_multirun(dltrain, "optim=adam,adamw,sgd,rmsprop", "model=mlp", jobs=4)
    assert_multirun(
        dltrain, "sched=none,step,exponential,cyclic,cosine,onecycle,plateau", "model=mlp", jobs=11
    )
    assert_multirun(
        dltrain, "regularization=none,default,l1,l2,dropout,strong", "model=mlp", jobs=17
    )


def test_every_model_and_augmentation(dltrain):
    assert_multirun(dltrain, "model=mlp,cnn,resnet", "augment=none,light,strong", jobs=9)
    assert_multirun(dltrain, "data=digits_seq", "model=rnn", "model.cell=lstm,gru", jobs=11)


def test_every_source_with_files_in_its_own_format(dltrain):
    data_dir = dltrain.cwd / "data"
    write_mnist(data_dir / "mnist")
    write_mnist(data_dir / "fashion_mnist", gzipped=False)
    write_cifar10(data_dir / "cifar10" / "cifar-10-batches-py")
    found = assert_multirun(
        dltrain,
        "data=digits,digits_seq,synthetic,mnist,fashion_mnist,cifar10",
        "model=mlp",
        "data.batch_size=16",
        jobs=6,
    )
    class_names = [read_metrics(job)["class_names"] for job in found]
    assert class_names[4][0] == "T-shirt/top" and class_names[5][0] == "airplane"

    write_image_folder(data_dir / "pets")
    write_csv(data_dir / "iris.csv")
    image = dltrain("fit", "trainer=smoke", "data=image_folder", f"data.path={data_dir / 'pets'}",
                    "data.num_workers=1", "data.batch_size=8", "augment=light",
                    "hydra.run.dir=image_run")  # fmt: skip
    assert image.returncode == 0, image.stderr[-3000:]
    table = dltrain("fit", "trainer=smoke", "data=csv", f"data.path={data_dir / 'iris.csv'}",
                    "data.label_column=species", "model=mlp", "data.batch_size=16", "hydra.run.dir=csv_run")  # fmt: skip
    assert table.returncode == 0, table.stderr[-3000:]
    assert read_metrics(dltrain.cwd / "image_run")["class_names"] == ["cat", "dog", "fox"]
    csv_run = dltrain.cwd / "csv_run"
    assert read_metrics(csv_run)["class_names"] == ["setosa", "versicolor", "virginica"]
    assert json.loads((csv_run / "data.json").read_text())["input_shape"] == [3]


def test_experiments_run(dltrain):
    data_dir = dltrain.cwd / "data"
    write_mnist(data_dir / "mnist")
    write_cifar10(data_dir / "cifar10" / "cifar-10-batches-py")
    experiments = (
        "digits_cnn,digits_mlp,digits_rnn,digits_imbalanced,digits_fast,mnist_cnn,cifar10_resnet"
    )
    assert_multirun(dltrain, f"experiment={experiments}", "data.batch_size=16", jobs=7)


def test_missing_dataset_files_exit_2_saying_where_to_put_them(dltrain):
    result = dltrain("fit", "data=mnist", "trainer=smoke")
    assert result.returncode == 2
    assert "train-images-idx3-ubyte.gz" in result.stderr and "data/mnist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_users_own_net_from_the_working_directory_trains(dltrain):
    shutil.copy(REPO / "tests" / "custom_net.py", dltrain.cwd / "my_nets.py")
    result = dltrain("fit", "trainer=smoke", "model=custom", "model.net._target_=my_nets.TinyNet")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = run_dirs(dltrain.cwd / "runs")
    assert "my_nets.TinyNet" in (run / "config.yaml").read_text()


@pytest.mark.slow
def test_balanced_class_weights_raise_macro_f1_on_imbalanced_digits(dltrain):
    scores = {}
    for weights in ("balanced", "null"):
        result = dltrain("fit", "experiment=digits_imbalanced", "data.imbalance.keep=0.05",
                         f"loss.class_weights={weights}", "trainer.max_epochs=15")  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        scores[weights] = read_metrics(run_dirs(dltrain.cwd / "runs")[-1])["test/f1"]
    assert scores["balanced"] > scores["null"] + 0.05, scores
