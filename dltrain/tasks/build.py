"""Builds the run's objects from a composed config with hydra.utils.instantiate."""

from __future__ import annotations

from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dltrain.data.base import InMemoryDataModule
from dltrain.module import Classifier


def build_datamodule(data_cfg: DictConfig) -> InMemoryDataModule:
    """The data module, set up: its input shape and class names are known afterwards."""
    datamodule = instantiate(data_cfg)
    datamodule.setup("fit")
    return datamodule


def build_net(model_cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The net `model.net._target_` with every other `model.*` key as a keyword argument.

    Input shape and class count come from the data, never from the config.
    """
    hyperparameters = OmegaConf.to_container(model_cfg, resolve=True)
    hyperparameters.pop("net")
    return instantiate(
        model_cfg.net, input_shape=list(input_shape), num_classes=num_classes, **hyperparameters
    )


def build_module(
    cfg: DictConfig, net: nn.Module, input_shape: tuple[int, ...], num_classes: int
) -> Classifier:
    """The LightningModule with its loss, penalties, optimizer and schedule."""
    sched = cfg.sched
    return Classifier(
        net,
        num_classes=num_classes,
        optimizer=instantiate(cfg.optim),
        scheduler=instantiate(sched.scheduler) if sched.scheduler is not None else None,
        scheduler_interval=sched.interval,
        scheduler_monitor=sched.get("monitor"),
        l1=cfg.regularization.l1,
        label_smoothing=cfg.regularization.label_smoothing,
        input_shape=input_shape,
    )


def _instantiate_all(named: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a name -> config mapping, skipping the ones set to null."""
    return [instantiate(node) for node in (named or {}).values() if node is not None]


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """Lightning's Trainer with the configured callbacks, early stopping and loggers."""
    callbacks = _instantiate_all(cfg.callbacks)
    if cfg.regularization.early_stopping is not None:
        callbacks.append(instantiate(cfg.regularization.early_stopping))
    loggers = _instantiate_all(cfg.logger)
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=cfg.paths.run_dir,
    )
