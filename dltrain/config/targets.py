"""What a config read from a run directory may build.

`test`, `predict`, `export` and `fit resume=` instantiate the `_target_`s of a run's saved
config and overrides. A run directory someone shared could name any callable there
(`_target_: os.system`), so those targets are checked before anything is built: dltrain's
own objects, classes of the libraries dltrain configures (torch optimizers, schedulers and
layers, Lightning's Trainer, callbacks and loggers), or a subclass of `nn.Module`,
`LightningDataModule`, Lightning's `Callback` or `Logger` (a user's own net, data,
callback or logger). Functions and other classes from anywhere else are refused.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig

from dltrain.errors import DataError

LIBRARY_CLASSES = ("torch.optim.", "torch.nn.", "lightning.pytorch.")


def _targets(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, target) of every `_target_` below `node`, hydra's own settings excluded."""
    if isinstance(node, DictConfig):
        for key in node.keys():
            if path == "" and key == "hydra":
                continue
            child = node._get_node(key)
            if key == "_target_":
                yield path or "_target_", str(node[key])
            else:
                yield from _targets(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for i, child in enumerate(node._iter_ex(resolve=False)):
            yield from _targets(child, f"{path}[{i}]")


def _allowed(target: str) -> bool:
    if target.startswith("dltrain."):
        return True
    from hydra.utils import get_object

    try:
        found = get_object(target)
    except Exception:  # noqa: BLE001 - not importable: nothing to build
        return False
    if not inspect.isclass(found):
        return False
    if target.startswith(LIBRARY_CLASSES):
        return True
    import lightning.pytorch as pl
    import torch

    # A user's own net, data module, callback or logger, from code installed here.
    return issubclass(
        found, (torch.nn.Module, pl.LightningDataModule, pl.Callback, pl.loggers.Logger)
    )


def check_targets(cfg: DictConfig, source: Any) -> None:
    """Refuse a run's config whose `_target_`s name anything but what dltrain builds."""
    for key, target in _targets(cfg):
        if not _allowed(target):
            raise DataError(
                f"{source}: {key}: {target} is not something a dltrain run builds (dltrain"
                " objects, torch optimizers, schedulers and modules, Lightning classes):"
                " refused. dltrain never runs code named by a run directory."
            )
