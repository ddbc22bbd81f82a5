"""Lets Hydra's plugin scan find dltrain's sweeper in editable installs too."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def make_plugins_discoverable() -> None:
    """Add the directory of hydra_plugins.dltrain_optuna_sweeper to hydra_plugins.__path__.

    Hydra lists plugins with pkgutil over hydra_plugins.__path__; an editable install
    exposes our part of that namespace through an import hook pkgutil cannot list. A
    regular install needs nothing (the directory is already there). Call it after the
    last change to sys.path: a namespace path is recomputed when sys.path changes.
    """
    spec = importlib.util.find_spec("hydra_plugins.dltrain_optuna_sweeper")
    if spec is None or not spec.submodule_search_locations:
        return
    import hydra_plugins

    ours = str(Path(next(iter(spec.submodule_search_locations))).parent)
    if ours not in list(hydra_plugins.__path__):
        hydra_plugins.__path__.append(ours)
