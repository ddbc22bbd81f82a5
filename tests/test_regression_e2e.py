"""problem=regression end to end: fit, test, predict, export, a sweep, the report, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dltrain.checkpoints import load_checkpoint, unsafe_globals
from tests.conftest import read_metrics, run_dltrain


def write_prices(path: Path, rows: int = 300, seed: int = 0) -> None:
    """price = 1000 + 300 * size + 500 (city == rome) + noise; size has gaps, city is text."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["size", "city", "price"])
        for _ in range(rows):
            size, city = rng.uniform(1, 5), rng.choice(["paris", "rome"])
            price = 1000 + 300 * size + 500 * (city == "rome") + rng.normal(0, 30)
            writer.writerow(["" if rng.random() < 0.05 else f"{size:.3f}", city, f"{price:.2f}"])


REGRESSION = ("problem=regression", "data=csv", "data.path=prices.csv", "data.label_column=price",
              "model=mlp")  # fmt: skip


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("regression")
    write_prices(cwd / "prices.csv")
    result = run_dltrain("fit", *REGRESSION, "trainer.max_epochs=40", "hydra.run.dir=run", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, cwd / "run"


def test_regression_fits_in_the_targets_unit(regression_run):
    cwd, run = regression_run
    metrics = read_metrics(run)
    assert metrics["test/r2"] > 0.8  # size and city explain nearly all of the price
    assert metrics["test/rmse"] < 150 and metrics["test/mae"] < metrics["test/rmse"] * 1.01
    assert "test/acc" not in metrics and "test/confusion_matrix" not in metrics
    config = (run / "config.yaml").read_text()
    assert "metric: val/rmse" in config and "mode: min" in config
    for plot in ("predicted_vs_true.png", "residuals.png", "learning_curves.png"):
        assert (run / "plots" / plot).stat().st_size > 5000
    history = (run / "metrics.csv").read_text().splitlines()[0]
    assert "val/rmse" in history and "train/mae" in history
    summary = json.loads((run / "data.json").read_text())
    assert 1000 < summary["train_target"]["mean"] < 2500 and summary["class_names"] == []
    checkpoint = run / "checkpoints" / "best.ckpt"
    assert unsafe_globals(checkpoint) == []
    state = load_checkpoint(checkpoint)["state_dict"]
    assert 1000 < float(state["head.mean"]) < 2500 and float(state["head.std"]) > 100


def test_predict_export_and_test_give_numbers_in_the_targets_unit(regression_run):
    cwd, run = regression_run
    (cwd / "new.csv").write_text("city,size\nparis,2\nrome,2\nrome,\n")
    predicted = run_dltrain("predict", "run=run", "input=new.csv", "hydra.run.dir=pred", cwd=cwd)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    with (cwd / "pred" / "predictions.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["id", "source", "predicted"]
    paris, rome = float(rows[0]["predicted"]), float(rows[1]["predicted"])
    assert abs(paris - 1600) < 150 and abs(rome - paris - 500) < 150  # the true prices' shape
    exported = run_dltrain("export", "run=run", "format=onnx", "hydra.run.dir=exp", cwd=cwd)
    assert exported.returncode == 0, exported.stderr[-3000:]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(cwd / "exp" / "model.onnx"))
    out = session.run(None, {"input": np.array([[2.0, 1.0]], dtype=np.float32)})[0]  # size, paris
    assert abs(float(out.reshape(-1)[0]) - paris) < 1e-2
    tested = run_dltrain("test", "run=run", "hydra.run.dir=again", cwd=cwd)
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert abs(read_metrics(cwd / "again")["test/rmse"] - read_metrics(run)["test/rmse"]) < 1e-4


def test_a_regression_sweep_minimizes_rmse_and_reports_it(dltrain):
    write_prices(dltrain.cwd / "prices.csv", rows=200)
    result = dltrain("fit", "-m", *REGRESSION, "sweep=random", "hydra.sweeper.n_trials=2",
                     "trainer=smoke", "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    import optuna

    from dltrain.sweep.storage import default_storage, open_storage

    study = optuna.load_study(
        study_name="random", storage=open_storage(default_storage(dltrain.cwd / "s"))
    )
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    with (dltrain.cwd / "s" / "sweep_results.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert {"test/rmse", "test/r2"} <= set(rows[0]) and "test/acc" not in rows[0]
    assert all(row["metric"] == "val/rmse" and float(row["test/rmse"]) > 0 for row in rows)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["problem=regression", "data.label_column=city"], "holds '(paris|rome)', not a number"),
        (["data.label_column=price"], "continuous numbers.*problem=regression"),
        (
            ["problem=regression", "data.label_column=price", "loss.class_weights=balanced"],
            "is for classes",
        ),
        (
            ["problem=regression", "data.label_column=price", "loss.name=cross_entropy"],
            "mse, huber, l1",
        ),
        (
            ["problem=regression", "data.label_column=price", "monitor.metric=val/acc"],
            "Did you mean 'val/mae'|Logged metrics: val/rmse",
        ),
    ],
)
def test_mismatched_targets_and_problem_exit_2(dltrain, overrides, message):
    import re

    write_prices(dltrain.cwd / "prices.csv", rows=120)
    result = dltrain("fit", "data=csv", "data.path=prices.csv", "model=mlp", *overrides)
    assert result.returncode == 2, result.stderr[-2000:]
    assert re.search(message, result.stderr) and len(result.stderr.strip().splitlines()) == 1


def test_regression_on_a_source_of_classes_exits_2(dltrain):
    result = dltrain("fit", "problem=regression")
    assert result.returncode == 2 and "needs a continuous target" in result.stderr
