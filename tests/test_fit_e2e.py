"""`dltrain fit` end to end through the real command: the run directory contract."""

import csv
import json
import os

import pytest
import yaml

from tests.conftest import read_metrics, run_dirs

SCALARS = [
    f"{split}/{name}"
    for split in ("val", "test")
    for name in ("loss", "acc", "precision", "recall", "f1")
]


def test_smoke_run_writes_the_run_directory_contract(dltrain):
    result = dltrain("fit", "trainer=smoke")
    assert result.returncode == 0, result.stderr
    [run] = run_dirs(dltrain.cwd / "runs")
    assert run.parent == dltrain.cwd / "runs" / "fit"
    for name in (
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "config.yaml",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "metrics.csv",
        "metrics.json",
    ):
        assert (run / name).is_file(), name

    metrics = read_metrics(run)
    for key in SCALARS:
        assert 0 <= metrics[key] <= (100 if key.endswith("loss") else 1), key
    matrix = metrics["test/confusion_matrix"]
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
    per_class = metrics["test/per_class"]
    assert sorted(per_class) == [str(d) for d in range(10)]
    assert {"precision", "recall", "f1", "support"} <= set(per_class["3"])
    # smoke: two test batches of 64 samples, so 128 predictions in the confusion matrix
    assert sum(map(sum, matrix)) == sum(c["support"] for c in per_class.values()) == 128

    with (run / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 1
    for column in (
        "epoch",
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "lr",
        "epoch_seconds",
    ):
        assert column in rows[0], column
    # a compact start (no config tree, no layer table), a last line saying where results are
    out = " ".join(result.stdout.split())
    assert "dltrain fit" in out and "held-out" in out
    assert "├──" not in out and "Trainable params" not in out and "fontManager" not in out
    assert "cnn (CNN), 19,562 parameters" in out and "Adam, lr 0.003" in out
    assert out.endswith("metrics.json, plots/, checkpoints/best.ckpt")
    # the config check ran (Hydra would only warn if it had failed)
    assert "ValidateConfig" not in result.stderr


def test_verbose_prints_the_whole_config(dltrain):
    result = dltrain("fit", "trainer=smoke", "--verbose")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "├── seed: 0" in result.stdout and "Trainable params" in result.stdout


def test_card_example_and_other_options_run(dltrain):
    for overrides in (["model=cnn", "optim=adam"], ["model=mlp", "optim=sgd", "sched=none"]):
        result = dltrain("fit", *overrides, "trainer=smoke")
        assert result.returncode == 0, result.stderr
    assert len(run_dirs(dltrain.cwd / "runs")) == 2  # runs never overwrite each other


def test_two_runs_started_together_get_a_directory_each(dltrain):
    import subprocess

    from tests.conftest import dltrain_command

    # Started at once, both resolve the same timestamp: directories are created exclusively.
    started = [subprocess.Popen([*dltrain_command(), "fit", "trainer=smoke", f"seed={seed}"],
                                cwd=dltrain.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
               for seed in (0, 1)]  # fmt: skip
    assert all(p.wait(timeout=300) == 0 for p in started)
    runs = run_dirs(dltrain.cwd / "runs")
    assert len(runs) == 2 and all((run / "metrics.json").is_file() for run in runs)
    seeds = {yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["seed"] for run in runs}
    assert seeds == {0, 1}  # each directory holds its own run, whole


def test_unique_dir_is_race_free(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from dltrain.config.resolvers import unique_dir

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: unique_dir(str(tmp_path / "runs" / "same")), range(16)))
    assert len(set(made)) == 16 and all(os.path.isdir(d) for d in made)


def test_same_seed_gives_identical_metrics_json(dltrain):
    args = ("fit", "seed=0", "trainer=smoke", "trainer.max_epochs=2")
    for _ in range(2):
        assert dltrain(*args).returncode == 0
    first, second = run_dirs(dltrain.cwd / "runs")
    assert (first / "metrics.json").read_text() == (second / "metrics.json").read_text()
    third = dltrain("fit", "seed=1", "trainer=smoke", "trainer.max_epochs=2")
    assert third.returncode == 0
    assert read_metrics(run_dirs(dltrain.cwd / "runs")[2]) != read_metrics(first)


def test_hydra_run_dir_override_is_respected(dltrain):
    result = dltrain("fit", "trainer=smoke", "hydra.run.dir=custom/place")
    assert result.returncode == 0, result.stderr
    assert (dltrain.cwd / "custom/place/metrics.json").is_file()


def test_multirun_gives_each_job_its_own_complete_directory(dltrain):
    result = dltrain("fit", "-m", "trainer=smoke", "model=mlp,cnn")
    assert result.returncode == 0, result.stderr
    jobs = run_dirs(dltrain.cwd / "runs" / "fit" / "multirun")
    assert [job.name for job in jobs] == ["0", "1"]
    for job in jobs:
        assert (job / "metrics.json").is_file() and (job / "checkpoints/best.ckpt").is_file()
    overrides = [json.dumps((job / ".hydra/overrides.yaml").read_text()) for job in jobs]
    assert "model=mlp" in overrides[0] and "model=cnn" in overrides[1]


@pytest.mark.slow
def test_default_fit_reaches_097_test_accuracy(dltrain):
    result = dltrain("fit")
    assert result.returncode == 0, result.stderr
    [run] = run_dirs(dltrain.cwd / "runs")
    metrics = read_metrics(run)
    assert metrics["test/acc"] >= 0.97
    # the best checkpoint, not the last epoch, is what was tested
    with (run / "metrics.csv").open() as file:
        best_val = max(float(row["val/acc"]) for row in csv.DictReader(file))
    assert metrics["val/acc"] == pytest.approx(best_val, abs=1e-6)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_one_run_directory(dltrain):
    result = dltrain("fit", "trainer=ddp", "trainer.max_epochs=1", "hydra.run.dir=ddp")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(dltrain.cwd / "ddp")
    # the two ranks evaluated disjoint halves: together the test split exactly once
    assert sum(c["support"] for c in metrics["test/per_class"].values()) == 270
    assert run_dirs(dltrain.cwd) == [dltrain.cwd / "ddp"]
