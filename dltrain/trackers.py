"""Experiment trackers (TensorBoard, MLflow, Weights & Biases) through Lightning's loggers.

Each `logger=` option builds Lightning's own logger class through a factory here, which
adds what dltrain promises: defaults that work offline (MLflow: $MLFLOW_TRACKING_URI, else
sqlite:///mlflow.db in the working directory; W&B: offline unless WANDB_MODE says
otherwise; TensorBoard under the run directory), the tracker's run id kept in the run
directory (trackers.json) so that `fit resume=` continues the same tracker run, and in a
sweep the link to the sweep's parent run (MLflow: mlflow.parentRunId; W&B: a group).
Metrics reach the trackers once per epoch under metrics.csv's names; after the fit,
`finish` adds the flat config, the diagnosis codes as tags and the run directory's files
as artifacts.
"""

from __future__ import annotations

import json
import os
import uuid
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from dltrain.errors import ConfigError

# logger option -> the module it needs
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
RUN_IDS = "trackers.json"  # in a run directory: this run's tracker ids; in a sweep's: the parent's
ENV_PARENT = "DLTRAIN_TRACKER_PARENT"  # set by a sweep for its jobs: {"mlflow": id, "group": name}
ARTIFACTS = ("metrics.json", "config.yaml", "data_profile.json")
# dltrain's end status of a run -> MLflow's (pruned and interrupted runs: KILLED)
MLFLOW_STATUS = {"complete": "FINISHED", "failed": "FAILED"}


def quiet() -> None:
    """Keep the trackers' start-up chatter (MLflow creating its tables) out of the terminal."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "Experiment with name ... not found. Creating it.": expected on a first run.
    logging.getLogger("lightning.pytorch.loggers.mlflow").setLevel(logging.ERROR)


def check_installed(logger_cfg: Any) -> None:
    """Exit 2 naming the pip command when a chosen tracker is not installed."""
    for name in logger_cfg or {}:
        module = PACKAGES.get(str(name))
        if module is not None and find_spec(module) is None:
            raise ConfigError(
                f"logger={name} needs the {module} package, which is not installed:"
                f" pip install 'dltrain[{name}]' (or 'dltrain[trackers]' for all of them)."
            )


def saved_ids(folder: Path) -> dict[str, Any]:
    """The tracker ids kept in a run (or sweep) directory."""
    path = Path(folder) / RUN_IDS
    return json.loads(path.read_text()) if path.is_file() else {}


def save_id(folder: Path, key: str, value: Any) -> None:
    """Keep one tracker id in a run (or sweep) directory, beside the others."""
    ids = {**saved_ids(folder), key: value}
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / RUN_IDS).write_text(json.dumps(ids, indent=2) + "\n")


def mlflow_uri(tracking_uri: str | None = None) -> str:
    """The MLflow store: the config's, $MLFLOW_TRACKING_URI, else ./mlflow.db (SQLite)."""
    return (
        tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"
    )


def experiment_name(name: str | None = None) -> str:
    """The tracker's experiment/project: the config's, else the experiment= choice, else
    'dltrain'."""
    if name:
        return name
    from hydra.core.hydra_config import HydraConfig

    choice = (
        HydraConfig.get().runtime.choices.get("experiment") if HydraConfig.initialized() else None
    )
    return str(choice) if choice not in (None, "null") else "dltrain"


def _parent() -> dict[str, Any]:
    return json.loads(os.environ.get(ENV_PARENT) or "{}")


def _rank_zero() -> bool:
    from dltrain.tasks.fit import is_rank_zero

    return is_rank_zero()


def mlflow_logger(
    save_dir: str, experiment: str | None = None, tracking_uri: str | None = None
) -> Any:
    """Lightning's MLFlowLogger: this run's MLflow run (the same one again after a resume),
    nested under the sweep's parent run in a multirun."""
    from lightning.pytorch.loggers import MLFlowLogger

    run_dir = Path(save_dir)
    known = saved_ids(run_dir).get("mlflow", {})
    parent = _parent().get("mlflow")
    uri = mlflow_uri(tracking_uri)
    logger = MLFlowLogger(
        experiment_name=experiment_name(experiment),
        tracking_uri=uri,
        run_name=run_dir.name if not parent else f"trial {run_dir.name}",
        run_id=known.get("run_id"),
        tags={"mlflow.parentRunId": parent} if parent and not known else None,
    )
    if _rank_zero() and not known:  # the run is created here, once, by one process
        save_id(run_dir, "mlflow", {"run_id": logger.run_id, "tracking_uri": uri})
    return logger


