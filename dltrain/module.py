"""The LightningModule that trains any net for any problem kind; it knows nothing of Hydra.

What depends on the kind of target (loss, output head, metrics, the test report) comes
from the problem object (dltrain.problems)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from dltrain.data.base import PreparedBatch
from dltrain.errors import DivergenceError
from dltrain.problems import Classification, Regression

OptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
# (optimizer, how many times the schedule steps in this run) -> scheduler
SchedulerFactory = Callable[[torch.optim.Optimizer, int], Any]
# Batches' losses and outputs reach the training sums and the metrics in one update per
# about this many output values: on a CPU, a small MLP's step spends ~50 us on the tally
# ops and a validation step ~100 us in a torchmetrics update, whatever the batch's size.
PENDING_VALUES = 1 << 20


def mean() -> MeanMetric:
    """A running mean (of the loss) without a NaN scan per update: a NaN loss still shows as NaN."""
    return MeanMetric(nan_strategy="disable")


class Normalize(nn.Module):
    """(x - mean) / std with the training split's statistics, kept in the checkpoint."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone().float())
        self.register_buffer("std", std.clone().float())

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class Learner(L.LightningModule):
    """Training with the problem's loss (plus an optional L1 penalty) and per-epoch torchmetrics.

    The model takes inputs in the data's raw scale: `forward` preprocesses them first and
    applies the problem's head (a regression target's unit), so a checkpoint carries its
    own preprocessing (a `PreparedBatch` went through it already). Steps keep their losses
    and outputs on the device; sums and metrics take them once per group of batches and are
    read once per epoch, so the step loop has no host synchronisation. After `test`,
    `test_report` holds the problem's report (the confusion matrix and per-class figures;
    the test predictions).
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str | None = None,
        l1: float = 0.0,
        label_smoothing: float = 0.0,
        class_weights: Tensor | None = None,
        augmentation: nn.Module | None = None,
        normalize: nn.Module | None = None,
        input_shape: tuple[int, ...] | None = None,
        class_names: list[str] | None = None,
        channels_last: bool = False,
        data_description: dict[str, Any] | None = None,
        problem: Classification | Regression | None = None,
        head: nn.Module | None = None,
        notes: list[str] | None = None,
    ) -> None:
        super().__init__()
        # What building the model chose for the user (weights loaded, normalization).
        self.notes = list(notes or [])
        # Test-time augmentation when evaluating or predicting: "none" | "flip" (the mean of
        # the outputs for the image and its mirror image).
        self.tta = "none"
        self.problem = problem or Classification()
        # Plain data (the data's kind, a table's columns and vocabularies) that predict needs
        # to turn raw inputs into the model's input; kept in every checkpoint.
        self.data_description = dict(data_description or {"kind": "tensor"})
        # NHWC convolutions: measured 1.5x faster on x86 CPUs (benchmarks/overhead.py).
        self.channels_last = channels_last
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        # Saved in every checkpoint, so a checkpoint alone can rebuild and use the model.
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.class_names = (
            list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        )
        self.normalize = normalize or nn.Identity()
        self.net = net
        self.augmentation = augmentation
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.scheduler_interval, self.scheduler_monitor = scheduler_interval, scheduler_monitor
        self.l1 = l1
        # Outputs of the net -> the model's outputs (logits; a regression target's unit).
        self.head = head if head is not None else self.problem.head()
        self.criterion = self.problem.criterion(self.head, {}, class_weights, label_smoothing)
        # One container, so the model summary shows the net rather than a row per metric.
        self.metrics = nn.ModuleDict(
            {
                "val_loss": mean(),
                "val_scores": self.problem.scores(num_classes).clone(prefix="val/"),
                "test_loss": mean(),
                "test_scores": self.problem.scores(num_classes).clone(prefix="test/"),
                "test_extras": self.problem.test_extras(num_classes),
            }
        )
        self.test_report: dict[str, Any] = {}
        # Per stage, (loss, net outputs, targets) of batches not yet in the sums or metrics;
        # detached, on the device.
        self.pending: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {
            stage: [] for stage in ("train", "val", "test")
        }
        self.pending_values = PENDING_VALUES
        # How many times the schedule steps in this run (kept in checkpoints: see on_train_start).
        self.schedule_length: int | None = None
        # The epoch's training sample count, loss sum and the problem's figure sums, kept on
        # the device and looked at once an epoch, so the step loop never waits for the
        # host; a NaN or infinite loss carries into the sum, which is how divergence is noticed.
        self.register_buffer(
            "train_sums", torch.zeros(2 + len(self.problem.train_figures)), persistent=False
        )
        if input_shape is not None:
            # Lets the model summary show input/output sizes and FLOPs.
            self.example_input_array = torch.zeros(2, *input_shape)

    def compile_net(self, mode: str = "default") -> None:
        """torch.compile the net in place (speed.compile): its parameter names, and so the
        checkpoints, stay those of the plain net."""
        self.net.compile(mode=mode)
        if mode in ("reduce-overhead", "max-autotune"):
            # CUDA graphs reuse their output buffers at the next call: no outputs are kept.
            self.pending_values = 0
        self.notes.append(
            f"the net is compiled with torch.compile (mode {mode}) at its first batch."
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self._net_outputs(x))

    def prepare(self, x: Tensor) -> Tensor:
        """Raw inputs as the net takes them: preprocessed, channels-last for images."""
        x = self.normalize(x)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def preparation_ahead(self) -> Callable[[Tensor], Tensor] | None:
        """`prepare`, for data that can apply it once to whole splits rather than to every
        batch (PreparedBatch); None when augmentation must see the raw inputs first, or
        when there is nothing to prepare."""
        if self.augmentation is not None:
            return None
        if isinstance(self.normalize, nn.Identity) and not self.channels_last:
            return None
        return self.prepare

    def _net_outputs(self, x: Tensor, prepared: bool = False) -> Tensor:
        if not prepared:
            x = self.prepare(x)
        if self.tta == "flip" and not self.training:
            return (self.net(x) + self.net(x.flip(-1))) / 2
        return self.net(x)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Training batches only, whole batches on the device; Lightning also passes the
        # model summary's bare example input through here, which stays as it is.
        if (
            self.augmentation is not None
            and self.trainer.training
            and isinstance(batch, (tuple, list))
        ):
            x, y = batch
            return self.augmentation(x), y
        return batch

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["dltrain"] = {
            "input_shape": self.input_shape,
            "class_names": self.class_names,
            "data": self.data_description,
            "schedule_length": self.schedule_length,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The schedules' states are restored in on_train_start, once this run's schedule
        # length is known: a resume with more epochs stretches the schedule.
        self.resumed_schedules = checkpoint.get("lr_schedulers") or []
        self.resumed_schedule_length = checkpoint.get("dltrain", {}).get("schedule_length")
        checkpoint["lr_schedulers"] = []

    def on_train_start(self) -> None:
        saved, self.resumed_schedules = getattr(self, "resumed_schedules", []), []
        configs = self.trainer.lr_scheduler_configs
        if not saved or not configs:
            return
        for config, state in zip(configs, saved, strict=False):
            scheduler = config.scheduler
            if (
                isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
                or self.resumed_schedule_length == self.schedule_length
            ):
                scheduler.load_state_dict(state)
                continue
            # Another length (trainer.max_epochs changed): this run's schedule from its
            # start, stepped to where training resumes.
            for group, lr in zip(scheduler.optimizer.param_groups, scheduler.get_last_lr(),
                                 strict=True):  # fmt: skip
                group["lr"] = lr
            steps = self.trainer.global_step if config.interval == "step" else self.current_epoch
            with warnings.catch_warnings():  # "step() before optimizer.step()": on purpose
                warnings.simplefilter("ignore")
                for _ in range(steps):
                    scheduler.step()
            if self.trainer.is_global_zero:
                from dltrain.console import console

                console.print(
                    f"the schedule spans {self.schedule_length} {config.interval}s now (it"
                    f" spanned {self.resumed_schedule_length}): resumed at {steps} on the new one.",
                    highlight=False,
                )

    def weights(self) -> list[nn.Parameter]:
        """The parameters that L1 and weight decay apply to: no biases, no norm parameters."""
        return [p for p in self.net.parameters() if p.requires_grad and p.ndim > 1]

    def _stage(self, stage: str) -> tuple[MeanMetric, Any]:
        return self.metrics[f"{stage}_loss"], self.metrics[f"{stage}_scores"]

    def _loss(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        """A batch's loss; its detached loss and outputs are kept for the stage's figures."""
        x, y = batch
        raw = self._net_outputs(x, prepared=isinstance(batch, PreparedBatch))
        loss = self.criterion(raw, y)
        pending = self.pending[stage]
        pending.append((loss.detach(), raw.detach(), y))
        if len(pending) * raw.numel() >= self.pending_values:
            self._flush(stage)
        return loss

    def _flush(self, stage: str) -> None:
        """The stage's pending batches into the training sums or the metrics, in one update."""
        pending, self.pending[stage] = self.pending[stage], []
        if not pending:
            return
        losses, raw, targets = zip(*pending, strict=True)
        counts = torch.tensor(
            [t.numel() for t in targets], dtype=torch.float32, device=losses[0].device
        )
        count, loss_sum = counts.sum(), (torch.stack(losses) * counts).sum()
        outputs, y = self.head(torch.cat(raw)), torch.cat(targets)
        if stage == "train":
            tally = self.problem.train_tally(outputs, y)
            self.train_sums.add_(torch.cat([torch.stack([count, loss_sum]), tally]))
            return
        mean_loss, scores = self._stage(stage)
        mean_loss.update(loss_sum / count, weight=count)
        scores.update(outputs, y)
        if stage == "test":
            self.problem.update_extras(self.metrics["test_extras"], outputs, y)

    def _log_epoch(self, stage: str) -> None:
        self._flush(stage)
        mean_loss, metrics = self._stage(stage)
        self.log_dict(
            {f"{stage}/loss": mean_loss.compute(), **self.problem.bounded(metrics.compute())}
        )
        mean_loss.reset()
        metrics.reset()

    def _log_train_epoch(self) -> None:
        """The epoch's training loss and figures (all processes' sums under DDP)."""
        self._flush("train")
        sums = self.trainer.strategy.reduce(self.train_sums.clone(), reduce_op="sum")
        means = sums[1:] / sums[0].clamp_min(1)
        self.train_sums.zero_()
        if not torch.isfinite(means[0]):  # before this epoch's checkpoint: the last good one stays
            raise DivergenceError(
                f"training diverged: the loss became NaN or infinite in epoch {self.current_epoch}."
                " Lower the learning rate (optim.lr, or run `dltrain find-lr`); the last good"
                " checkpoint is checkpoints/last.ckpt."
            )
        figures = dict(zip(self.problem.train_figures, means[1:], strict=True))
        # Logged from a batch hook, which Lightning would send to the trackers as a step
        # metric: EpochHistory sends them once per epoch instead.
        self.log_dict(
            {"train/loss": means[0], **self.problem.bounded({f"train/{k}": v for k, v in figures.items()})},
            logger=False,
        )  # fmt: skip

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._loss(batch, "train")
        if self.l1:
            loss = loss + self.l1 * sum(w.abs().sum() for w in self.weights())
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._loss(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._loss(batch, "test")

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # The epoch's training metrics are logged after its last batch, before validation,
        # so every callback's on_train_epoch_end (metrics.csv, checkpoints) sees the whole epoch.
        if batch_idx + 1 >= self.trainer.num_training_batches:
            self._log_train_epoch()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        figures, self.test_report = self.problem.compute_extras(self.metrics["test_extras"])
        if figures:
            self.log_dict(figures)

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups: per part of the net (a pretrained backbone has
        its own learning-rate scale), weights with weight decay, biases and norms without.

        Frozen parameters are included: fine-tuning unfreezes them later, and the optimizer
        skips them while they have no gradient."""
        parts = (
            self.net.param_groups()
            if callable(getattr(self.net, "param_groups", None))
            else [("net", list(self.net.parameters()), 1.0)]
        )
        groups = []
        for name, params, scale in parts:
            for decays, suffix in ((True, ""), (False, "/no_decay")):
                chosen = [p for p in params if (p.ndim > 1) == decays]
                group = {"params": chosen, "name": name + suffix, "lr_scale": scale}
                if not decays:
                    group["weight_decay"] = 0.0
                if chosen:
                    groups.append(group)
        return groups

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.param_groups())
        for group in optimizer.param_groups:  # before the schedule reads each group's rate
            group["lr"] *= group["lr_scale"]
        if self.scheduler_factory is None:
            return optimizer
        if self.scheduler_interval == "step":
            total = int(self.trainer.estimated_stepping_batches)
        else:
            total = self.trainer.max_epochs
        # Only a schedule sized to the run (T_max, total_steps) depends on its length.
        sized = getattr(self.scheduler_factory, "keywords", {}).get("total_steps_arg")
        self.schedule_length = total if sized else None
        scheduler = {
            "scheduler": self.scheduler_factory(optimizer, total),
            "interval": self.scheduler_interval,
        }
        if self.scheduler_monitor:
            scheduler["monitor"] = self.scheduler_monitor
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
