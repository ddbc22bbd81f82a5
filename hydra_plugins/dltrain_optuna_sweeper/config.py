"""The sweeper's config, registered as hydra/sweeper=dltrain_optuna. Imports nothing heavy.

No `from __future__ import annotations` here: Hydra executes plugin modules without
registering them in sys.modules, and dataclasses need the real types then.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.dltrain_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    # The sampler and pruner are built by the sweeper: the grid sampler needs the search space.
    _recursive_: bool = False
    # An optuna sampler as a _target_ config (TPESampler, RandomSampler, GPSampler,
    # CmaEsSampler, GridSampler: its search space is built from the choice/range params).
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler"})
    # An optuna pruner as a _target_ config (MedianPruner, SuccessiveHalvingPruner,
    # HyperbandPruner); null: trials always run to the end.
    pruner: Any = None
    # maximize | minimize; also max | min, so ${monitor.mode} can be used.
    direction: str = "maximize"
    # Trials in the study in all: running the same sweep again continues up to this number.
    n_trials: int = 20
    # Trials launched together (give hydra/launcher=joblib to run them in parallel).
    n_jobs: int = 1
    # A database URL; null: a SQLite file optuna.db in the sweep directory.
    storage: Any = None
    study_name: str = "dltrain"
    # The sweep stops once more than this fraction of n_trials has failed.
    max_failure_rate: float = 0.5
    # The search space: key -> Hydra sweep syntax, e.g. optim.lr: tag(log, interval(1e-4, 1e-1)).
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="dltrain_optuna", node=OptunaSweeperConf, provider="dltrain"
)
