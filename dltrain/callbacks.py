"""dltrain's own Lightning callbacks."""

from __future__ import annotations

import contextlib
import csv
import functools
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.plugins import TorchCheckpointIO
from lightning.pytorch.profilers import PassThroughProfiler
from torch import Tensor

from dltrain.errors import Interrupted, Terminated

# The hooks Lightning calls on every callback at every batch.
BATCH_HOOKS = tuple(
    f"on_{stage}_batch_{when}"
    for stage in ("train", "validation", "test", "predict")
    for when in ("start", "end")
) + ("on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")


def skip_unused_batch_hooks(cls: type[Callback]) -> type[Callback]:
    """Class decorator: the batch hooks `cls` leaves as Callback's no-ops become None.

    Lightning calls a callback's hook only when it is callable, and otherwise calls every
    hook of every callback: ~2 us each, six a training step for each callback, ~3 ms an
    epoch per callback for a small model's 270 steps. (A subclass that overrides one of
    them has nothing to call with super() for it.)"""
    for name in BATCH_HOOKS:
        if getattr(cls, name) is getattr(Callback, name):
            setattr(cls, name, None)
    return cls


def learning_rates(trainer: L.Trainer) -> dict[str, float | None]:
    """The epoch's learning rate (`lr`, of the first parameter group) and, where parts of
    the net have their own (a fine-tuned backbone), `lr/<part>`."""
    if not trainer.optimizers:
        return {"lr": None}
    groups = trainer.optimizers[0].param_groups
    rates = {"lr": groups[0]["lr"]}
    first = groups[0].get("name", "").split("/")[0]
    for group in groups[1:]:
        part = group.get("name", "").split("/")[0]
        if part and part != first:
            rates.setdefault(f"lr/{part}", group["lr"])
    return rates


@skip_unused_batch_hooks
class EpochHistory(Callback):
    """Writes metrics.csv: one row per epoch with losses, metrics, learning rate and wall time.

    An epoch's time runs from its start until the next epoch starts (or training ends), so
    it includes validation and the checkpoint writes that Lightning runs after every other
    callback's epoch end; until then the row holds the time so far.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self._started = 0.0
        self._rates: dict[str, float | None] = {"lr": None}
        self._open = False  # the last row's time is not final yet

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish_epoch(trainer)
        self._started = time.perf_counter()
        self._rates = learning_rates(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish_epoch(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {
            k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if v.numel() == 1
        }
        self.rows.append(
            {
                "epoch": trainer.current_epoch,
                "step": trainer.global_step,
                **self._rates,
                **metrics,
                "epoch_seconds": round(time.perf_counter() - self._started, 4),
            }
        )
        self._open = True
        if trainer.is_global_zero:
            self._write()

    def _finish_epoch(self, trainer: L.Trainer) -> None:
        """The last epoch's final time, in metrics.csv and (with its training figures and
        learning rates, once per epoch) in the trackers; validation's come from Lightning."""
        if not self._open:
            return
        self._open = False
        row = self.rows[-1]
        row["epoch_seconds"] = round(time.perf_counter() - self._started, 4)
        if trainer.is_global_zero:
            self._write()
        logged = {k: v for k, v in row.items() if k.startswith(("train/", "lr"))}
        for logger in trainer.loggers:
            logger.log_metrics(
                {**{k: v or 0.0 for k, v in logged.items()}, "epoch_seconds": row["epoch_seconds"]},
                step=row["step"],
            )

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


@skip_unused_batch_hooks
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


