"""`dltrain find-batch-size`: the largest batch size within the memory budget."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from dltrain.console import console
from dltrain.tasks.evaluate import write_json


def main(cfg: DictConfig) -> int:
    """Print and return the batch size found."""
    from dltrain.tasks.build import build_datamodule
    from dltrain.tasks.finders import find_batch_size
    from dltrain.tasks.fit import build_model, quiet_lightning

    quiet_lightning()
    from dltrain.problems import build_problem

    datamodule = build_datamodule(cfg.data, build_problem(cfg))
    found = find_batch_size(cfg, build_model(cfg, datamodule), datamodule)
    write_json(Path(cfg.paths.run_dir) / "batch_size.json", found)
    console.print(f"largest batch size: {found['batch_size']} (bounded by {found['limit']})")
    console.print(f"use it with:  dltrain fit data.batch_size={found['batch_size']}")
    return found["batch_size"]
