"""Composing configs without running a Hydra app (for `check` and `config`)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig

from dltrain.config.search_path import searchpath_override

# Placeholder for the keys Hydra sets only when a run starts.
NOT_STARTED = "<the run directory, made when a run starts>"


def compose_fit(
    overrides: list[str], config_dirs: list[Path], hydra_node: bool = False
) -> DictConfig:
    """The fit config for `overrides`, as `dltrain fit` would compose it."""
    from hydra import compose, initialize_config_module

    from dltrain.config.resolvers import register

    register()
    with initialize_config_module("dltrain.configs", version_base="1.3"):
        return compose(
            "fit",
            overrides=[*overrides, *searchpath_override(config_dirs)],
            return_hydra_config=hydra_node,
        )


def group_options(config_dirs: list[Path]) -> dict[str, list[str]]:
    """Every config group and its options: built-in ones, then the user's directories."""
    roots = [files("dltrain.configs"), *config_dirs]
    groups: dict[str, set[str]] = {}
    for root in roots:
        for folder in root.iterdir():
            if not folder.is_dir() or folder.name in ("hydra", "__pycache__"):
                continue
            options = {
                Path(entry.name).stem for entry in folder.iterdir() if entry.name.endswith(".yaml")
            }
            groups.setdefault(folder.name, set()).update(options)
    return {group: sorted(options) for group, options in sorted(groups.items()) if options}


def experiments(config_dirs: list[Path], builtin: bool) -> list[str]:
    """The experiment configs of the user's directories (and dltrain's own with `builtin`)."""
    names = set(group_options(config_dirs).get("experiment", [])) if builtin else set()
    for root in config_dirs:
        folder = Path(root) / "experiment"
        if folder.is_dir():
            names.update(entry.stem for entry in folder.glob("*.yaml"))
    return sorted(names)
