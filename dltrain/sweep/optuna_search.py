"""An optuna study driven through Hydra's launcher: ask, launch a batch of jobs, tell.

Hydra's sweep syntax maps to optuna distributions: choice(...) -> categorical,
range(a, b[, step]) -> integer (or categorical for floats), interval(a, b) -> float,
int(interval(a, b)) -> integer, tag(log, ...) -> log scale. The study lives in a storage
(a file in the sweep directory by default, see dltrain.sweep.storage), so
running the same sweep again continues it; a trial that raises is recorded as failed,
a pruned one as pruned.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dltrain.console import console
from dltrain.errors import ConfigError
from dltrain.sweep.jobs import FailureBudget, failed, job_folder, record, sweep_lock
from dltrain.sweep.pruning import ENV_STORAGE, ENV_STUDY, ENV_TRIAL_ID, build_pruner
from dltrain.sweep.storage import create_study, default_storage, mask, study_lock

DIRECTIONS = {"max": "maximize", "min": "minimize", "maximize": "maximize", "minimize": "minimize"}
FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def distribution(override: Override) -> optuna.distributions.BaseDistribution:
    """The optuna distribution of one swept key."""
    sweep = override.value()
    if isinstance(sweep, ChoiceSweep):
        # optuna stores plain values only: a list or dict choice is kept as its override text.
        choices = [
            value if value is None or isinstance(value, (bool, int, float, str)) else text
            for value, text in zip(
                override.sweep_iterator(), override.sweep_string_iterator(), strict=True
            )
        ]
        return optuna.distributions.CategoricalDistribution(choices)
    if isinstance(sweep, RangeSweep):
        values = list(override.sweep_iterator())
        if all(isinstance(v, int) for v in values):
            return optuna.distributions.IntDistribution(
                min(values), max(values), step=int(sweep.step or 1)
            )
        return optuna.distributions.CategoricalDistribution(values)
    if isinstance(sweep, IntervalSweep):
        log = "log" in sweep.tags
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return optuna.distributions.IntDistribution(sweep.start, sweep.end, log=log)
        return optuna.distributions.FloatDistribution(float(sweep.start), float(sweep.end), log=log)
    raise ConfigError(
        f"{override.input_line}: use choice(...), range(...) or interval(...) to sweep a key."
    )


def search_space(params: dict[str, str], arguments: list[str]) -> tuple[dict, list[str]]:
    """(key -> distribution, fixed overrides) from the config's params and the command line."""
    lines = {key: f"{key}={value}" for key, value in params.items()}
    for argument in arguments:
        key = argument.split("=", 1)[0]
        lines[key] = argument  # the command line wins over the sweep config
    space, fixed = {}, []
    for override in OverridesParser.create().parse_overrides(list(lines.values())):
        if override.is_sweep_override():
            space[override.get_key_element()] = distribution(override)
        else:
            fixed.append(override.input_line)
    return space, fixed


class AskTellGridSampler(optuna.samplers.GridSampler):
    """optuna's grid sampler for an ask-and-tell loop.

    GridSampler.after_trial only calls study.stop() once the grid is exhausted, which
    is allowed inside study.optimize alone; this loop stops at the grid's size itself.
    """

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


