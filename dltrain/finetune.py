"""Fine-tuning callbacks: a frozen backbone for the first epochs, and weight averaging.

Both are Lightning's own mechanisms (BaseFinetuning, WeightAveraging) with the few rules
dltrain needs on top: what the backbone is comes from the net, and an average is only
evaluated and saved once it averages something.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BaseFinetuning, WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor

from dltrain.callbacks import skip_unused_batch_hooks


@skip_unused_batch_hooks
class FreezeBackbone(BaseFinetuning):
    """model.freeze_epochs=N: only the head trains for the first N epochs. The backbone's
    weights get no gradient and its batch-norm statistics are not updated; from epoch N on
    everything trains, the backbone at its own learning rate (model.backbone_lr_scale)."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        self.freeze(pl_module.net.backbone_modules(), train_bn=False)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Any) -> None:
        # Every epoch from N on, not only at N: a run resumed later must unfreeze too.
        # The backbone's parameters are in the optimizer from the start (their own group),
        # so the schedule covers them; frozen, they have no gradient and are skipped.
        if epoch >= self.epochs:
            self.make_trainable(pl_module.net.backbone_modules())


def ema_with_warmup(decay: float) -> Any:
    """An exponential moving average whose decay grows to `decay` as (1 + n) / (10 + n)
    after n updates (TensorFlow's ExponentialMovingAverage rule): early on the average
    follows the weights instead of holding on to their random initial values, which
    matters on short runs (0.999 would still be two-thirds initial weights after 400 steps)."""

    def average(averaged: Tensor, current: Tensor, updates: Tensor) -> Tensor:
        rate = min(decay, (1.0 + float(updates)) / (10.0 + float(updates)))
        return averaged + (current - averaged) * (1.0 - rate)

    return average


@skip_unused_batch_hooks
class AveragedWeights(WeightAveraging):
    """regularization.ema=<decay> (an exponential moving average, updated every step) or
    regularization.swa=<fraction> (the equal average of the weights at the end of each epoch
    from that fraction of trainer.max_epochs on). The average is what validation measures,
    what the checkpoints hold (the raw weights travel beside it for resuming) and what the
    run is tested with."""

    def __init__(self, ema: float | None = None, swa: float | None = None) -> None:
        if ema is not None:
            super().__init__(avg_fn=ema_with_warmup(ema))
        else:
            super().__init__()
        self.ema, self.swa = ema, swa
        self.start_epoch = 0
        self._swapped = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self.swa is not None:
            self.start_epoch = min(
                math.floor(self.swa * trainer.max_epochs), max(trainer.max_epochs - 1, 0)
            )

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        if self.ema is not None:
            return step_idx is not None
        return epoch_idx is not None and epoch_idx >= self.start_epoch

    def _ready(self) -> bool:
        """Whether the average holds at least one update (before that it is the initial copy)."""
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Outside fit (the final validate/test of the best checkpoint) the module already
        # holds the checkpoint's average.
        if trainer.state.fn == TrainerFn.FITTING and self._ready():
            self._swap_models(pl_module)
            self._swapped = True

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._swapped:
            self._swap_models(pl_module)
            self._swapped = False

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._ready():
            self._copy_average_to_current(pl_module)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._ready():
            super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Evaluating a checkpoint: its state_dict is the average, the model to measure.
        if trainer.state.fn == TrainerFn.FITTING and "averaging_state" in checkpoint:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
