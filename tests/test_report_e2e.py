"""The sweep report: written after every multirun and rebuilt by `dltrain report`."""

import csv
import json
import shutil

import yaml

from tests.conftest import run_dirs


def read_rows(sweep):
    with (sweep / "sweep_results.csv").open() as file:
        return list(csv.DictReader(file))


def test_grid_sweep_report_best_config_and_seed_statistics(dltrain):
    result = dltrain("fit", "-m", "trainer=smoke", "trainer.max_epochs=2", "optim.lr=1e-3,1e-2",
                     "seed=0,1", "hydra.sweep.dir=sweep")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = dltrain.cwd / "sweep"
    rows = read_rows(sweep)
    assert [row["number"] for row in rows] == ["0", "1", "2", "3"]
    assert all(row["status"] == "complete" and row["metric"] == "val/acc" for row in rows)
    assert all(row["diagnosis"] and row["test/acc"] for row in rows)
    best = max(rows, key=lambda row: float(row["value"]))
    assert "over 2 seeds" in result.stdout and "±" in result.stdout
    for name in ("history.png", "optim.lr.png"):
        assert (sweep / "plots" / name).stat().st_size > 5000

    rerun = dltrain(
        "fit", "--config-dir", "sweep", "--config-name", "best_config", "hydra.run.dir=rerun"
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    again = json.loads((dltrain.cwd / "rerun" / "metrics.json").read_text())
    assert abs(again["val/acc"] - float(best["value"])) < 1e-6


def test_report_rebuilds_an_interrupted_sweep(dltrain):
    assert (
        dltrain("fit", "-m", "trainer=smoke", "model=mlp,cnn", "hydra.sweep.dir=sweep").returncode
        == 0
    )
    sweep = dltrain.cwd / "sweep"
    written = {
        name: (sweep / name).read_text() for name in ("sweep_results.csv", "best_config.yaml")
    }
    plots = sorted(p.name for p in (sweep / "plots").iterdir())
    for name in written:
        (sweep / name).unlink()
    shutil.rmtree(sweep / "plots")
    result = dltrain("report", "sweep")
    assert result.returncode == 0, result.stderr[-3000:]
    # Rebuilt from the run directories alone: the same results, best config and plots.
    assert {name: (sweep / name).read_text() for name in written} == written
    assert sorted(p.name for p in (sweep / "plots").iterdir()) == plots and plots

    (sweep / "1" / "metrics.json").unlink()  # as if the second trial had been killed
    (sweep / "1" / "trial.json").unlink()
    result = dltrain("report", "sweep")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["status"] for row in read_rows(sweep)] == ["complete", "incomplete"]
    assert "best_config.yaml" in result.stdout
    assert len(run_dirs(sweep)) == 2
    best = yaml.safe_load((sweep / "best_config.yaml").read_text())
    assert best["model"]["net"]["_target_"] == "dltrain.models.mlp.MLP"  # the complete one


def test_report_needs_a_sweep_directory(dltrain):
    (dltrain.cwd / "empty").mkdir()
    result = dltrain("report", "empty")
    assert result.returncode == 2 and "no runs" in result.stderr


def test_report_during_a_running_sweep_shows_what_is_done(dltrain):
    import os
    import subprocess
    import time

    from tests.conftest import dltrain_command

    sweep = dltrain.cwd / "sweep"
    running = subprocess.Popen([*dltrain_command(), "fit", "-m", "model=mlp", "seed=0,1,2,3",
                                "trainer.max_epochs=3", "trainer.limit_train_batches=5",
                                "hydra.sweeper.max_batch_size=1", "hydra.sweep.dir=sweep"],
                               cwd=dltrain.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not list(sweep.glob("*/trial.json")) and time.monotonic() < deadline:
            time.sleep(0.5)
        result = dltrain("report", "sweep")
        assert result.returncode == 0, result.stderr[-3000:]
        statuses = [row["status"] for row in read_rows(sweep)]
        assert "complete" in statuses and len(statuses) < 4 or "incomplete" in statuses, statuses
    finally:
        assert running.wait(timeout=300) == 0, running.stderr.read()[-3000:]
    assert [row["status"] for row in read_rows(sweep)] == ["complete"] * 4  # the sweep's own
