"""`dltrain compare RUN_DIR RUN_DIR [...] [--csv]`: what differs between runs, and their figures."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from dltrain.errors import ConfigError

# Keys that differ between any two runs without being a choice (where and when it ran).
NOT_CHOICES = ("paths.", "hydra.", "task")


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """{'optim.lr': 0.003, ...} for a nested config."""
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def read_run(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(flat config, metrics.json) of a run or trial directory."""
    import yaml

    config_file = folder / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise ConfigError(
            f"{folder} is not a run directory (no .hydra/config.yaml): pass directories that"
            " `dltrain fit` wrote, or trial directories of a sweep."
        )
    config = flatten(yaml.safe_load(config_file.read_text()) or {})
    metrics_file = folder / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return config, metrics


def comparison(folders: list[Path]) -> tuple[list[str], list[list[str]], int]:
    """The header (key, then one column per run), the rows: the config keys that differ
    (a key a run lacks shows as '-'), then the validation and test figures; and how many
    rows are config keys."""
    runs = [read_run(folder) for folder in folders]
    keys = sorted({k for config, _ in runs for k in config if not k.startswith(NOT_CHOICES)})
    differing = [
        k for k in keys if len({json.dumps(c.get(k, "-"), default=str) for c, _ in runs}) > 1
    ]
    order = ("val/", "test/", "baseline/")
    figures = sorted(
        {k for _, m in runs for k, v in m.items()
         if k.startswith(order) and isinstance(v, (int, float)) and not isinstance(v, bool)},
        key=lambda k: (next(i for i, p in enumerate(order) if k.startswith(p)), k),
    )  # fmt: skip
    rows = [[k, *(_setting(config.get(k, "-")) for config, _ in runs)] for k in differing]
    rows += [[k, *(_shown(metrics.get(k, "-")) for _, metrics in runs)] for k in figures]
    return ["key", *(str(folder) for folder in folders)], rows, len(differing)


def _setting(value: Any) -> str:
    """A config value as it is written in YAML (null, true, 0.001)."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return str(value)


def main(args: list[str]) -> int:
    """Print the comparison of the run directories given (--csv: as CSV on stdout)."""
    as_csv = "--csv" in args
    folders = [Path(a) for a in args if a != "--csv"]
    if len(folders) < 2:
        raise ConfigError(
            "dltrain compare needs two or more run directories:"
            " dltrain compare runs/fit/<timestamp> runs/fit/<timestamp> [--csv]"
        )
    header, rows, settings = comparison(folders)
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return 0
    from rich.table import Table

    from dltrain.console import console

    table = Table(title=f"{len(folders)} runs: the settings that differ, then the figures")
    for column in header:
        table.add_column(column, overflow="fold")
    for i, row in enumerate(rows):
        table.add_row(*row, end_section=i == settings - 1)
    console.print(table)
    return 0
