"""Every option of every group survives a smoke run through the real `dltrain` command."""

import csv
import json
import shutil

import pytest
import torch
import yaml

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


def choice(job, group):
    """The option a multirun job ran with (group=option in its overrides)."""
    overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
    return next(o.split("=", 1)[1] for o in overrides if o.startswith(f"{group}="))


def learning_rates(job):
    with (job / "metrics.csv").open() as file:
        return [float(row["lr"]) for row in csv.DictReader(file)]


def first_param_group(job):
    checkpoint = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["optimizer_states"][0]["param_groups"][0]


def test_every_optimizer_schedule_and_regularization_bundle_takes_effect(dltrain):
    # The optimizer's class shows in its state: keys only it has, and AdamW's decoupled decay.
    for job in assert_multirun(dltrain, "optim=adam,adamw,sgd,rmsprop", "model=mlp", jobs=4):
        group, option = first_param_group(job), choice(job, "optim")
        assert {"adam": "betas" in group and not group["decoupled_weight_decay"],
                "adamw": "betas" in group and group["decoupled_weight_decay"],
                "sgd": "nesterov" in group, "rmsprop": "alpha" in group}[option], (option, group)  # fmt: skip

    # Each schedule's shape in metrics.csv's lr column over 6 epochs of 2 steps.
    six = ["model=mlp", "trainer.max_epochs=6", "regularization.early_stopping=null"]
    found = assert_multirun(dltrain, "sched=none,exponential,cosine,onecycle,plateau", *six, jobs=9)
    for job in found[4:]:
        lr, option = learning_rates(job), choice(job, "sched")
        assert len(lr) == 6, option
        falling = all(b < a for a, b in zip(lr, lr[1:], strict=False))
        peak = lr.index(max(lr))
        assert {"none": len(set(lr)) == 1, "plateau": len(set(lr)) == 1,
                "exponential": falling and lr[1] == pytest.approx(0.9 * lr[0]),
                "cosine": falling and lr[-1] < 0.1 * lr[0],
                "onecycle": 0 < peak < 5 and lr[0] < lr[peak] / 10}[option], (option, lr)  # fmt: skip
    for sched, extra in (("step", "sched.scheduler.step_size=2"),
                         ("cyclic", "sched.scheduler.step_size_up=2")):  # fmt: skip
        result = dltrain(
            "fit", "trainer=smoke", *six, f"sched={sched}", extra, f"hydra.run.dir={sched}"
        )
        assert result.returncode == 0, result.stderr[-3000:]
        lr = learning_rates(dltrain.cwd / sched)
        if sched == "step":
            assert lr == pytest.approx([0.003, 0.003, 9e-4, 9e-4, 2.7e-4, 2.7e-4]), lr
        else:  # up for 2 steps, down for 2: each epoch starts at the other end
            assert lr == pytest.approx([1e-4, 0.003] * 3), lr

    # L2 reaches the optimizer's weight groups; biases and norms are never decayed.
    bundles = assert_multirun(dltrain, "regularization=none,default,l1,l2,dropout,strong", "model=mlp",
                              jobs=15)  # fmt: skip
    decay = {"none": 0.0, "default": 1e-4, "l1": 0.0, "l2": 5e-4, "dropout": 0.0, "strong": 5e-4}
    for job in bundles[9:]:
        option = choice(job, "regularization")
        assert first_param_group(job)["weight_decay"] == pytest.approx(decay[option]), option


def test_l1_reaches_the_loss(dltrain):
    """Same seed, same batches: the L1 penalty alone shrinks the weights."""
    sizes = {}
    for l1 in (0.0, 0.05):
        run = f"l1_{l1}"
        result = dltrain("fit", "trainer=smoke", "model=mlp", "regularization=none",
                         f"regularization.l1={l1}", f"hydra.run.dir={run}")  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        state = torch.load(dltrain.cwd / run / "checkpoints" / "last.ckpt", weights_only=True)
        sizes[l1] = sum(v.abs().sum() for k, v in state["state_dict"].items()
                        if k.startswith("net.") and k.endswith("weight") and v.ndim > 1)  # fmt: skip
    assert sizes[0.05] < sizes[0.0], sizes


def test_every_model_and_augmentation(dltrain):
    found = assert_multirun(dltrain, "model=mlp,cnn,resnet", "augment=none,light,strong", jobs=9)
    # Augmentation changes what training sees: the same seed and batches give another
    # training loss (evaluation is never augmented).
    for model in ("mlp", "cnn", "resnet"):
        jobs = [job for job in found if choice(job, "model") == model]
        losses = {choice(job, "augment"): learning_curve(job)["train/loss"] for job in jobs}
        assert len(set(losses.values())) == 3, (model, losses)
    assert_multirun(dltrain, "data=digits_seq", "model=rnn", "model.cell=lstm,gru", jobs=11)


def learning_curve(job):
    with (job / "metrics.csv").open() as file:
        return {k: float(v) for k, v in list(csv.DictReader(file))[-1].items() if v}


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
    # The user's net was built and trained: its own parameter names and shapes are saved.
    state = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    weights = {k: tuple(v.shape) for k, v in state.items() if k.startswith("net.")}
    assert weights == {"net.layers.1.weight": (10, 64), "net.layers.1.bias": (10,)}


@pytest.mark.slow
def test_balanced_class_weights_raise_macro_f1_on_imbalanced_digits(dltrain):
    scores = {}
    for weights in ("balanced", "null"):
        result = dltrain("fit", "experiment=digits_imbalanced", "data.imbalance.keep=0.05",
                         f"loss.class_weights={weights}", "trainer.max_epochs=15")  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        scores[weights] = read_metrics(run_dirs(dltrain.cwd / "runs")[-1])["test/f1"]
    assert scores["balanced"] > scores["null"] + 0.05, scores
