"""Hydra's basic sweeper (the grid of `dltrain fit -m a=1,2 b=x,y`), made failure tolerant.

Hydra's own sweeper stops the multirun at the first failed job. This one records the
failure in the job's trial.json, runs the other jobs, writes the report and ends with
exit 1, as the optuna sweeper does; hydra.sweeper.max_failure_rate applies to both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from dltrain.sweep.jobs import FailureBudget, failed, job_folder, record, sweep_lock


class GridSweeper(BasicSweeper):
    """Every combination of the swept values, each job's failure recorded, none fatal."""

    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        max_failure_rate: float = 0.5,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.max_failure_rate = max_failure_rate

    def sweep(self, arguments: list[str]) -> Any:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        budget = FailureBudget(sum(map(len, self.overrides)), self.max_failure_rate)
        returns = []
        with sweep_lock(sweep_dir):
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
            while not self.is_done() and not budget.exceeded:
                batch = self.get_job_batch()
                self.validate_batch_is_legal(batch)
                results = self.launcher.launch(batch, initial_job_idx=budget.done)
                for number, job in enumerate(results, start=budget.done):
                    try:
                        status = {"status": "complete", "value": float(job.return_value)}
                    except Exception as error:  # the job's own failure: recorded, not fatal
                        status = failed(error)
                    record(job_folder(job, sweep_dir, number), status)
                    budget.count(status)
                returns.append(results)
            budget.finish(sweep_dir)
        return returns
