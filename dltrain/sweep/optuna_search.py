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
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.distributions import CategoricalDistribution

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


def search_space(params: dict[str, Any], arguments: list[str]) -> tuple[dict, dict, list[str]]:
    """(key -> distribution, key -> (distribution, condition) for the conditional params,
    fixed overrides) from the config's params and the command line.

    A param is either Hydra sweep syntax or {values: <sweep syntax>, when: {key: value}}."""
    lines, conditions = {}, {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            if "values" not in value:
                raise ConfigError(
                    f"hydra.sweeper.params.{key}: a conditional parameter needs `values` and"
                    " `when`, e.g. {values: 'interval(0.5, 0.99)', when: {optim: sgd}}."
                )
            conditions[key] = dict(value.get("when") or {})
            value = value["values"]
        lines[key] = f"{key}={value}"
    for argument in arguments:
        key = argument.split("=", 1)[0]
        lines[key] = argument  # the command line wins over the sweep config
        conditions.pop(key, None)
    space, conditional, fixed = {}, {}, []
    for override in OverridesParser.create().parse_overrides(list(lines.values())):
        key = override.get_key_element()
        if conditions.get(key):
            sweep = override.is_sweep_override()
            choice = (
                distribution(override) if sweep else CategoricalDistribution([override.value()])
            )
            conditional[key] = (choice, conditions[key])
        elif override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed.append(override.input_line)
    return space, conditional, fixed


def holds(condition: dict[str, Any], known: Callable[[str], Any]) -> bool:
    """Whether every key of a `when:` mapping has its value (or one of a list of values)."""
    for key, allowed in condition.items():
        options = allowed if isinstance(allowed, (list, tuple, ListConfig)) else [allowed]
        if str(known(key)) not in {str(option) for option in options}:
            return False
    return True


def suggest(trial: optuna.trial.Trial, name: str, dist: Any) -> Any:
    """trial.suggest_* for a distribution of the search space."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def flat(mapping: Any, prefix: str = "") -> dict[str, Any]:
    """{optim: {lr: 0.1}} and {optim.lr: 0.1} alike -> {"optim.lr": 0.1}."""
    items = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            items.update(flat(value, f"{prefix}{key}."))
        else:
            items[f"{prefix}{key}"] = value
    return items


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
        # Set by run(): the search's shape beyond the plain space.
        self.directions: list[str] = ["maximize"]
        self.conditional: dict[str, tuple[Any, dict]] = {}
        self.seeds_per_trial = 1
        self.custom_search_space: Callable[[DictConfig, Any], Any] | None = None

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

    def _directions(self) -> list[str]:
        """maximize/minimize per objective, checked against monitor.metrics."""
        setting = self.settings.get("direction", "maximize")
        several = isinstance(setting, (list, tuple, ListConfig))
        given = list(setting) if several else [setting]
        directions = [DIRECTIONS.get(str(d)) for d in given]
        if not directions or None in directions:
            shown = f"[{', '.join(map(str, given))}]" if several else setting
            raise ConfigError(
                f"hydra.sweeper.direction={shown}: use maximize or minimize (a list of them for"
                " several objectives)."
            )
        objectives = list(self.config.monitor.get("metrics") or [])
        if len(directions) > 1 and len(objectives) != len(directions):
            raise ConfigError(
                f"hydra.sweeper.direction has {len(directions)} objectives: name them in"
                f" monitor.metrics, e.g. monitor.metrics=[{self.config.monitor.metric},"
                "cost/latency_ms] (one per direction)."
            )
        if len(objectives) > 1 and len(directions) == 1:
            raise ConfigError(
                f"monitor.metrics has {len(objectives)} objectives: give hydra.sweeper.direction"
                f" one per objective, e.g. [maximize, minimize]."
            )
        return directions

    def _study(self, space: dict) -> optuna.Study:
        sampler = self._sampler(space)
        self.directions = self._directions()
        if self.settings.get("pruner") and not self.prunes:
            why = (
                "optuna cannot prune a multi-objective study"
                if len(self.directions) > 1
                else "a trial's seeds would report one learning curve each"
            )
            raise ConfigError(f"pruning does not work here ({why}): add hydra.sweeper.pruner=null.")
        pruner = build_pruner(self.settings.get("pruner"))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = create_study(self.storage, study_name=self.settings.get("study_name", "dltrain"),
                             sampler=sampler, pruner=pruner, directions=self.directions)  # fmt: skip
        if not self.settings.get("storage"):
            # Left running by a killed sweep of this directory (the sweep lock says no other
            # process uses it now). In a shared database, RUNNING trials may be other
            # machines' live ones: left alone.
            for stale in study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
            ):
                study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
        for params in self.settings.get("enqueue") or []:
            study.enqueue_trial(self._enqueued(params, space), skip_if_exists=True)
        return study

    @property
    def prunes(self) -> bool:
        """Whether trials may report learning curves to a pruner: one objective, one seed."""
        return len(self.directions) == 1 and self.seeds_per_trial == 1

    def _enqueued(self, params: Any, space: dict) -> dict[str, Any]:
        """One hydra.sweeper.enqueue entry as optuna params, checked against the space."""
        if not isinstance(params, Mapping):
            raise ConfigError(
                f"hydra.sweeper.enqueue: {params} is not a mapping; give e.g."
                " [{optim.lr: 0.003, optim: adam}]."
            )
        values = flat(OmegaConf.to_container(params) if OmegaConf.is_config(params) else params)
        known = {**space, **{k: d for k, (d, _) in self.conditional.items()}}
        for key, value in list(values.items()):
            if isinstance(value, list):  # list choices are kept as their override text
                value = values[key] = "[" + ",".join(str(v) for v in value) + "]"
            dist = known.get(key)
            if dist is None:
                if self.settings.get("custom_search_space"):
                    continue  # the custom function may suggest it
                raise ConfigError(
                    f"hydra.sweeper.enqueue: {key} is not in the search space ({', '.join(known)})."
                )
            if isinstance(dist, CategoricalDistribution):
                inside = value in dist.choices
            else:
                inside = isinstance(value, (int, float)) and dist.low <= value <= dist.high
            if not inside:
                raise ConfigError(
                    f"hydra.sweeper.enqueue: {key}={value} lies outside its search space {dist}."
                )
        return values

    def run(self, arguments: list[str]) -> list:
        """Run trials until the study holds n_trials (all machines together)."""
        space, self.conditional, fixed = search_space(
            dict(self.settings.get("params") or {}), arguments
        )
        self.seeds_per_trial = int(self.settings.get("seeds_per_trial") or 1)
        if self.seeds_per_trial < 1:
            raise ConfigError(
                f"hydra.sweeper.seeds_per_trial={self.seeds_per_trial}: give a whole number >= 1."
            )
        if self.seeds_per_trial > 1 and ("seed" in space or "seed" in self.conditional):
            raise ConfigError(
                "hydra.sweeper.seeds_per_trial runs seed, seed+1, ... for every trial: do not"
                " also sweep seed (seed=N sets the first one)."
            )
        self._check_conditions(space, fixed)
        if not space and not self.conditional:
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

    def _known(self, fixed: list[str]) -> Callable[[str], Any]:
        """The value of a key outside the search space: a fixed override, the config group's
        choice, else the composed config's value."""
        given = dict(line.lstrip("+").split("=", 1) for line in fixed if "=" in line)
        choices = self.config.hydra.runtime.get("choices") or {}

        def value(key: str) -> Any:
            if key in given:
                return given[key]
            if key in choices:
                return choices[key]
            return OmegaConf.select(self.config, key, default=None)

        return value

    def _check_conditions(self, space: dict, fixed: list[str]) -> None:
        """Every key a `when:` names is swept before it, set, or in the config."""
        known, earlier = self._known(fixed), set(space)
        for key, (_, condition) in self.conditional.items():
            for name in condition:
                if name not in earlier and known(name) is None:
                    raise ConfigError(
                        f"hydra.sweeper.params.{key}: its condition names {name}, which is"
                        " neither swept before it nor set in the config."
                    )
            earlier.add(key)
        sampler = str((self.settings.get("sampler") or {}).get("_target_", ""))
        if self.conditional and sampler.endswith("GridSampler"):
            raise ConfigError("the grid sampler cannot search conditional parameters.")

    def _ask(self, study: optuna.Study, space: dict, fixed: list[str]) -> optuna.trial.Trial:
        """A new trial: the space's params, then the conditional ones whose condition holds,
        then whatever hydra.sweeper.custom_search_space suggests."""
        trial = study.ask(space)
        known = self._known(fixed)
        for key, (dist, condition) in self.conditional.items():
            if holds(condition, lambda name: trial.params.get(name, known(name))):
                suggest(trial, key, dist)
        if self.custom_search_space is not None:
            self.custom_search_space(self.config, trial)
        return trial

    def _jobs(self, trial: optuna.trial.Trial, fixed: list[str], study: optuna.Study) -> list:
        """The job overrides of one trial: one job per seed."""
        params = [f"{k}={_format(v)}" for k, v in trial.params.items()]
        pruning = [f"+hydra.job.env_set.{ENV_STUDY}={study.study_name}",
                   f"+hydra.job.env_set.{ENV_TRIAL_ID}={trial._trial_id}"] if self.prunes else []  # fmt: skip
        if self.seeds_per_trial == 1:
            return [tuple([*fixed, *params, *pruning])]
        base = int(self._known(fixed)("seed") or 0)
        others = [o for o in fixed if not o.startswith("seed=")]
        return [tuple([*others, *params, f"seed={base + k}"]) for k in range(self.seeds_per_trial)]

    def _loop(
        self, space: dict, fixed: list[str], n_trials: int, n_jobs: int, budget: FailureBudget
    ) -> list:
        from hydra.utils import get_method

        target = self.settings.get("custom_search_space")
        try:
            self.custom_search_space = get_method(str(target)) if target else None
        except Exception as error:  # noqa: BLE001 - any import failure is the user's to fix
            raise ConfigError(
                f"hydra.sweeper.custom_search_space={target}: {error}. Give a function"
                " 'module.function' importable from where dltrain runs."
            ) from None
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
                count = min(
                    max(1, n_jobs // self.seeds_per_trial),
                    n_trials - len(study.get_trials(deepcopy=False)),
                )
                batch = [self._ask(study, space, fixed) for _ in range(count)]
            if not batch:
                break
            jobs = [job for trial in batch for job in self._jobs(trial, fixed, study)]
            returns = self.launcher.launch(
                jobs, initial_job_idx=batch[0].number * self.seeds_per_trial
            )
            per_trial = self.seeds_per_trial
            for i, trial in enumerate(batch):
                finished = returns[i * per_trial : (i + 1) * per_trial]
                budget.count(self._tell(study, trial, finished))
                results.extend(finished)
        return results

    def _values(self, job: Any) -> list[float]:
        """A finished job's objective values (re-raises what the job raised)."""
        returned = job.return_value
        values = list(returned) if isinstance(returned, (list, tuple, ListConfig)) else [returned]
        if len(values) != len(self.directions):
            raise ConfigError(
                f"the trial returned {len(values)} values for {len(self.directions)} objectives."
            )
        return [float(v) for v in values]

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, jobs: list) -> dict:
        """Record a trial's finished jobs (one per seed) in the study and each job's
        trial.json; return the trial's status."""
        outcomes = []
        for job in jobs:
            try:
                outcomes.append(("complete", self._values(job), None))
            except optuna.TrialPruned as pruned:
                outcomes.append(("pruned", None, str(pruned)))
            except Exception as error:  # any failure of a trial is recorded; the sweep goes on
                outcomes.append(("failed", None, error))
        statuses = {state for state, _, _ in outcomes}
        trial_info: dict[str, Any] = {}
        if "failed" in statuses:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            error = next(e for state, _, e in outcomes if state == "failed")
            status = failed(error)
        elif "pruned" in statuses:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            last = trial.storage.get_trial(trial._trial_id).intermediate_values
            reason = next(e for state, _, e in outcomes if state == "pruned")
            status = {"status": "pruned", "value": last[max(last)] if last else None,
                      "reason": reason}  # fmt: skip
        else:
            runs = [values for _, values, _ in outcomes]
            means = [statistics.fmean(column) for column in zip(*runs, strict=True)]
            if len(runs) > 1:  # seeds_per_trial: the study gets the mean, the std is kept
                stds = [statistics.stdev(column) for column in zip(*runs, strict=True)]
                trial.set_user_attr("seed_values", runs)
                trial.set_user_attr("std", stds)
                trial_info = {"trial": trial.number, "seeds": len(runs), "trial_value": means[0],
                              "trial_std": stds[0]}  # fmt: skip
            study.tell(trial, means if len(means) > 1 else means[0])
            status = {"status": "complete", "value": means[0]}
            if len(means) > 1:
                status["values"] = means
        for k, (job, (_, values, _)) in enumerate(zip(jobs, outcomes, strict=True)):
            own = dict(status)
            if len(jobs) > 1:
                own.update(trial_info, seed_index=k)
                if values is not None:
                    own["value"] = values[0]
                    if len(values) > 1:
                        own["values"] = values
            record(job_folder(job, self.sweep_dir, trial.number * len(jobs) + k), own)
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
