"""dltrain's failure-tolerant grid sweeper, registered as hydra/sweeper=dltrain_basic.

Imports nothing heavy: Hydra imports every plugin module at every start.
"""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.dltrain_optuna_sweeper.grid_sweeper.DltrainGridSweeper"
    # Jobs handed to the launcher at once; null: all of them. The failure budget is
    # checked between batches: 1 stops a failing grid soonest.
    max_batch_size: int | None = None
    # Swept keys from a config: key -> "a,b,c" (the command line adds more).
    params: dict | None = None
    # The sweep stops once more than this fraction of its jobs has failed.
    max_failure_rate: float = 0.5


ConfigStore.instance().store(
    group="hydra/sweeper", name="dltrain_basic", node=GridSweeperConf, provider="dltrain"
)


class DltrainGridSweeper(Sweeper):
    """The Sweeper class Hydra finds; the work is in dltrain.sweep.grid, imported late."""

    def __init__(self, **settings: Any) -> None:
        from dltrain.sweep.grid import GridSweeper

        self.sweeper = GridSweeper(**settings)

    def setup(self, **kwargs: Any) -> None:
        self.sweeper.setup(**kwargs)

    def sweep(self, arguments: list) -> Any:
        return self.sweeper.sweep(arguments)
