"""Experiment trackers, read back with each tracker's own reader: TensorBoard's
EventAccumulator, MLflow's client, W&B's offline run file; sweeps as parent and children;
resume continues the tracker run; a missing tracker package exits 2 with the pip command."""

from __future__ import annotations

import glob
import json
import struct
from pathlib import Path

import pytest

from tests.conftest import run_dltrain

OFFLINE = {"WANDB_MODE": "offline", "MLFLOW_TRACKING_URI": ""}


def mlflow_runs(cwd: Path) -> tuple:
    """Every MLflow run in the working directory's default store (./mlflow.db)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("dltrain")
    return client, client.search_runs([experiment.experiment_id])


def wandb_records(run_dir: Path) -> list:
    """The records of a W&B offline run file (a LevelDB-style log of protobuf Records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))[0]).read_bytes()
    assert data[:4] == b":W&B"
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("trackers")
    result = run_dltrain("fit", "logger=[csv,tensorboard,mlflow,wandb]", "trainer.max_epochs=2",
                         "hydra.run.dir=run", cwd=cwd, env=OFFLINE)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, cwd / "run"


def test_tensorboard_holds_each_epochs_scalars(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, run = tracked
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert len(events.Scalars("train/loss")) == 2 and len(events.Scalars("lr")) == 2
    assert len(events.Scalars("val/acc")) >= 2 and events.Scalars("test/acc")


def test_mlflow_holds_the_params_metrics_tags_and_artifacts(tracked):
    cwd, run = tracked
    client, runs = mlflow_runs(cwd)
    assert len(runs) == 1
    found = runs[0]
    assert found.info.run_id == json.loads((run / "trackers.json").read_text())["mlflow"]["run_id"]
    assert found.info.status == "FINISHED"
    assert found.data.params["optim.lr"] == "0.003" and found.data.params["model.channels"]
    assert len(client.get_metric_history(found.info.run_id, "train/loss")) == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert found.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert found.data.metrics["baseline/test_acc"] == pytest.approx(metrics["baseline/test_acc"])
    assert found.data.tags["diagnosis"] == " ".join(d["code"] for d in metrics["diagnosis"])
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"metrics.json", "config.yaml", "data_profile.json", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(found.info.run_id, "plots")}
    assert "plots/learning_curves.png" in plots


def test_wandb_runs_offline_and_its_run_file_holds_the_metrics(tracked):
    _, run = tracked
    records = wandb_records(run)
    history = [{item.key or "/".join(item.nested_key): item.value_json for item in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]  # fmt: skip
    assert len([h for h in history if "train/loss" in h]) == 2
    assert any("val/acc" in h for h in history)
    files = Path(glob.glob(str(run / "wandb" / "offline-run-*"))[0]) / "files"
    assert (files / "metrics.json").is_file() and (
        files / "plots" / "learning_curves.png"
    ).is_file()


def test_resume_continues_the_same_mlflow_run(dltrain):
    first = dltrain(
        "fit", "logger=mlflow", "trainer.max_epochs=1", "hydra.run.dir=run", env=OFFLINE
    )
    assert first.returncode == 0, first.stderr[-3000:]
    again = dltrain("fit", "resume=run", "trainer.max_epochs=2", env=OFFLINE)
    assert again.returncode == 0, again.stderr[-3000:]
    client, runs = mlflow_runs(dltrain.cwd)
    assert len(runs) == 1
    history = client.get_metric_history(runs[0].info.run_id, "train/loss")
    assert [m.step for m in history] == sorted(m.step for m in history) and len(history) == 2


def test_a_grid_is_one_parent_with_its_trials_and_a_failed_trial_is_marked(dltrain):
    result = dltrain("fit", "-m", "logger=mlflow", "trainer=smoke", "optim.lr=0.01,1e30",
                     "hydra.sweep.dir=grid", env=OFFLINE)  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]  # the diverging trial failed
    _, runs = mlflow_runs(dltrain.cwd)
    parents = [r for r in runs if r.data.tags.get("dltrain.kind") == "sweep"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 2 == len(runs) - 1
    assert sorted(r.info.status for r in children) == ["FAILED", "FINISHED"]
    assert parents[0].data.params["overrides"].startswith("logger=mlflow")
    assert parents[0].info.status == "FAILED"


def test_an_optuna_sweep_is_one_parent_with_three_trials_in_both_trackers(dltrain):
    result = dltrain("fit", "-m", "logger=[mlflow,wandb]", "sweep=random",
                     "hydra.sweeper.n_trials=3", "trainer=smoke", "hydra.sweep.dir=search",
                     env=OFFLINE)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    client, runs = mlflow_runs(dltrain.cwd)
    (parent,) = [r for r in runs if r.data.tags.get("dltrain.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3 and len(runs) == 4
    assert "optuna" in parent.data.params["sweeper"] and parent.data.params["search_space"]
    best = json.loads((dltrain.cwd / "search" / "0" / "metrics.json").read_text())  # any trial
    assert parent.data.metrics["best/value"] >= best["val/acc"] - 1e-9
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep_results.csv", "best_config.yaml", "plots"} <= artifacts
    for trial in range(3):  # W&B: the trials share the sweep's group
        records = wandb_records(dltrain.cwd / "search" / str(trial))
        groups = {r.run.run_group for r in records if r.WhichOneof("record_type") == "run"}
        assert groups == {"search"}
    assert "optuna-dashboard sqlite:///" in result.stdout
    assert "INFO" not in result.stderr and "wandb: WARNING" not in result.stderr


def test_a_tracker_that_is_not_installed_exits_2_with_the_pip_command(compose_fit, monkeypatch):
    from dltrain import trackers
    from dltrain.config.validate import validate
    from dltrain.errors import ConfigError

    monkeypatch.setattr(trackers, "find_spec", lambda name: None if name == "mlflow" else True)
    validate(compose_fit("logger=[csv,tensorboard]"))
    with pytest.raises(ConfigError, match=r"pip install 'dltrain\[mlflow\]'"):
        validate(compose_fit("logger=[csv,mlflow]"))


def test_pruned_trials_are_marked_pruned_in_mlflow(dltrain):
    # No trial reaches a validation accuracy above 1: each is pruned after its first epoch.
    result = dltrain("fit", "-m", "logger=mlflow", "sweep=random", "hydra.sweeper.n_trials=2",
                     "trainer=smoke", "trainer.max_epochs=2",
                     "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:1.01}",
                     "hydra.sweep.dir=pruned", env=OFFLINE)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    _, runs = mlflow_runs(dltrain.cwd)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [r.data.tags["dltrain.status"] for r in children] == ["pruned", "pruned"]
    assert {r.info.status for r in children} == {"KILLED"}
