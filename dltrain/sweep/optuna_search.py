"""An optuna study driven through Hydra's launcher: ask, launch a batch of jobs, tell.

Hydra's sweep syntax maps to optuna distributions: choice(...) -> categorical,
range(a, b[, step]) -> integer (or categorical for floats), interval(a, b) -> float,
int(interval(a, b)) -> integer, tag(log, ...) -> log scale. The study lives in a storage
(SQLite in the sweep directory by default), so running the same sweep again continues
it; a trial that raises is recorded as failed, a pruned one as pruned.
"""

from __future__ import annotations

import json
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
from dltrain.errors import ConfigError, DltrainError
from dltrain.sweep.pruning import ENV_STORAGE, ENV_STUDY, ENV_TRIAL_ID, build_pruner
from dltrain.sweep.report import STATUS_FILE, write_report

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
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.grid_size: int | None = None

    def _study(self, space: dict) -> optuna.Study:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = self.settings.get("storage") or f"sqlite:///{self.sweep_dir.resolve()}/optuna.db"
        sampler_cfg = OmegaConf.create(self.settings.get("sampler") or {})
        if str(sampler_cfg.get("_target_", "")).endswith("GridSampler"):
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
            sampler = AskTellGridSampler(search_space=grid, **kwargs)
            self.grid_size = math.prod(len(choices) for choices in grid.values())
        else:
            sampler = instantiate(sampler_cfg) if sampler_cfg else None
        pruner = build_pruner(self.settings.get("pruner"))
        direction = DIRECTIONS.get(str(self.settings.get("direction", "maximize")))
        if direction is None:
            raise ConfigError(
                f"hydra.sweeper.direction={self.settings.get('direction')}: use maximize or minimize."
            )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=self.settings.get("study_name", "dltrain"), storage=storage,
                                    sampler=sampler, pruner=pruner, direction=direction, load_if_exists=True)  # fmt: skip
        if not self.settings.get("storage"):
            # Left running by an interrupted sweep: nobody will finish it now. (In a shared
            # database, RUNNING trials may belong to other machines' live sweeps.)
            for stale in study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
            ):
                study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
        self.storage = storage
        return study

    def run(self, arguments: list[str]) -> list:
        """Run trials until the study holds n_trials finished ones."""
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
        study = self._study(space)
        if self.grid_size is not None:
            n_trials = min(n_trials, self.grid_size)
        if n_jobs > 1 and not any(o.startswith("speed.threads=") for o in fixed):
            # Parallel trials share the cores: one busy torch thread per core at most.
            fixed.append(f"speed.threads={max(1, (os.cpu_count() or 1) // n_jobs)}")
        done = len(study.get_trials(deepcopy=False, states=FINISHED))
        console.print(
            f"optuna study '{study.study_name}' in {self.storage}: {done} trials done, running {max(0, n_trials - done)} more"
        )
        failures, results = 0, []
        while done < n_trials:
            batch = [study.ask(space) for _ in range(min(n_jobs, n_trials - done))]
            jobs = [
                tuple(
                    [
                        *fixed,
                        *(f"{k}={_format(v)}" for k, v in trial.params.items()),
                        f"+hydra.job.env_set.{ENV_STORAGE}='{self.storage}'",
                        f"+hydra.job.env_set.{ENV_STUDY}={study.study_name}",
                        f"+hydra.job.env_set.{ENV_TRIAL_ID}={trial._trial_id}",
                    ]
                )  # fmt: skip
                for trial in batch
            ]
            returns = self.launcher.launch(jobs, initial_job_idx=batch[0].number)
            for trial, job in zip(batch, returns, strict=True):
                failures += self._tell(study, trial, job)
                results.append(job)
            done += len(batch)
            if failures > float(self.settings.get("max_failure_rate", 0.5)) * n_trials:
                break  # more failures than the sweep allows for its planned trials
        if failures:
            write_report(self.sweep_dir)
            raise DltrainError(
                f"{failures} of {done} trials failed (their errors are in {STATUS_FILE} of each trial's"
                f" directory and in sweep_results.csv under {self.sweep_dir})."
            )
        return results

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, job: Any) -> int:
        """Record a finished job in the study; 1 when it failed."""
        folder = (
            Path(str(job.hydra_cfg.hydra.runtime.output_dir))
            if job.hydra_cfg
            else self.sweep_dir / str(trial.number)
        )
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
            status = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        else:
            study.tell(trial, value)
            status = {"status": "complete", "value": value}
        if folder.is_dir():
            (folder / STATUS_FILE).write_text(json.dumps(status, indent=2) + "\n")
        return int(status["status"] == "failed")
