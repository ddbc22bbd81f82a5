"""dltrain's own Lightning callbacks."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class EpochHistory(Callback):
    """Writes metrics.csv: one row per epoch with losses, metrics, learning rate and wall time.

    Lightning calls this callback's `on_train_epoch_end` before the module logs its
    training metrics, so a row is completed when the next epoch starts or training ends.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None
        self._started = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._complete(trainer)
        self._started = time.perf_counter()
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        self._pending = {"epoch": trainer.current_epoch, "lr": lr}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:
            self._pending["epoch_seconds"] = round(time.perf_counter() - self._started, 4)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._complete(trainer)

    def _complete(self, trainer: L.Trainer) -> None:
        if self._pending is None or "epoch_seconds" not in self._pending:
            return
        metrics = {
            k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1
        }
        self.rows.append({**self._pending, **metrics})
        self._pending = None
        if trainer.is_global_zero:
            self._write()

    def _write(self) -> None:
        columns = ["epoch"]
        for row in self.rows:
            columns += [key for key in row if key not in columns]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".csv.tmp")
        with partial.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(partial, self.path)  # readers never see a half-written file

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict["rows"])
