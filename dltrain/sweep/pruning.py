"""The pruning callback a trial of dltrain's optuna sweeper adds to its Trainer.

The sweeper tells each job its study and trial through environment variables, so
nothing of it enters the run's config or its re-runnable overrides: the trial through
hydra.job.env_set (that job only), the storage through the sweeper's own environment,
which every launcher's job processes inherit (a storage URL may hold a password, and
env_set values are written into each job's .hydra/hydra.yaml).
"""

from __future__ import annotations

import os
from typing import Any

ENV_STORAGE = "DLTRAIN_OPTUNA_STORAGE"
ENV_STUDY = "DLTRAIN_OPTUNA_STUDY"
ENV_TRIAL_ID = "DLTRAIN_OPTUNA_TRIAL_ID"


def build_pruner(pruner_cfg: Any) -> Any:
    """The optuna pruner of a sweep's `pruner` config; null: never prune."""
    import optuna
    from hydra.utils import instantiate

    return instantiate(pruner_cfg) if pruner_cfg else optuna.pruners.NopPruner()


def pruning_callback(monitor: str) -> Any | None:
    """optuna-integration's Lightning pruning callback for this trial, or None outside a study."""
    if ENV_TRIAL_ID not in os.environ:
        return None
    import optuna
    from hydra.core.hydra_config import HydraConfig
    from optuna_integration import PyTorchLightningPruningCallback

    # The study's pruner is not stored with it: take the sweep's own.
    pruner_cfg = HydraConfig.get().sweeper.get("pruner") if HydraConfig.initialized() else None
    from dltrain.sweep.storage import open_storage

    study = optuna.load_study(
        study_name=os.environ[ENV_STUDY],
        storage=open_storage(os.environ[ENV_STORAGE]),
        pruner=build_pruner(pruner_cfg),
    )
    trial = optuna.trial.Trial(study, int(os.environ[ENV_TRIAL_ID]))
    return PyTorchLightningPruningCallback(trial, monitor=monitor)


def pruned_under_ddp(trainer: Any) -> bool:
    """After fit: whether DDP ranks stopped a pruned trial; rank 0 then raises TrialPruned.

    Under DDP optuna-integration's callback only stops the Trainer (raising on one rank
    would leave the others waiting in a collective), so the outcome is settled here.
    """
    if ENV_TRIAL_ID not in os.environ:
        return False
    from optuna_integration import PyTorchLightningPruningCallback

    callback = next(
        (c for c in trainer.callbacks if isinstance(c, PyTorchLightningPruningCallback)), None
    )
    if callback is None or not callback.is_ddp_backend:
        return False
    import warnings

    import optuna

    reason = None
    if trainer.is_global_zero:
        try:
            with warnings.catch_warnings():  # it re-reports values rank 0 reported already
                warnings.simplefilter("ignore")
                callback.check_pruned()
        except optuna.TrialPruned as pruned:
            reason = str(pruned)
    reason = trainer.strategy.broadcast(reason)
    if reason and trainer.is_global_zero:
        raise optuna.TrialPruned(reason)
    return reason is not None
