"""Using a run: test, predict, resume, finders, plots, export, check, config, user configs."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import read_metrics, run_dirs, run_dltrain

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short real fit (2 epochs over all of digits) shared by this module's tests."""
    cwd = tmp_path_factory.mktemp("trained")
    result = run_dltrain("fit", "trainer.max_epochs=2", "hydra.run.dir=run", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, cwd / "run"


def only_run(root):
    [run] = run_dirs(root)
    return run


def test_fit_writes_readable_plots(trained):
    _, run = trained
    for name in ("learning_curves.png", "confusion_matrix.png"):
        data = (run / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name


def test_test_command_reproduces_the_fit_figures(trained):
    cwd, run = trained
    result = run_dltrain("test", "run=run", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    fitted, tested = read_metrics(run), read_metrics(only_run(cwd / "runs" / "test"))
    for key in ("test/acc", "test/precision", "test/recall", "test/f1", "test/loss"):
        assert tested[key] == pytest.approx(fitted[key], abs=1e-6), key
    assert tested["test/confusion_matrix"] == fitted["test/confusion_matrix"]
    other = run_dltrain("test", "run=run", "ckpt_path=run/checkpoints/last.ckpt",
                        "data.batch_size=50", "hydra.run.dir=test_last", cwd=cwd)  # fmt: skip
    assert other.returncode == 0, other.stderr[-3000:]
    assert read_metrics(cwd / "test_last")["checkpoint"].endswith("last.ckpt")


def test_test_command_needs_a_run_directory(tmp_path):
    result = run_dltrain("test", "run=nowhere", cwd=tmp_path)
    assert result.returncode == 2 and "not a run directory" in result.stderr


def read_predictions(path):
    with path.open() as file:
        return list(csv.DictReader(file))


def test_predict_on_an_array_and_on_image_files(trained):
    from PIL import Image
    from sklearn.datasets import load_digits

    cwd, _ = trained
    digits = load_digits()
    np.save(cwd / "five.npy", digits.images[:5, None].astype(np.float32))
    result = run_dltrain("predict", "run=run", "input=five.npy", "hydra.run.dir=pred_npy", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_predictions(cwd / "pred_npy" / "predictions.csv")
    assert len(rows) == 5 and rows[0]["source"] == "five.npy[0]"
    assert abs(sum(float(rows[0][f"p_{d}"]) for d in range(10)) - 1) < 1e-4
    assert (
        sum(row["predicted"] == str(t) for row, t in zip(rows, digits.target[:5], strict=True)) >= 3
    )

    # A one-channel model also takes [N, H, W] and a single [H, W] image, same predictions.
    np.save(cwd / "five_hw.npy", digits.images[:5].astype(np.float32))
    np.save(cwd / "one_hw.npy", digits.images[0].astype(np.float32))
    for name, count in (("five_hw", 5), ("one_hw", 1)):
        result = run_dltrain("predict", "run=run", f"input={name}.npy", f"hydra.run.dir=pred_{name}",
                             cwd=cwd)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        same = read_predictions(cwd / f"pred_{name}" / "predictions.csv")
        assert [r["predicted"] for r in same] == [r["predicted"] for r in rows[:count]]
        assert same[0]["p_0"] == rows[0]["p_0"]

    folder = cwd / "pngs"
    folder.mkdir()
    for i in range(3):  # the same images as 8-bit grayscale PNGs (0-16 scaled as in the data)
        Image.fromarray(digits.images[i].astype(np.uint8), "L").save(folder / f"{i}.png")
    result = run_dltrain("predict", "run=run", "input=pngs", "hydra.run.dir=pred_png", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    png_rows = read_predictions(cwd / "pred_png" / "predictions.csv")
    assert [row["source"].rsplit("/", 1)[1] for row in png_rows] == ["0.png", "1.png", "2.png"]
    # The same pixels as files: the same classes and probabilities as the array gave.
    for png, array in zip(png_rows, rows[:3], strict=True):
        assert png["predicted"] == array["predicted"]
        assert all(float(png[f"p_{d}"]) == pytest.approx(float(array[f"p_{d}"]), abs=1e-5)
                   for d in range(10))  # fmt: skip

    bad = run_dltrain("predict", "run=run", "input=five.npy.missing", cwd=cwd)
    assert bad.returncode == 2 and "no such file" in bad.stderr


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_reproduces_the_pytorch_outputs(trained, fmt):
    cwd, run = trained
    result = run_dltrain(
        "export", "run=run", f"format={fmt}", f"hydra.run.dir=export_{fmt}", cwd=cwd
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((cwd / f"export_{fmt}" / "export.json").read_text())
    assert report["max_abs_difference"] < 1e-4 and report["batch"] >= 1
    # Read back independently, at two batch sizes, against the checkpoint's own outputs.
    from omegaconf import OmegaConf
    from sklearn.datasets import load_digits

    from dltrain.tasks.saved_run import load_model

    model = load_model(
        OmegaConf.load(run / ".hydra" / "config.yaml"), run / "checkpoints" / "best.ckpt"
    )
    path = cwd / f"export_{fmt}" / ("model.onnx" if fmt == "onnx" else "model.pt")
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))

        def exported(x):
            return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])

    else:
        exported = torch.jit.load(str(path))
    images = torch.as_tensor(load_digits().images[:, None], dtype=torch.float32)
    for batch in (images[:1], images[:7]):
        with torch.no_grad():
            assert torch.allclose(exported(batch), model(batch), atol=1e-4)


def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    # A per-epoch step schedule and dropout: a lost scheduler or RNG state would show.
    common = ["sched=step", "sched.scheduler.step_size=1", "sched.scheduler.gamma=0.5",
              "regularization=dropout", "trainer.limit_train_batches=5"]  # fmt: skip
    straight = run_dltrain(
        "fit", *common, "trainer.max_epochs=3", "hydra.run.dir=straight", cwd=tmp_path
    )
    first = run_dltrain(
        "fit", *common, "trainer.max_epochs=2", "hydra.run.dir=resumed", cwd=tmp_path
    )
    resumed = run_dltrain("fit", "resume=resumed", "trainer.max_epochs=3", cwd=tmp_path)
    for result in (straight, first, resumed):
        assert result.returncode == 0, result.stderr[-3000:]
    assert read_metrics(tmp_path / "straight") == read_metrics(tmp_path / "resumed")
    weights = [torch.load(tmp_path / d / "checkpoints/last.ckpt", weights_only=False)["state_dict"]
               for d in ("straight", "resumed")]  # fmt: skip
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    with (tmp_path / "resumed" / "metrics.csv").open() as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["0", "1", "2"]
    assert not (tmp_path / "runs").exists()  # resumed in place, no new directory


def test_resuming_with_more_epochs_stretches_the_schedule(tmp_path):
    """A cosine schedule over 2 epochs, resumed to 4: epochs 2 and 3 follow the 4-epoch
    cosine (it used to rise again after its old end)."""
    quick = ["trainer.limit_train_batches=2", "baseline=none"]
    first = run_dltrain("fit", *quick, "trainer.max_epochs=2", "hydra.run.dir=run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_dltrain("fit", "resume=run", "trainer.max_epochs=4", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "the schedule spans 4 epochs now (it spanned 2)" in resumed.stdout
    with (tmp_path / "run" / "metrics.csv").open() as file:
        lrs = [float(row["lr"]) for row in csv.DictReader(file)]
    cosine = [0.003 * (1 + math.cos(math.pi * e / 4)) / 2 for e in (2, 3)]
    assert lrs[:2] == pytest.approx([0.003, 0.0015])  # the first run's 2-epoch cosine
    assert lrs[2:] == pytest.approx(cosine)


def test_resume_needs_a_checkpoint(tmp_path):
    (tmp_path / "half" / ".hydra").mkdir(parents=True)
    (tmp_path / "half" / ".hydra" / "config.yaml").write_text("{}")
    result = run_dltrain("fit", "resume=half", cwd=tmp_path)
    assert result.returncode == 2 and "last.ckpt" in result.stderr


def test_finders_and_auto_values(dltrain):
    # data.batch_size=auto sets the data up with a provisional size (it used to crash find-lr).
    lr = dltrain("find-lr", "lr_finder.num_training=30", "data.batch_size=auto", "hydra.run.dir=lr")
    assert lr.returncode == 0, lr.stderr[-3000:]
    suggested = json.loads((dltrain.cwd / "lr" / "lr_finder.json").read_text())["suggested_lr"]
    # Adam on digits trains well from 3e-4 to 3e-2 (the default 3e-3 is in the middle): a
    # finder that returned its search bounds (1e-6, 1) or an edge of a flat curve would not.
    assert 3e-4 <= suggested <= 3e-2 and "dltrain fit optim.lr=" in lr.stdout
    assert (dltrain.cwd / "lr" / "plots" / "lr_finder.png").read_bytes().startswith(PNG_MAGIC)

    size = dltrain("find-batch-size", "batch_size_finder.memory_budget_mb=1", "hydra.run.dir=bs")
    assert size.returncode == 0, size.stderr[-3000:]
    found = json.loads((dltrain.cwd / "bs" / "batch_size.json").read_text())
    assert found["batch_size"] >= 1 and found["estimated_mb"] <= 1
    dltrain("find-batch-size", "hydra.run.dir=bs2")
    assert (
        json.loads((dltrain.cwd / "bs2" / "batch_size.json").read_text())["batch_size"]
        > found["batch_size"]
    )

    auto = dltrain("fit", "trainer=smoke", "optim.lr=auto", "data.batch_size=auto",
                   "lr_finder.num_training=20", "hydra.run.dir=auto")  # fmt: skip
    assert auto.returncode == 0, auto.stderr[-3000:]
    saved = (dltrain.cwd / "auto" / ".hydra" / "overrides.yaml").read_text()
    assert "optim.lr=auto" not in saved and "optim.lr=" in saved and "data.batch_size=" in saved
    resolved = yaml.safe_load((dltrain.cwd / "auto" / "config.yaml").read_text())
    assert isinstance(resolved["optim"]["lr"], float)
    assert isinstance(resolved["data"]["batch_size"], int)


def test_config_prints_the_resolved_config_and_the_groups(dltrain):
    result = dltrain("config", "model=mlp", "optim.lr=0.05")
    assert result.returncode == 0 and "MLP" in result.stdout and "0.05" in result.stdout
    assert not (dltrain.cwd / "runs").exists()
    groups = dltrain("config", "--groups")
    assert "cnn (default)" in groups.stdout and "onecycle" in groups.stdout
    bad = dltrain("config", "optim.lr=-1")
    assert bad.returncode == 2 and "optim.lr=-1" in bad.stderr


def test_a_user_project_with_its_own_configs_is_checked(dltrain):
    project = dltrain.cwd
    (project / "configs" / "experiment").mkdir(parents=True)
    (project / "configs" / "experiment" / "small_mlp.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: mlp\nmodel:\n  hidden: [16]\n"
    )
    (project / "dltrain" / "model").mkdir(parents=True)  # ./dltrain/ is searched too
    (project / "dltrain" / "model" / "wide.yaml").write_text(
        "net:\n  _target_: dltrain.models.mlp.MLP\nhidden: [128]\nbatchnorm: false\n"
    )
    fit = dltrain("fit", "--config-dir", "configs", "experiment=small_mlp", "trainer=smoke",
                  "hydra.run.dir=small")  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "- 16" in (project / "small" / "config.yaml").read_text()
    wide = dltrain("fit", "model=wide", "trainer=smoke", "hydra.run.dir=wide")
    assert wide.returncode == 0, wide.stderr[-3000:]
    assert "- 128" in (project / "wide" / "config.yaml").read_text()

    good = dltrain("check", "--config-dir", "configs")  # the project's own experiments only
    assert good.returncode == 0, good.stdout[-3000:]
    assert "small_mlp" in good.stdout and "ok" in good.stdout and "digits_cnn" not in good.stdout
    # An experiment whose data files are absent (here, MNIST's) shows "no data" and passes.
    (project / "configs" / "experiment" / "on_mnist.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /data: mnist\n"
    )
    absent = dltrain("check", "--config-dir", "configs", "on_mnist", "small_*")
    assert absent.returncode == 0, absent.stdout[-3000:]
    line = next(row for row in absent.stdout.splitlines() if "on_mnist" in row)
    assert "no data" in line
    (project / "configs" / "experiment" / "on_mnist.yaml").unlink()
    both = dltrain("check", "--config-dir", "configs", "--all", "small_*", "digits_mlp")
    assert both.returncode == 0 and "small_mlp" in both.stdout and "digits_mlp" in both.stdout
    (project / "configs" / "experiment" / "broken.yaml").write_text(
        "# @package _global_\noptim:\n  lr: -1\n"
    )
    bad = dltrain("check", "--config-dir", "configs", "small_*", "broken")
    assert bad.returncode == 1 and "failed: broken" in bad.stdout


def test_the_csv_logger_writes_its_metrics(dltrain):
    result = dltrain(
        "fit", "trainer=smoke", "trainer.max_epochs=2", "logger=csv", "hydra.run.dir=run"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [logged] = (dltrain.cwd / "run" / "logs").rglob("metrics.csv")
    with logged.open() as file:
        rows = list(csv.DictReader(file))
    epochs = {row["epoch"] for row in rows if row.get("val/acc")}
    assert {"0", "1"} <= epochs and any(row.get("train/loss") for row in rows)


def test_help_of_every_command_is_quick_and_complete():
    for command in ("test", "predict", "export", "find-lr", "find-batch-size"):
        result = subprocess.run([sys.executable, "-m", "dltrain", command, "--help"],
                                capture_output=True, text=True)  # fmt: skip
        assert result.returncode == 0 and "Config groups" in result.stdout, command
