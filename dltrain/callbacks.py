"""dltrain's own Lightning callbacks."""

from __future__ import annotations

import csv
import os
import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


class EpochHistory(Callback):
    """Writes metrics.csv: one row per epoch with losses, metrics, learning rate and wall time."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self._started = 0.0
        self._lr: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()
        self._lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {
            k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1
        }
        seconds = round(time.perf_counter() - self._started, 4)
        self.rows.append(
            {"epoch": trainer.current_epoch, "lr": self._lr, **metrics, "epoch_seconds": seconds}
        )
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


class RngState(Callback):
    """Saves the random number generators in every checkpoint and restores them on resume,
    so dropout masks and augmentation after a resume match an uninterrupted run."""

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, cached = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": [kind, keys.tolist(), position, has_gauss, cached],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        random.setstate(state_dict["python"])
        kind, keys, position, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
