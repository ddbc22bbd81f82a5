"""Builds the run's objects from a composed config with hydra.utils.instantiate."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from dltrain.data.base import InMemoryDataModule
from dltrain.errors import ConfigError
from dltrain.module import Learner
from dltrain.schedules import make_scheduler

# data.batch_size=auto: the data is set up with this size until the finder picks one.
PROVISIONAL_BATCH_SIZE = 64


def build_datamodule(data_cfg: DictConfig, problem: Any = None) -> InMemoryDataModule:
    """The data module for the problem (default: classification), set up: its input shape
    and class names are known afterwards."""
    provisional = {"batch_size": PROVISIONAL_BATCH_SIZE} if data_cfg.batch_size == "auto" else {}
    datamodule = instantiate(data_cfg, _convert_="all", **provisional)
    if problem is not None:
        datamodule.problem = problem
    datamodule.setup("fit")
    return datamodule


def build_net(
    model_cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int, **from_data: Any
) -> nn.Module:
    """The net `model.net._target_` with every other `model.*` key as a keyword argument.

    Input shape and class count (and, for tables, the categorical columns' cardinalities:
    `categories=`) come from the data, never from the config.
    """
    hyperparameters = OmegaConf.to_container(model_cfg, resolve=True)
    hyperparameters.pop("net")
    if from_data and not _accepts(model_cfg.net, from_data):
        raise ConfigError(
            f"{model_cfg.net._target_} does not take {', '.join(from_data)}, which this data"
            " needs (categorical table columns): use model=mlp, or add the argument to your net."
        )
    return instantiate(
        model_cfg.net,
        input_shape=list(input_shape),
        num_classes=num_classes,
        **hyperparameters,
        **from_data,
    )


def _accepts(net_cfg: DictConfig, arguments: dict[str, Any]) -> bool:
    import inspect

    from hydra.utils import get_class

    try:
        parameters = inspect.signature(get_class(net_cfg._target_)).parameters
    except Exception:  # noqa: BLE001 - instantiate reports a bad target itself
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return all(name in parameters for name in arguments)


def build_data_net(model_cfg: DictConfig, datamodule: InMemoryDataModule) -> nn.Module:
    """The net for this data: its input shape, output width and whatever else it needs."""
    outputs = datamodule.problem.outputs(datamodule.num_classes)
    return build_net(model_cfg, num_classes=outputs, **datamodule.net_inputs())


def class_weights(setting: Any, counts: Tensor) -> Tensor | None:
    """loss.class_weights -> one loss weight per class: null, 'balanced' or a list."""
    if setting is None:
        return None
    if setting == "balanced":
        # scikit-learn's "balanced": n_samples / (n_classes * samples of the class)
        return counts.sum() / (len(counts) * counts.clamp_min(1).float())
    values = list(setting) if isinstance(setting, Sequence) and not isinstance(setting, str) else []
    if len(values) == len(counts) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values
    ):
        return torch.tensor(values, dtype=torch.float32)
    raise ConfigError(
        f"loss.class_weights={setting} does not fit the data's {len(counts)} classes: use null,"
        f" balanced, or a list of {len(counts)} positive numbers."
    )


def build_augmentation(
    augment_cfg: DictConfig, input_shape: tuple[int, ...], masked: bool = False
) -> nn.Module | None:
    """The augment group's augmentation for this data: images, or masked time series."""
    from dltrain.augment import build_augmentation as augmentation

    settings = OmegaConf.to_container(augment_cfg, resolve=True)
    return augmentation(input_shape, **settings, masked=masked)


def architecture_only(model_cfg: DictConfig) -> DictConfig:
    """The model config that rebuilds a trained net for its checkpoint's weights: no
    pretrained download, no weights file (the checkpoint holds them)."""
    rebuilt = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=True))
    for key, value in (("pretrained", False), ("weights", None)):
        if key in rebuilt:
            rebuilt[key] = value
    return rebuilt


def preprocessing(datamodule: InMemoryDataModule, net: nn.Module) -> tuple[nn.Module, list[str]]:
    """The model's first step on raw inputs, and what was chosen: a pretrained backbone's
    mean and std (on the data's pixel scale) where the net asks for them, else the
    statistics of the training split."""
    from dltrain.module import Normalize

    stats = getattr(net, "pretrained_stats", None)
    if stats is None:
        return datamodule.preprocess(), []
    if datamodule.pixel_max is None:
        return datamodule.preprocess(), [
            "the data does not say its pixel scale: inputs are normalized with the training"
            " split's statistics, not the backbone's pretrained ones."
        ]
    mean, std = stats
    if datamodule.input_shape[0] == 1:  # one channel, repeated to the backbone's three
        mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
    scale = datamodule.pixel_max
    note = (
        f"inputs normalized with the backbone's pretrained mean {mean.tolist()} and std"
        f" {std.tolist()} (pixels / {scale:g})."
    )
    return Normalize((mean * scale).view(-1, 1, 1), (std * scale).view(-1, 1, 1)), [note]


