"""Every fit knows its baseline, through the real command: the default on a small table
reaches it, the figures are everywhere the user looks, small data gets enough steps, and a
test table that does not represent the training data is named."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn import datasets

from tests.conftest import read_metrics, run_dltrain


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("wine")
    datasets.load_wine(as_frame=True).frame.to_csv(cwd / "wine.csv", index=False)
    result = run_dltrain("fit", "data=csv", "data.path=wine.csv", "data.label_column=target",
                         "model=tabular", "hydra.run.dir=run", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, cwd / "run", result.stdout


def test_the_default_tabular_net_reaches_its_baseline_on_wine(wine_run):
    _, run, _ = wine_run
    metrics = read_metrics(run)
    assert metrics["baseline/name"] == "logistic regression"
    assert metrics["baseline/test_acc"] > 0.9
    assert metrics["test/acc"] >= metrics["baseline/test_acc"]
    assert "below_baseline" not in [d["code"] for d in metrics["diagnosis"]]


def test_the_baseline_shows_in_the_profile_the_table_and_the_curves(wine_run):
    _, run, stdout = wine_run
    profile = json.loads((run / "data_profile.json").read_text())
    assert profile["baseline"].startswith("logistic regression: val acc")
    assert "baseline: logistic regression: val acc" in stdout
    assert "baseline" in stdout.split("best checkpoint")[1]  # the final table's column
    # 124 training rows at batch 32: each epoch makes several passes, and says so
    assert "each epoch makes 6 passes" in profile["notes"][0] and "6 passes" in stdout
    with (run / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert int(rows[0]["step"]) == 124 * 6 // 32
    assert (run / "plots" / "learning_curves.png").stat().st_size > 10_000


def test_a_sweep_report_has_the_baseline_column(wine_run):
    cwd, _, _ = wine_run
    result = run_dltrain("fit", "-m", "data=csv", "data.path=wine.csv", "data.label_column=target",
                         "model=tabular", "trainer=smoke", "seed=0,1", "hydra.sweep.dir=sweep",
                         cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with (cwd / "sweep" / "sweep_results.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 and all(float(row["baseline/test_acc"]) > 0.8 for row in rows)


def test_baseline_none_turns_it_off(dltrain):
    result = dltrain("fit", "trainer=smoke", "baseline=none", "hydra.run.dir=run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [k for k in read_metrics(dltrain.cwd / "run") if k.startswith("baseline/")]


def write_people(path, rows, seed, age_shift=0.0, cities=("paris", "rome", "oslo")):
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["age", "income", "city", "label"])
        for _ in range(rows):
            age, city = rng.normal(40 + age_shift, 10), rng.choice(cities)
            writer.writerow([f"{age:.1f}", f"{rng.normal(50, 20):.1f}", city,
                             "yes" if (age > 40 + age_shift) != (city == "rome") else "no"])  # fmt: skip


def test_a_test_table_unlike_the_training_data_is_named(dltrain):
    write_people(dltrain.cwd / "train.csv", 300, seed=0)
    write_people(dltrain.cwd / "test.csv", 120, seed=1, age_shift=25,
                 cities=("paris", "rome", "lima"))  # fmt: skip
    result = dltrain("fit", "trainer=smoke", "data=csv", "data.path=train.csv",
                     "data.test_path=test.csv", "model=tabular", "hydra.run.dir=run")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    profile = json.loads((dltrain.cwd / "run" / "data_profile.json").read_text())
    drift = profile["test_vs_train"]
    assert [s["feature"] for s in drift["shifted_features"]] == ["age"]  # income is unchanged
    assert 0.2 < drift["unseen_categories"]["city"] < 0.45
    warnings = " ".join(profile["warnings"])
    assert "age (KS" in warnings and "city (" in warnings and "never seen in training" in warnings
    assert "data.test_path is distributed differently" in result.stdout


def test_a_test_table_like_the_training_data_raises_no_warning(dltrain):
    write_people(dltrain.cwd / "train.csv", 300, seed=0)
    write_people(dltrain.cwd / "test.csv", 120, seed=1)
    result = dltrain("fit", "trainer=smoke", "data=csv", "data.path=train.csv",
                     "data.test_path=test.csv", "model=tabular", "hydra.run.dir=run")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    profile = json.loads((dltrain.cwd / "run" / "data_profile.json").read_text())
    assert profile["test_vs_train"]["shifted_features"] == []
    assert profile["test_vs_train"]["shifted_classes"] == [] and profile["warnings"] == []


def test_a_training_split_smaller_than_a_batch_trains_with_a_note(dltrain):
    (dltrain.cwd / "small.csv").write_text(
        "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(40))
    )
    result = dltrain("fit", "trainer=smoke", "data=csv", "data.path=small.csv",
                     "data.batch_size=64", "model=tabular", "hydra.run.dir=run")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    notes = json.loads((dltrain.cwd / "run" / "data_profile.json").read_text())["notes"]
    assert "28 samples, fewer than data.batch_size=64: each step uses all 28" in notes[0]
