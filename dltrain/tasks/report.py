"""`dltrain report <sweep dir>`: rebuild a sweep's results from its run directories."""

from __future__ import annotations

from pathlib import Path

from dltrain.errors import ConfigError
from dltrain.sweep.report import write_report


def main(args: list[str]) -> int:
    """Write the report of each sweep directory given."""
    if not args:
        raise ConfigError(
            "dltrain report needs a sweep directory: dltrain report runs/fit/multirun/<timestamp>"
        )
    for folder in args:
        if not Path(folder).is_dir():
            raise ConfigError(f"{folder}: no such directory.")
        if not write_report(Path(folder))["trials"]:
            raise ConfigError(
                f"{folder} holds no runs (no */.hydra/config.yaml): pass a multirun directory."
            )
    return 0