def build_module(cfg: DictConfig, datamodule: InMemoryDataModule, net: nn.Module) -> Learner:
    """The LightningModule with its loss, penalties, augmentation, optimizer and schedule."""
    sched = cfg.sched
    scheduler = None
    if sched.scheduler is not None:
        scheduler = functools.partial(
            make_scheduler,
            factory=instantiate(sched.scheduler, _convert_="all"),
            total_steps_arg=sched.get("total_steps_arg"),
            warmup=sched.get("warmup", 0),
            warmup_start_factor=sched.get("warmup_start_factor", 0.1),
        )
    loss = cfg.get("loss") or {}
    weights = loss.get("class_weights")
    problem = datamodule.problem
    normalize, notes = preprocessing(datamodule, net)
    report = getattr(net, "load_report", None)
    return Learner(
        net,
        num_classes=datamodule.num_classes,
        optimizer=instantiate(cfg.optim),
        scheduler=scheduler,
        scheduler_interval=sched.interval,
        scheduler_monitor=sched.get("monitor"),
        l1=cfg.regularization.l1,
        label_smoothing=cfg.regularization.label_smoothing,
        class_weights=class_weights(weights, datamodule.class_counts()) if weights else None,
        augmentation=build_augmentation(
            cfg.augment, datamodule.input_shape, datamodule.net_inputs().get("masked", False)
        ),
        normalize=normalize,
        input_shape=datamodule.input_shape,
        class_names=datamodule.class_names,
        channels_last=bool(cfg.speed.channels_last) and len(datamodule.input_shape) == 3,
        data_description=datamodule.describe(),
        problem=problem,
        head=problem.head(datamodule.splits["train"][1]),
        notes=([report] if report else []) + notes,
    )


def _instantiate_all(named: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a name -> config mapping, skipping the ones set to null."""
    return [instantiate(node) for node in (named or {}).values() if node is not None]


def finetuning_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """A frozen backbone for the first model.freeze_epochs epochs; the weight average of
    regularization.ema or regularization.swa."""
    from dltrain.finetune import AveragedWeights, FreezeBackbone

    callbacks: list[L.Callback] = []
    if cfg.model.get("freeze_epochs"):
        callbacks.append(FreezeBackbone(int(cfg.model.freeze_epochs)))
    ema, swa = cfg.regularization.get("ema"), cfg.regularization.get("swa")
    if ema is not None and swa is not None:
        raise ConfigError(
            f"regularization.ema={ema} and regularization.swa={swa}: choose one weight average"
            " (set the other to null)."
        )
    if ema is not None or swa is not None:
        callbacks.append(AveragedWeights(ema=ema, swa=swa))
    return callbacks


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """Lightning's Trainer with the configured callbacks, early stopping and loggers."""
    callbacks = _instantiate_all(cfg.callbacks)
    if cfg.regularization.early_stopping is not None:
        callbacks.append(instantiate(cfg.regularization.early_stopping))
    callbacks += finetuning_callbacks(cfg)
    from dltrain.sweep.pruning import pruning_callback

    pruning = pruning_callback(cfg.monitor.metric)  # only inside an optuna sweep
    if pruning is not None:
        callbacks.append(pruning)
    loggers = _instantiate_all(cfg.logger)
    from lightning.pytorch.callbacks import ModelSummary

    from dltrain.callbacks import AtomicCheckpointIO, NoProfiler

    # The layer table is for `--verbose`; the start summary already gives the parameter count.
    summary = {} if cfg.get("verbose", True) else {"enable_model_summary": False}
    if summary:
        callbacks = [c for c in callbacks if not isinstance(c, ModelSummary)]
    # +trainer.profiler=simple (or advanced, pytorch) still gives Lightning's profilers.
    profiler = {} if cfg.trainer.get("profiler") else {"profiler": NoProfiler()}
    return instantiate(
        cfg.trainer,
        **summary,
        **profiler,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=cfg.paths.run_dir,
        plugins=[AtomicCheckpointIO()],
    )


def build_evaluation_trainer(cfg: DictConfig) -> L.Trainer:
    """A Trainer that only evaluates: the run's device settings, a progress bar, no files."""
    from lightning.pytorch.callbacks import RichProgressBar

    return L.Trainer(
        accelerator=cfg.trainer.get("accelerator", "auto"),
        devices=1,
        precision=cfg.trainer.get("precision", "32-true"),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[RichProgressBar()],
        default_root_dir=cfg.paths.run_dir,
        # The run's own limits (trainer=smoke tests 2 batches), so figures match what fit reported.
        limit_val_batches=cfg.trainer.get("limit_val_batches"),
        limit_test_batches=cfg.trainer.get("limit_test_batches"),
    )
