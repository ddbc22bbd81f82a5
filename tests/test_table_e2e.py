"""Tables as users bring them: text categories, gaps, an id column, binary figures,
predict on raw rows, the preprocessing in a weights-only checkpoint, bad tables refused."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dltrain.checkpoints import load_checkpoint, unsafe_globals
from tests.conftest import read_metrics, run_dltrain


def write_table(path: Path, rows: int = 300, seed: int = 0) -> None:
    """age (numeric, gaps), city (text), income (numeric, '?' gaps), kind, id; label yes/no
    depends on age and city."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "age", "city", "income", "kind", "label"])
        for i in range(rows):
            city, age = rng.choice(["paris", "rome", "oslo"]), rng.normal(40, 10)
            label = "yes" if (age > 40) != (city == "rome") else "no"
            writer.writerow([f"u{i}", "" if rng.random() < 0.1 else f"{age:.1f}",
                             city if rng.random() > 0.05 else "NA",
                             f"{rng.normal(50, 20):.1f}" if rng.random() > 0.1 else "?",
                             rng.choice(["a", "b"]), label])  # fmt: skip


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("table")
    write_table(cwd / "people.csv")
    result = run_dltrain("fit", "data=csv", "data.path=people.csv", "data.drop=[id]", "model=mlp",
                         "trainer.max_epochs=15", "hydra.run.dir=run", cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, cwd / "run"


def test_a_table_with_categories_and_gaps_trains_well(table_run):
    cwd, run = table_run
    metrics = read_metrics(run)
    assert metrics["class_names"] == ["no", "yes"]
    assert metrics["test/acc"] > 0.8  # the label needs the city category and the age number
    assert 0.8 < metrics["test/auroc"] <= 1 and 0.5 < metrics["test/average_precision"] <= 1
    for plot in ("roc.png", "precision_recall.png", "confusion_matrix.png"):
        assert (run / "plots" / plot).stat().st_size > 5000
    columns = json.loads((run / "data_profile.json").read_text())["columns"]
    assert columns["city"]["kind"] == "categorical" and columns["city"]["categories"] == 3
    assert columns["age"]["kind"] == "numeric" and columns["age"]["missing"] > 0
    assert "id" not in columns


def test_the_preprocessing_travels_in_a_weights_only_checkpoint(table_run):
    _, run = table_run
    path = run / "checkpoints" / "best.ckpt"
    assert unsafe_globals(path) == []
    info = load_checkpoint(path)["dltrain"]["data"]
    assert info["schema"]["categories"]["city"] == ["oslo", "paris", "rome"]  # training rows only
    assert set(info["schema"]["gaps"]) == {"age", "income"}
    state = load_checkpoint(path)["state_dict"]
    assert torch.isfinite(state["normalize.median"]).all()


def test_predict_takes_raw_rows_in_any_order_with_unseen_categories(table_run):
    cwd, run = table_run
    (cwd / "new.csv").write_text(
        "kind,income,city,age,note\na,40,rome,70,x\nb,?,paris,70,y\na,55,london,,z\n"
    )
    result = run_dltrain("predict", "run=run", "input=new.csv", "hydra.run.dir=pred", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ignoring columns the model does not use: note" in result.stdout
    with (cwd / "pred" / "predictions.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [r["predicted"] for r in rows[:2]] == ["no", "yes"]  # old in rome: no; old in paris: yes
    assert all(abs(float(r["p_no"]) + float(r["p_yes"]) - 1) < 1e-4 for r in rows)
    (cwd / "short.csv").write_text("kind,income,city\na,40,rome\n")
    missing = run_dltrain("predict", "run=run", "input=short.csv", cwd=cwd)
    assert missing.returncode == 2 and "lacks the column 'age'" in missing.stderr


def test_export_and_test_of_a_table_run(table_run):
    cwd, run = table_run
    exported = run_dltrain("export", "run=run", "format=onnx", "hydra.run.dir=exp", cwd=cwd)
    assert exported.returncode == 0, exported.stderr[-3000:]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(cwd / "exp" / "model.onnx"))
    rows = np.array(
        [[70, 40, 3, 1], [np.nan, np.nan, 0, 2]], dtype=np.float32
    )  # age, income, city, kind
    logits = session.run(None, {"input": rows})[0]
    assert logits.shape == (2, 2) and np.isfinite(logits).all()  # gaps are imputed inside
    tested = run_dltrain("test", "run=run", "hydra.run.dir=again", cwd=cwd)
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert abs(read_metrics(cwd / "again")["test/acc"] - read_metrics(run)["test/acc"]) < 1e-6


def test_a_users_own_test_table_is_the_test_split(dltrain):
    write_table(dltrain.cwd / "train.csv", rows=200)
    write_table(dltrain.cwd / "test.csv", rows=60, seed=1)
    result = dltrain("fit", "trainer=smoke", "data=csv", "data.path=train.csv", "data.test_path=test.csv",
                     "data.drop=[id]", "model=mlp", "hydra.run.dir=run")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sizes = json.loads((dltrain.cwd / "run" / "data.json").read_text())["split_sizes"]
    assert sizes["test"] == 60 and sizes["train"] + sizes["val"] == 200


def test_integer_labels_and_a_category_given_as_integers(dltrain):
    rng = np.random.default_rng(0)
    lines = ["code,x,label"] + [
        f"{c},{rng.normal() + c},{c % 2 * 7}" for c in rng.integers(0, 4, 200)
    ]
    (dltrain.cwd / "t.csv").write_text("\n".join(lines) + "\n")
    result = dltrain("fit", "trainer=smoke", "data=csv", "data.path=t.csv", "data.categorical=[code]",
                     "model=mlp", "hydra.run.dir=run")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_metrics(dltrain.cwd / "run")["class_names"] == ["0", "7"]
    info = load_checkpoint(dltrain.cwd / "run" / "checkpoints" / "best.ckpt")["dltrain"]["data"]
    assert info["schema"]["categories"]["code"] == ["0", "1", "2", "3"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.label_column=lable"], "Did you mean 'label'"),
        (["data.drop=[idd]"], "data.drop names 'idd'.*Did you mean 'id'"),
        ([], "looks like an id.*data.drop=\\[id\\]"),
        (["data.drop=[id]", "data.test_path=other.csv"], "other.csv lacks the column 'income'"),
    ],
)
def test_bad_tables_exit_2_with_one_line(dltrain, overrides, message):
    import re

    write_table(dltrain.cwd / "people.csv", rows=120)
    (dltrain.cwd / "other.csv").write_text("id,age,label\nu1,3,yes\nu2,4,no\n")
    result = dltrain("fit", "data=csv", "data.path=people.csv", *overrides)
    assert result.returncode == 2, result.stderr[-2000:]
    assert re.search(message, result.stderr) and len(result.stderr.strip().splitlines()) == 1
    assert not (dltrain.cwd / "runs").exists() or not list((dltrain.cwd / "runs").rglob("*.ckpt"))
