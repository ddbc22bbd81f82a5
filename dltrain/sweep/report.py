"""A sweep's results, rebuilt from its run directories at any time (also mid-sweep):
sweep_results.csv, best_config.yaml, a rich table, mean ± std over seeds, and plots."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from rich.markup import escape
from rich.table import Table

from dltrain.console import console
from dltrain.problems import problem_class

STATUS_FILE = "trial.json"  # written by sweepers that know more (pruned, failed)


def _trial(run: Path) -> dict[str, Any]:
    config = OmegaConf.load(run / ".hydra" / "config.yaml")
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()) or []
    metric = str(config.monitor.metric)
    # The problem kind's test figures: test/acc, test/f1; test/rmse, test/r2 for regression.
    figures = problem_class(config).report_columns
    metrics = (
        json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    )
    known = json.loads((run / STATUS_FILE).read_text()) if (run / STATUS_FILE).is_file() else {}
    seconds = None
    if (run / "metrics.csv").is_file():
        with (run / "metrics.csv").open() as file:
            seconds = round(sum(float(row["epoch_seconds"]) for row in csv.DictReader(file)), 2)
    objectives = [str(m) for m in (config.monitor.get("metrics") or [])]
    direction = _directions(run / ".hydra" / "hydra.yaml", str(config.monitor.mode))
    return {
        "number": int(run.name) if run.name.isdigit() else run.name,
        # seeds_per_trial: the study's trial this run is one seed of, and the seeds' mean
        "trial": known.get("trial"),
        "trial_value": known.get("trial_value"),
        "objectives": objectives,
        "values": known.get("values"),
        "_maximize": [d in ("max", "maximize") for d in direction] if direction else None,
        "status": known.get("status") or ("complete" if metrics else "incomplete"),
        "overrides": " ".join(overrides),
        "metric": metric,
        "mode": str(config.monitor.mode),
        "value": metrics.get(metric, known.get("value")),
        **{column: metrics.get(column) for column in figures},
        "seconds": seconds,
        "diagnosis": " ".join(d["code"] for d in metrics.get("diagnosis", [])),
        "run_dir": str(run),
        "_overrides": overrides,
        "_figures": figures,
    }


def _directions(hydra_yaml: Path, mode: str) -> list[str] | None:
    """A multi-objective sweep's directions from a run's hydra.yaml (None: one objective)."""
    if not hydra_yaml.is_file():
        return None
    sweeper = OmegaConf.to_container(OmegaConf.load(hydra_yaml).hydra.sweeper, resolve=False)
    direction = sweeper.get("direction") if isinstance(sweeper, dict) else None
    if not isinstance(direction, list):
        return None
    return [mode if "${" in str(d) else str(d) for d in direction]


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every trial of a sweep directory, in trial order."""
    runs = [p.parent.parent for p in sweep_dir.glob("*/.hydra/config.yaml")]
    trials = [_trial(run) for run in runs]
    return sorted(trials, key=lambda t: (isinstance(t["number"], str), t["number"]))


