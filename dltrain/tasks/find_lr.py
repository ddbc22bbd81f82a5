"""`dltrain find-lr`: the learning-rate range test, its plot and the override to use."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from dltrain.console import console
from dltrain.tasks.evaluate import write_json


def main(cfg: DictConfig) -> float:
    """Print and return the suggested learning rate."""
    from dltrain.tasks.build import build_datamodule
    from dltrain.tasks.finders import find_lr
    from dltrain.tasks.fit import build_model, quiet_lightning

    quiet_lightning()
    run_dir = Path(cfg.paths.run_dir)
    from dltrain.problems import build_problem

    datamodule = build_datamodule(cfg.data, build_problem(cfg))
    plot = run_dir / "plots" / "lr_finder.png"
    lr = find_lr(cfg, build_model(cfg, datamodule), datamodule, plot=plot)
    write_json(run_dir / "lr_finder.json", {"suggested_lr": lr, "plot": str(plot)})
    console.print(f"suggested learning rate: {lr:.4g}   (plot: {plot})")
    console.print(f"use it with:  dltrain fit optim.lr={lr:.4g}")
    return lr
