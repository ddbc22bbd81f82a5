"""The Hydra callback that writes the sweep report when a multirun ends, whatever the sweeper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepReport(Callback):
    """On multirun start: the tracker's parent run for the sweep (dltrain.sweep.tracking).
    On multirun end: sweep_results.csv, best_config.yaml, the table and plots, also on
    the parent run."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from dltrain.sweep.tracking import open_parent

        open_parent(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from dltrain.sweep.report import write_report
        from dltrain.sweep.tracking import close_parent

        sweep_dir = Path(str(config.hydra.sweep.dir))
        if sweep_dir.is_dir():
            close_parent(sweep_dir, write_report(sweep_dir))