def best_trial(trials: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The complete trial with the best optimized value (with seeds_per_trial: the best
    mean over a trial's seeds, then its best seed)."""
    done = [t for t in trials if t["status"] == "complete" and t["value"] is not None]
    if not done:
        return None
    pick = max if done[0]["mode"] == "max" else min
    return pick(done, key=lambda t: (t["trial_value"] if t["trial_value"] is not None
                                     else t["value"], t["value"]))  # fmt: skip


def pareto_trials(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The complete trials of a multi-objective sweep that no other trial dominates."""
    from dltrain.sweep.insight import pareto_front

    done = [t for t in trials if t["status"] == "complete" and t["values"] and t["_maximize"]]
    if not done:
        return []
    front = pareto_front({i: t["values"] for i, t in enumerate(done)}, done[0]["_maximize"])
    return [done[i] for i in front]


def seed_groups(trials: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Complete trials that differ only in seed=, grouped by their other overrides."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for trial in trials:
        if trial["status"] == "complete" and any(
            o.startswith("seed=") for o in trial["_overrides"]
        ):
            key = (
                " ".join(o for o in trial["_overrides"] if not o.startswith("seed="))
                or "(defaults)"
            )
            groups.setdefault(key, []).append(trial)
    return {key: members for key, members in groups.items() if len(members) > 1}


def _shown(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4f}"


def _mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def write_best_config(
    trial: dict[str, Any], sweep_dir: Path, path: Path | None = None, what: str = "The best trial"
) -> Path:
    """best_config.yaml: the best trial's full config as a primary config of its own."""
    path = path or sweep_dir / "best_config.yaml"
    config = OmegaConf.load(Path(trial["run_dir"]) / ".hydra" / "config.yaml")
    # Re-run as one fit: no sweep objectives, no study.
    if "monitor" in config:
        config.monitor.pop("metrics", None)
    figures = (
        ", ".join(f"{o} = {v}" for o, v in zip(trial["objectives"], trial["values"], strict=True))
        if trial["values"]
        else f"{trial['metric']} = {trial['value']}"
    )
    header = (
        f"# {what} of this sweep (#{trial['number']}: {trial['overrides']}),\n"
        f"# {figures}. Re-run it with:\n"
        f"#   dltrain fit --config-dir {path.parent} --config-name {path.stem}\n"
    )
    body = OmegaConf.to_yaml(
        OmegaConf.merge({"defaults": [{"hydra": "default"}, "_self_"]}, config)
    )
    path.write_text(header + body)
    return path


def write_pareto_configs(front: list[dict[str, Any]], sweep_dir: Path) -> Path:
    """best_configs/trial_<n>.yaml: one re-runnable config per Pareto-optimal trial."""
    folder = sweep_dir / "best_configs"
    if folder.is_dir():
        for old in folder.glob("trial_*.yaml"):
            old.unlink()
    folder.mkdir(exist_ok=True)
    for trial in front:
        write_best_config(trial, sweep_dir, folder / f"trial_{trial['number']}.yaml",
                          "A Pareto-optimal trial")  # fmt: skip
    return folder


def write_plots(trials: list[dict[str, Any]], sweep_dir: Path) -> list[Path]:
    """The optimized metric by trial (with the running best) and against each swept value."""
    from dltrain.plots import pyplot

    done = [t for t in trials if t["value"] is not None and isinstance(t["number"], int)]
    if not done:
        return []
    plt = pyplot()
    out = sweep_dir / "plots"
    out.mkdir(exist_ok=True)
    metric, mode = done[0]["metric"], done[0]["mode"]
    figure, axis = plt.subplots(figsize=(7, 4))
    values = [t["value"] for t in done]
    running = [
        max(values[: i + 1]) if mode == "max" else min(values[: i + 1]) for i in range(len(values))
    ]
    axis.plot([t["number"] for t in done], values, "o", label="trial")
    axis.step([t["number"] for t in done], running, where="post", label="best so far")
    axis.set(title=f"optimization history: {metric}", xlabel="trial", ylabel=metric)
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "history.png", dpi=110)
    plt.close(figure)
    paths = [out / "history.png"]
    swept = [dict(o.split("=", 1) for o in t["_overrides"] if "=" in o) for t in done]
    for key in sorted({key for values in swept for key in values}):
        points = [(values.get(key), t["value"]) for values, t in zip(swept, done, strict=True)]
        points = [(x, y) for x, y in points if x is not None]
        if len({x for x, _ in points}) < 2:
            continue
        figure, axis = plt.subplots(figsize=(6, 4))
        try:
            xs = [float(x) for x, _ in points]
            axis.plot(xs, [y for _, y in points], "o")
            if min(xs) > 0 and max(xs) / min(xs) >= 100:
                axis.set_xscale("log")
        except ValueError:  # a categorical choice (model=mlp, ...)
            labels = sorted({x for x, _ in points})
            axis.plot([labels.index(x) for x, _ in points], [y for _, y in points], "o")
            axis.set_xticks(range(len(labels)), labels)
        axis.set(title=f"{metric} against {key}", xlabel=key, ylabel=metric)
        figure.tight_layout()
        name = out / f"{key.replace('/', '_')}.png"
        figure.savefig(name, dpi=110)
        plt.close(figure)
        paths.append(name)
    return paths


def write_report(sweep_dir: Path) -> dict[str, Any]:
    """Write sweep_results.csv, best_config.yaml (best_configs/ for several objectives),
    importances and plots; print the table (none: no runs)."""
    trials = collect(sweep_dir)
    if not trials:
        return {"trials": 0, "best": None, "plots": []}
    figures = list(trials[0]["_figures"])  # the problem kind's test figures
    objectives = trials[0]["objectives"] if trials[0]["_maximize"] else []
    front = pareto_trials(trials) if objectives else []
    for t in trials:
        t["pareto"] = t in front
        for i, name in enumerate(objectives):
            t[name] = t["values"][i] if t["values"] else None
    columns = ["number", "status", "overrides", "metric", "value", *objectives,
               *(["pareto"] if objectives else []), *figures, "seconds", "trial", "trial_value",
               "diagnosis", "run_dir"]  # fmt: skip
    with (sweep_dir / "sweep_results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(trials)
    best = None if objectives else best_trial(trials)
    common = set.intersection(*(set(t["_overrides"]) for t in trials))
    table = Table(title=escape(f"sweep {sweep_dir} ({len(trials)} trials)"))
    if common:
        table.caption = escape(
            "every trial: " + " ".join(o for o in trials[0]["_overrides"] if o in common)
        )
    shown = objectives or [trials[0]["metric"]]
    for column in ("#", "status", "overrides", *shown, *(["pareto"] if objectives else []),
                   figures[0], "baseline", "s", "diagnosis"):  # fmt: skip
        table.add_column(escape(column))
    for t in trials:
        style = "bold green" if t is best or t["pareto"] else None
        varying = escape(" ".join(o for o in t["_overrides"] if o not in common))
        values = [_shown(t[o]) for o in objectives] if objectives else [_shown(t["value"])]
        table.add_row(str(t["number"]), t["status"], varying, *values,
                      *(["★" if t["pareto"] else ""] if objectives else []),
                      _shown(t.get(figures[0])), _shown(t.get(figures[-1])),
                      "" if t["seconds"] is None else f"{t['seconds']:.1f}", t["diagnosis"], style=style)  # fmt: skip
    console.print(table)
    for key, members in seed_groups(trials).items():
        console.print(
            f"{key}: over {len(members)} seeds, {members[0]['metric']} {_mean_std([m['value'] for m in members])},"
            f" {figures[0]} {_mean_std([m[figures[0]] for m in members])}",
            markup=False,
        )
    summary: dict[str, Any] = {"trials": len(trials), "best": None}
    if best is not None:
        path = write_best_config(best, sweep_dir)
        summary["best"] = {
            k: best[k] for k in ("number", "overrides", "metric", "value", "run_dir")
        }
        console.print(
            f"best: #{best['number']} {best['overrides']} ({best['metric']} {best['value']:.4f}) → {path}",
            markup=False,
        )
    if front:
        folder = write_pareto_configs(front, sweep_dir)
        summary["pareto"] = [t["number"] for t in front]
        numbers = ", ".join(f"#{t['number']}" for t in front)
        console.print(f"Pareto front ({' vs '.join(objectives)}): {numbers} → {folder}/",
                      markup=False)  # fmt: skip
    summary["plots"] = [str(p) for p in write_plots(trials, sweep_dir)]
    summary.update(show_insight(sweep_dir, objectives or [trials[0]["metric"]]))
    dashboard = dashboard_command(sweep_dir)
    if dashboard:
        console.print(
            f"live view of the study: {dashboard}  (pip install 'dltrain[dashboard]')",
            markup=False, soft_wrap=True,
        )  # fmt: skip
    return summary


def show_insight(sweep_dir: Path, objectives: list[str]) -> dict[str, Any]:
    """Importances (top three printed) and optuna's plots, from the sweep's own study."""
    from dltrain.sweep.insight import load_study, study_insight, write_importances

    study = load_study(sweep_dir)
    if study is None:
        return {}
    insight = study_insight(study, objectives, sweep_dir / "plots")
    if insight["importances"]:
        write_importances(sweep_dir, insight["importances"])
    for name, found in insight["importances"].items():
        top = list(found["importances"].items())[:3]
        console.print(
            f"most important for {name} ({found['method']}, {found['trials']} complete trials"
            + (f"; {found['pruned']} pruned ones not counted" if found.get("pruned") else "")
            + "): "
            + ", ".join(f"{key} {value:.2f}" for key, value in top),
            markup=False,
        )
    return {"importances": insight["importances"], "study_plots": insight["plots"]}


def dashboard_command(sweep_dir: Path) -> str | None:
    """The optuna-dashboard command for the sweep's own study storage, if it has one."""
    if (sweep_dir / "optuna.db").is_file():
        return f"optuna-dashboard sqlite:///{(sweep_dir / 'optuna.db').resolve()}"
    if (sweep_dir / "optuna.journal").is_file():
        return f"optuna-dashboard {(sweep_dir / 'optuna.journal').resolve()}"
    return None
