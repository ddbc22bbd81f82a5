"""The Sweeper class Hydra finds; the work is in dltrain.sweep.optuna_search, imported late."""

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.dltrain_optuna_sweeper.config import OptunaSweeperConf  # noqa: F401 - registers it


class OptunaSweeper(Sweeper):
    """Hydra sweeper backed by an optuna study (optuna 4/5): samplers, pruning, resumable storage."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.search: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from dltrain.sweep.optuna_search import OptunaSearch

        self.search = OptunaSearch(self.settings, hydra_context, task_function, config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.search.run(arguments)
