"""`dltrain check [globs] [--config-dir DIR] [--builtin | --all]`: every experiment config
composes and survives a one-batch train/val/test smoke run. Made for a project's CI: with
config directories it checks the project's own experiments (--builtin: dltrain's, --all:
both); without, dltrain's own."""

from __future__ import annotations

import fnmatch
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf
from rich.table import Table

from dltrain.config.compose import compose_fit, experiments
from dltrain.config.search_path import split_config_dirs, user_config_dirs
from dltrain.config.validate import validate
from dltrain.console import console
from dltrain.errors import ConfigError, MissingDataError, describe

SMOKE = [
    "trainer=smoke",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


def smoke_run(name: str, config_dirs: list[Path], scratch: Path) -> tuple[str, str]:
    """(status, detail) of one experiment's smoke run."""
    from dltrain.tasks import fit

    try:
        cfg = compose_fit(
            [f"experiment={name}", *SMOKE, f"paths.run_dir={scratch / name}"], config_dirs
        )
        if OmegaConf.is_missing(cfg.data, "path"):  # a recipe for the user's own files
            return "no data", "data.path is not set (the recipe is for your own files)"
        validate(cfg)
        with console.capture():
            fit.main(cfg)
    except MissingDataError as error:
        return "no data", str(error)
    except Exception as error:  # every failure is reported in the table, none stops the check
        return "failed", describe(error)[1].split(" Set DLTRAIN_DEBUG")[0]
    return "ok", ""


def main(args: list[str]) -> int:
    """Smoke-run the matching experiments; exit 1 naming each one that failed."""
    patterns, dirs = split_config_dirs(args)
    scope = {flag for flag in ("--builtin", "--all") if flag in patterns}
    patterns = [p for p in patterns if p not in scope]
    config_dirs = user_config_dirs(dirs)
    if not config_dirs or scope == {"--all"}:
        found = experiments(config_dirs, builtin=True)
    elif scope == {"--builtin"}:
        found = experiments([], builtin=True)
    else:
        found = experiments(config_dirs, builtin=False)
    names = [
        name
        for name in found
        if any(fnmatch.fnmatch(name, pattern) for pattern in patterns or ["*"])
    ]
    if not names:
        where = ", ".join(map(str, config_dirs)) if config_dirs and not scope else "dltrain"
        raise ConfigError(
            f"no experiment config in {where} matches {' '.join(patterns) or '*'}"
            " (--builtin: dltrain's own experiments, --all: both)."
        )
    table = Table(title="dltrain check: one-batch smoke run of each experiment")
    for column, justify in (
        ("experiment", "left"),
        ("status", "left"),
        ("seconds", "right"),
        ("detail", "left"),
    ):
        table.add_column(column, justify=justify)
    failed = []
    with tempfile.TemporaryDirectory(prefix="dltrain-check-") as scratch:
        for name in names:
            started = time.perf_counter()
            status, detail = smoke_run(name, config_dirs, Path(scratch))
            colour = {"ok": "green", "no data": "yellow", "failed": "red"}[status]
            table.add_row(
                name,
                f"[{colour}]{status}[/{colour}]",
                f"{time.perf_counter() - started:.1f}",
                detail[:160],
            )
            if status == "failed":
                failed.append(name)
    console.print(table)
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]")
        return 1
    return 0
