"""Insight into an optuna search, from its study: hyperparameter importances, and the
Pareto front, parallel-coordinate and contour plots drawn by optuna's own matplotlib
visualization functions."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

# fANOVA fits a random forest to the trials: below this many complete ones, optuna's
# mean-decrease-in-impurity evaluator (a single forest, no functional decomposition) is used.
FANOVA_MIN_TRIALS = 10


def load_study(sweep_dir: Path) -> Any | None:
    """The optuna study a sweep directory holds in its own storage (None: no such file)."""
    from dltrain.sweep.storage import JOURNAL_FILE, SQLITE_FILE, default_storage, open_storage

    if not any((sweep_dir / name).is_file() for name in (JOURNAL_FILE, SQLITE_FILE)):
        return None
    import optuna

    storage = open_storage(default_storage(sweep_dir))
    names = optuna.get_all_study_names(storage)
    hydra = next(sweep_dir.glob("*/.hydra/hydra.yaml"), None)
    wanted = OmegaConf.load(hydra).hydra.sweeper.get("study_name") if hydra else None
    name = wanted if wanted in names else (names[0] if len(names) == 1 else None)
    return optuna.load_study(study_name=name, storage=storage) if name else None


def dominates(a: list[float], b: list[float], maximize: list[bool]) -> bool:
    """Whether values `a` are at least as good as `b` in every objective and better in one."""
    better = [x >= y if up else x <= y for x, y, up in zip(a, b, maximize, strict=True)]
    strictly = [x > y if up else x < y for x, y, up in zip(a, b, maximize, strict=True)]
    return all(better) and any(strictly)


def pareto_front(points: dict[Any, list[float]], maximize: list[bool]) -> list[Any]:
    """The keys of the points no other point dominates."""
    return [
        key
        for key, values in points.items()
        if not any(dominates(other, values, maximize) for k, other in points.items() if k != key)
    ]


def _evaluator(complete: int) -> tuple[Any, str]:
    """optuna's importance evaluator for a study with this many complete trials, and its name."""
    from optuna.importance import FanovaImportanceEvaluator, MeanDecreaseImpurityImportanceEvaluator

    if complete >= FANOVA_MIN_TRIALS:
        return FanovaImportanceEvaluator(seed=0), "fANOVA"
    return MeanDecreaseImpurityImportanceEvaluator(seed=0), "mean decrease in impurity"


def _save(axes: Any, path: Path) -> Path:
    figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    from dltrain.plots import pyplot

    pyplot().close(figure)
    return path


def study_insight(study: Any, objectives: list[str], out: Path) -> dict[str, Any]:
    """importances.json and plots/ (param_importances, parallel_coordinate, contour, and
    pareto_front for several objectives); returns the importances and what was skipped."""
    import optuna
    from optuna.importance import get_param_importances
    from optuna.visualization import matplotlib as views

    from dltrain.plots import pyplot

    pyplot()  # the headless backend, before optuna imports pyplot
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    # optuna's evaluators read complete trials only: a pruned trial has no final value.
    pruned = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)))
    result: dict[str, Any] = {"importances": {}, "plots": [], "notes": []}
    if len(complete) < 2:
        result["notes"].append("importances need at least 2 complete trials")
        return result
    out.mkdir(exist_ok=True)
    several = len(study.directions) > 1
    targets = {
        name: (lambda t, i=i: t.values[i]) if several else None
        for i, name in enumerate(objectives or ["value"])
    }
    evaluator, method = _evaluator(len(complete))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's ExperimentalWarning for its matplotlib views
        for name, target in targets.items():
            try:
                importances = dict(get_param_importances(study, evaluator=evaluator, target=target))
            except (RuntimeError, ValueError) as error:  # e.g. no parameter varied
                result["notes"].append(f"no importances for {name}: {error}")
                continue
            result["importances"][name] = {"method": method, "trials": len(complete),
                                           "pruned": pruned, "importances": importances}  # fmt: skip
        first_name, first_target = next(iter(targets.items()))
        ranked = list(result["importances"].get(first_name, {}).get("importances", {}))
        views_to_draw = [
            ("param_importances.png",
             lambda: views.plot_param_importances(study, evaluator=evaluator, target=first_target,
                                                  target_name=first_name)),
            ("parallel_coordinate.png",
             lambda: views.plot_parallel_coordinate(study, target=first_target, target_name=first_name)),
        ]  # fmt: skip
        if len(ranked) >= 2:
            views_to_draw.append(("contour.png", lambda: views.plot_contour(
                study, params=ranked[:2], target=first_target, target_name=first_name)))  # fmt: skip
        if several:
            views_to_draw.append(("pareto_front.png", lambda: views.plot_pareto_front(
                study, target_names=objectives)))  # fmt: skip
        for filename, draw in views_to_draw:
            try:
                result["plots"].append(str(_save(draw(), out / filename)))
            except (RuntimeError, ValueError) as error:
                result["notes"].append(f"no {filename}: {error}")
    return result


def write_importances(sweep_dir: Path, importances: dict[str, Any]) -> None:
    """importances.json beside sweep_results.csv."""
    (sweep_dir / "importances.json").write_text(json.dumps(importances, indent=2) + "\n")