def _format(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


class OptunaSearch:
    """One sweep: the study, the launcher and the loop."""

    def __init__(
        self, settings: dict, hydra_context: Any, task_function: Any, config: DictConfig
    ) -> None:
        self.settings = settings
        self.config = config
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        parallel = int(settings.get("n_jobs", 1)) > 1
        self.storage = settings.get("storage") or default_storage(self.sweep_dir, parallel)
        self.masked_storage = mask(self.storage)
        hide_storage(config, self.masked_storage)  # before the launcher writes multirun.yaml
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.grid_size: int | None = None

    def _sampler(self, space: dict) -> Any:
        sampler_cfg = OmegaConf.create(self.settings.get("sampler") or {})
        if not str(sampler_cfg.get("_target_", "")).endswith("GridSampler"):
            return instantiate(sampler_cfg) if sampler_cfg else None
        grid = {
            k: list(d.choices)
            for k, d in space.items()
            if isinstance(d, optuna.distributions.CategoricalDistribution)
        }
        if len(grid) != len(space):
            raise ConfigError(
                "the grid sampler needs choice(...) or range(...) for every swept key."
            )
        kwargs = {
            k: v
            for k, v in OmegaConf.to_container(sampler_cfg, resolve=True).items()
            if k != "_target_"
        }
        self.grid_size = math.prod(len(choices) for choices in grid.values())
        return AskTellGridSampler(search_space=grid, **kwargs)

    def _study(self, space: dict) -> optuna.Study:
        sampler = self._sampler(space)
        pruner = build_pruner(self.settings.get("pruner"))
        direction = DIRECTIONS.get(str(self.settings.get("direction", "maximize")))
        if direction is None:
            raise ConfigError(
                f"hydra.sweeper.direction={self.settings.get('direction')}: use maximize or minimize."
            )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = create_study(self.storage, study_name=self.settings.get("study_name", "dltrain"),
                             sampler=sampler, pruner=pruner, direction=direction)  # fmt: skip
        if not self.settings.get("storage"):
            # Left running by a killed sweep of this directory (the sweep lock says no other
            # process uses it now). In a shared database, RUNNING trials may be other
            # machines' live ones: left alone.
            for stale in study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
            ):
                study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
        return study

    def run(self, arguments: list[str]) -> list:
        """Run trials until the study holds n_trials (all machines together)."""
        space, fixed = search_space(dict(self.settings.get("params") or {}), arguments)
        if not space:
            raise ConfigError(
                "nothing to search: give hydra.sweeper.params or key=choice(...) overrides."
            )
        n_trials, n_jobs = (
            int(self.settings.get("n_trials", 20)),
            int(self.settings.get("n_jobs", 1)),
        )
        for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
            if value < 1:
                raise ConfigError(f"hydra.sweeper.{key}={value}: give a whole number >= 1.")
        budget = FailureBudget(n_trials, float(self.settings.get("max_failure_rate", 0.5)))
        with sweep_lock(self.sweep_dir):
            results = self._loop(space, fixed, n_trials, n_jobs, budget)
            budget.finish(self.sweep_dir)
        return results

    def _loop(
        self, space: dict, fixed: list[str], n_trials: int, n_jobs: int, budget: FailureBudget
    ) -> list:
        study = self._study(space)
        if self.grid_size is not None:
            n_trials = min(n_trials, self.grid_size)
        if n_jobs > 1 and not any(o.startswith("speed.threads=") for o in fixed):
            # Parallel trials share the cores: one busy torch thread per core at most.
            fixed.append(f"speed.threads={max(1, (os.cpu_count() or 1) // n_jobs)}")
        if self.masked_storage != self.storage:
            fixed.append(f"hydra.sweeper.storage='{self.masked_storage}'")  # each job's hydra.yaml
        # Every launcher's jobs inherit this process's environment; see dltrain.sweep.pruning.
        os.environ[ENV_STORAGE] = self.storage
        done = len(study.get_trials(deepcopy=False, states=FINISHED))
        console.print(
            f"optuna study '{study.study_name}' in {self.masked_storage}: {done} trials done,"
            f" running up to {max(0, n_trials - done)} more"
        )
        results = []
        while not budget.exceeded:
            # Claimed under the study lock: machines sharing the study never overshoot n_trials.
            with study_lock(self.storage):
                count = min(n_jobs, n_trials - len(study.get_trials(deepcopy=False)))
                batch = [study.ask(space) for _ in range(count)]
            if not batch:
                break
            jobs = [
                tuple(
                    [
                        *fixed,
                        *(f"{k}={_format(v)}" for k, v in trial.params.items()),
                        f"+hydra.job.env_set.{ENV_STUDY}={study.study_name}",
                        f"+hydra.job.env_set.{ENV_TRIAL_ID}={trial._trial_id}",
                    ]
                )  # fmt: skip
                for trial in batch
            ]
            returns = self.launcher.launch(jobs, initial_job_idx=batch[0].number)
            for trial, job in zip(batch, returns, strict=True):
                budget.count(self._tell(study, trial, job))
                results.append(job)
        return results

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, job: Any) -> dict:
        """Record a finished job in the study and its trial.json; return its status."""
        try:
            value = float(job.return_value)
        except optuna.TrialPruned as pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            last = trial.storage.get_trial(trial._trial_id).intermediate_values
            status = {
                "status": "pruned",
                "value": last[max(last)] if last else None,
                "reason": str(pruned),
            }
        except Exception as error:  # any failure of a trial is recorded; the sweep goes on
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            status = failed(error)
        else:
            study.tell(trial, value)
            status = {"status": "complete", "value": value}
        record(job_folder(job, self.sweep_dir, trial.number), status)
        return status


def hide_storage(config: DictConfig, masked: str) -> None:
    """Replace the storage URL (its password) in the sweep's config and recorded overrides."""
    from omegaconf import open_dict, read_write

    hydra = config.hydra
    with read_write(hydra), open_dict(hydra):
        if hydra.sweeper.get("storage"):
            hydra.sweeper.storage = masked
        hydra.overrides.hydra = [
            f"hydra.sweeper.storage='{masked}'"
            if o.lstrip("+").startswith("hydra.sweeper.storage=")
            else o
            for o in hydra.overrides.hydra
        ]