@skip_unused_batch_hooks
class BestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint (save_top_k=1) that breaks a tie on the monitored metric
    by the lower `tie_breaker` (the validation loss). On a small validation set accuracy
    saturates early; without it the first epoch to reach the top is kept over later,
    better-fitted ones."""

    def __init__(self, *args: Any, tie_breaker: str = "val/loss", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tie_breaker = tie_breaker
        self.best_tie_value: float | None = None
        if (
            self._every_n_train_steps < 1
            and self._train_time_interval is None
            and type(self).on_train_batch_end is ModelCheckpoint.on_train_batch_end
        ):
            # No step or time trigger to check after every batch: skipped, as above.
            self.on_train_batch_end = None

    @functools.cached_property
    def state_key(self) -> str:
        # Lightning rebuilds this key from five settings at every hook it dispatches (~6
        # a training step); none of them changes after construction.
        return super().state_key

    def check_monitor_top_k(self, trainer: L.Trainer, current: Tensor | None = None) -> bool:
        if super().check_monitor_top_k(trainer, current):
            return True
        if current is None or self.save_top_k != 1 or not self.best_k_models:
            return False
        loss = trainer.callback_metrics.get(self.tie_breaker)
        tied = bool(current == self.best_k_models[self.kth_best_model_path])
        better = (loss is not None and self.best_tie_value is not None
                  and float(loss) < self.best_tie_value)  # fmt: skip
        return trainer.strategy.reduce_boolean_decision(tied and better)

    def _update_best_and_save(
        self, current: Tensor, trainer: L.Trainer, monitor_candidates: dict[str, Tensor]
    ) -> None:
        loss = monitor_candidates.get(self.tie_breaker)
        self.best_tie_value = float(loss) if loss is not None else None
        super()._update_best_and_save(current, trainer, monitor_candidates)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        # last.ckpt right after best.ckpt at the same step holds the same state: a hard
        # link to it instead of a second write (~10 ms for a 5 MB checkpoint). Replacing
        # either file later gives it its own copy.
        same_step = self._last_global_step_saved == trainer.global_step
        source = self._last_checkpoint_saved
        if not (same_step and source and filepath == self.last_model_path != source):
            super()._save_checkpoint(trainer, filepath)
            return
        linked = _link_into_place(source, filepath) if trainer.is_global_zero else False
        if not trainer.strategy.broadcast(linked):  # every process takes the same path
            super()._save_checkpoint(trainer, filepath)
            return
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def _save_last_if_missed(self, trainer: L.Trainer) -> None:
        # Lightning 2.6 writes last.ckpt only when the epoch also wrote a best checkpoint;
        # last.ckpt must be the latest epoch, so that a resume continues from there.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_tie_value": self.best_tie_value}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_tie_value = state_dict.get("best_tie_value")


def _link_into_place(source: str, target: str) -> bool:
    """Hard-link `source` at `target` atomically; False where the file system cannot."""
    partial = Path(target).with_name(f".{Path(target).name}.partial")
    try:
        partial.unlink(missing_ok=True)
        os.link(source, partial)
    except OSError:
        return False
    os.replace(partial, target)
    return True


@skip_unused_batch_hooks
class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar, touched every `refresh_rate` training batches (and at
    the first and last) only: its own per-batch update, metrics read and soft refresh cost ~50 us a
    step. Validation keeps Lightning's per-batch updates (its speed column needs them)."""

    def _skips(self, batch_idx: int, total: int | float) -> bool:
        # The first batch too: the speed column needs two updates in an epoch.
        redraw = (batch_idx + 1) % max(1, int(self.refresh_rate)) == 0
        return not redraw and 0 < batch_idx < total - 1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:  # fmt: skip
        if not self._skips(batch_idx, self.total_train_batches):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


class NoProfiler(PassThroughProfiler):
    """The Trainer's profiler when none is configured: Lightning's pass-through profiler,
    without the context manager it builds around every hook call (~1 us each, over 20
    calls a training step)."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._nothing


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file, then renames it into place: a crash or a
    kill -9 in the middle of a write leaves the previous checkpoint whole. Reads every
    checkpoint as data only (dltrain.checkpoints), whatever Lightning asks for."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options.")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            # Straight to the file: Lightning's own writer goes through an in-memory copy
            # and fsspec (~1.5 ms more for 5 MB); dltrain writes local files only.
            torch.save(checkpoint, partial)
        except BaseException:
            partial.unlink(missing_ok=True)  # a full disk keeps nothing half-written
            raise
        os.replace(partial, target)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        from dltrain.checkpoints import load_checkpoint

        return load_checkpoint(
            path, map_location=map_location if map_location is not None else "cpu"
        )


@skip_unused_batch_hooks
class SaveOnInterrupt(Callback):
    """On Ctrl-C (SIGINT) or SIGTERM during training: save a resumable checkpoint, then stop
    with exit code 130 or 143; the runner prints the command that resumes the run.

    The signal handler only records the request; the stop is raised at the end of the
    current batch. (An interrupt raised wherever the signal lands can be lost: Python
    ignores exceptions raised inside finalizers.) A second Ctrl-C stops at once.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._previous: dict[int, Any] = {}
        self._requested: int | None = None

    def _record(self, signum: int, frame: Any) -> None:
        if self._requested == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self._requested = signum

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = {
                s: signal.signal(s, self._record) for s in (signal.SIGINT, signal.SIGTERM)
            }

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _stop_if_requested(self) -> None:
        if self._requested is not None:
            raise Terminated() if self._requested == signal.SIGTERM else KeyboardInterrupt()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        self._stop_if_requested()

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        self._stop_if_requested()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        # Lightning's own SIGTERM handler runs before ours and may stop the loop first.
        terminated = isinstance(exception, (Terminated, SIGTERMException))
        if not (terminated or isinstance(exception, KeyboardInterrupt)):
            return
        self.on_fit_end(trainer, pl_module)
        trainer.save_checkpoint(self.path)
        raise Interrupted(143 if terminated else 130, str(self.path.parent.parent))