def wandb_logger(save_dir: str, project: str | None = None, mode: str = "offline") -> Any:
    """Lightning's WandbLogger, offline unless WANDB_MODE says otherwise (never a login
    prompt); its id kept for resume; a sweep's trials share one group."""
    from lightning.pytorch.loggers import WandbLogger

    os.environ.setdefault("WANDB_MODE", mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    run_dir = Path(save_dir)
    known = saved_ids(run_dir).get("wandb", {})
    if not known:
        known = {"id": uuid.uuid4().hex[:8], "group": _parent().get("group")}
        if _rank_zero():
            save_id(run_dir, "wandb", known)
    logger = WandbLogger(
        save_dir=str(run_dir), project=experiment_name(project), name=run_dir.name,
        id=known["id"], resume="allow", group=known.get("group"),
    )  # fmt: skip
    # Lightning passes anonymous=None, which wandb >= 0.19 warns about on every run.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


def flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as flat parameters: {'optim.lr': 0.003, 'model.hidden': '[64]'}."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def start(trainer: Any, resolved: dict[str, Any], resumed: bool) -> None:
    """Log the resolved config as flat hyperparameters (once: a resumed run has them)."""
    if not resumed:
        for logger in trainer.loggers:
            logger.log_hyperparams(flat(resolved))


def status_of(error: BaseException) -> str:
    """A tracker run's end status for an exception that ended the fit."""
    if type(error).__name__ == "TrialPruned":
        return "pruned"
    return "interrupted" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "failed"


def finish(trainer: Any, run_dir: Path, metrics: dict[str, Any], status: str = "complete") -> None:
    """After the fit: the final figures, the diagnosis codes as tags, the run directory's
    files as artifacts; the run closed with its status (complete, pruned, failed)."""
    if not trainer.is_global_zero:  # trackers log from one process of a DDP run
        return
    codes = [d["code"] for d in metrics.get("diagnosis", [])]
    figures = {
        k: v for k, v in metrics.items() if k.startswith("baseline/") and isinstance(v, float)
    }
    for logger in trainer.loggers:
        if figures:
            logger.log_metrics(figures, step=trainer.global_step)
        kind = type(logger).__name__
        if kind == "MLFlowLogger":
            _finish_mlflow(logger, run_dir, codes, status)
        elif kind == "WandbLogger":
            _finish_wandb(logger, run_dir, codes, status)
        elif kind == "TensorBoardLogger" and codes:
            logger.experiment.add_text("diagnosis", ", ".join(codes), trainer.global_step)
        logger.save()


def _finish_mlflow(logger: Any, run_dir: Path, codes: list[str], status: str) -> None:
    client, run_id = logger.experiment, logger.run_id
    if codes:
        client.set_tag(run_id, "diagnosis", " ".join(codes))
    client.set_tag(run_id, "dltrain.status", status)
    for name in ARTIFACTS:
        if (run_dir / name).is_file():
            client.log_artifact(run_id, str(run_dir / name))
    if (run_dir / "plots").is_dir():
        client.log_artifacts(run_id, str(run_dir / "plots"), "plots")
    client.set_terminated(run_id, MLFLOW_STATUS.get(status, "KILLED"))


def _finish_wandb(logger: Any, run_dir: Path, codes: list[str], status: str) -> None:
    import wandb

    run = logger.experiment
    run.tags = (*codes, status)
    for name in ARTIFACTS:
        if (run_dir / name).is_file():
            run.save(str(run_dir / name), base_path=str(run_dir), policy="now")
    for plot in sorted((run_dir / "plots").glob("*.png")):
        run.save(str(plot), base_path=str(run_dir), policy="now")
    wandb.finish(exit_code=0 if status == "complete" else 1)


def mark_trial(folder: Path, status: dict[str, Any]) -> None:
    """In the sweep's process: a pruned or failed trial's MLflow run is marked as such."""
    known = saved_ids(folder).get("mlflow")
    if not known or status["status"] == "complete" or find_spec("mlflow") is None:
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient(known["tracking_uri"])
    client.set_tag(known["run_id"], "dltrain.status", status["status"])
    client.set_terminated(known["run_id"], MLFLOW_STATUS.get(status["status"], "KILLED"))
