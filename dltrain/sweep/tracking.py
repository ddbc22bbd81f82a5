"""A sweep as one parent run in the experiment tracker, its trials as children.

When a multirun starts with a tracker chosen (`logger=mlflow`, `logger=wandb`), the
sweep's process opens the parent: in MLflow a run holding the sweep's overrides, search
space, sampler and pruner, whose id every job finds in its environment and records as
`mlflow.parentRunId` of its own run; in W&B the trials share a group named after the
sweep directory. When the sweep ends (complete, or stopped by failures), the parent gets
the best trial's value and overrides and the sweep report (CSV, best config, plots) as
artifacts. The parent's id is kept in the sweep directory's trackers.json, so a resumed
sweep continues the same parent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dltrain.trackers import ENV_PARENT, experiment_name, mlflow_uri, save_id, saved_ids

REPORT = ("sweep_results.csv", "best_config.yaml", "multirun.yaml")


def open_parent(config: DictConfig) -> None:
    """Open (or continue) the sweep's parent run and tell the jobs about it."""
    loggers = config.get("logger") or {}
    if not any(name in loggers for name in ("mlflow", "wandb")):
        return
    sweep_dir = Path(str(config.hydra.sweep.dir))
    parent: dict[str, Any] = {"group": sweep_dir.name}
    if "mlflow" in loggers:
        parent["mlflow"] = _mlflow_parent(config, sweep_dir)
    # Every launcher's jobs inherit this process's environment (joblib, submitit too).
    os.environ[ENV_PARENT] = json.dumps(parent)


def _mlflow_parent(config: DictConfig, sweep_dir: Path) -> str:
    from mlflow.tracking import MlflowClient

    from dltrain.trackers import quiet

    quiet()
    settings = config.logger.mlflow
    uri = mlflow_uri(settings.get("tracking_uri"))
    known = saved_ids(sweep_dir).get("mlflow")
    if known:
        return known["run_id"]
    client = MlflowClient(uri)
    name = experiment_name(settings.get("experiment"))
    found = client.get_experiment_by_name(name)
    experiment = found.experiment_id if found else client.create_experiment(name)
    run = client.create_run(experiment, run_name=f"sweep {sweep_dir.name}",
                            tags={"dltrain.kind": "sweep"})  # fmt: skip
    sweeper = OmegaConf.to_container(config.hydra.sweeper, resolve=False)
    params = {
        "overrides": " ".join(config.hydra.overrides.task),
        "sweeper": sweeper.get("_target_", ""),
        "search_space": json.dumps(sweeper.get("params") or {}),
        "sampler": json.dumps(sweeper.get("sampler") or {}),
        "pruner": json.dumps(sweeper.get("pruner") or {}),
        "sweep_dir": str(sweep_dir),
    }
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value[:6000])
    save_id(sweep_dir, "mlflow", {"run_id": run.info.run_id, "tracking_uri": uri})
    return run.info.run_id


def close_parent(sweep_dir: Path, summary: dict[str, Any], failed: bool = False) -> None:
    """The best trial and the report on the parent run; the parent closed."""
    known = saved_ids(sweep_dir).get("mlflow")
    if not known:
        return
    from mlflow.tracking import MlflowClient

    client, run_id = MlflowClient(known["tracking_uri"]), known["run_id"]
    best = summary.get("best")
    if best:
        client.log_metric(run_id, "best/value", float(best["value"]))
        client.set_tag(run_id, "best.overrides", str(best["overrides"]))
        client.set_tag(run_id, "best.trial", str(best["number"]))
        client.set_tag(run_id, "best.metric", str(best["metric"]))
    client.log_metric(run_id, "trials", float(summary.get("trials", 0)))
    for name in REPORT:
        if (sweep_dir / name).is_file():
            client.log_artifact(run_id, str(sweep_dir / name))
    if (sweep_dir / "plots").is_dir():
        client.log_artifacts(run_id, str(sweep_dir / "plots"), "plots")
    client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
