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
    # maximize | minimize; also max | min, so ${monitor.mode} can be used. A list, e.g.
    # [maximize, minimize], makes a multi-objective study over monitor.metrics.
    direction: Any = "maximize"
    # Trials in the study in all: running the same sweep again continues up to this number.
    n_trials: int = 20
    # Trials launched together (give hydra/launcher=joblib to run them in parallel).
    n_jobs: int = 1
    # A database URL; null: a SQLite file optuna.db in the sweep directory.
    storage: Any = None
    study_name: str = "dltrain"
    # The sweep stops once more than this fraction of n_trials has failed.
    max_failure_rate: float = 0.5
    # The search space: key -> Hydra sweep syntax, e.g. optim.lr: tag(log, interval(1e-4, 1e-1)),
    # or a conditional parameter: {values: "interval(0.5, 0.99)", when: {optim: sgd}}, only
    # suggested (and passed to the trial) when every key of `when` has that value (or one
    # of a list of values).
    params: dict[str, Any] = field(default_factory=dict)
    # A function "module.function" called with (config, trial) after the params are
    # suggested: it may call trial.suggest_*(...) itself; what it suggests is passed on.
    custom_search_space: Any = None
    # Configurations tried first, exactly as given, e.g. [{optim.lr: 0.003, optim: adam}]
    # (optuna's enqueue_trial; skipped when the study holds them already).
    enqueue: list[Any] = field(default_factory=list)
    # Run each suggested configuration under this many seeds (seed, seed+1, ...) and tell
    # the study their mean (std in each trial.json): no chasing noise on small data.
    seeds_per_trial: int = 1


ConfigStore.instance().store(
    group="hydra/sweeper", name="dltrain_optuna", node=OptunaSweeperConf, provider="dltrain"
)
