"""The user's own config directories, added to Hydra's search path (hydra.searchpath)."""

from __future__ import annotations

from pathlib import Path

from dltrain.errors import ConfigError

FLAGS = ("--config-dir", "-cd")
LOCAL_FOLDER = "dltrain"


def split_config_dirs(args: list[str]) -> tuple[list[str], list[Path]]:
    """Take `--config-dir DIR` (or -cd DIR, --config-dir=DIR; repeatable) out of `args`."""
    rest, dirs = [], []
    items = iter(args)
    for arg in items:
        if arg in FLAGS:
            value = next(items, None)
            if value is None:
                raise ConfigError(f"{arg} needs a directory: {arg} path/to/configs")
            dirs.append(Path(value))
        elif arg.startswith("--config-dir="):
            dirs.append(Path(arg.split("=", 1)[1]))
        else:
            rest.append(arg)
    return rest, dirs


def user_config_dirs(explicit: list[Path]) -> list[Path]:
    """--config-dir folders, then ./dltrain/ when it holds configs (and is not Python code)."""
    for folder in explicit:
        if not folder.is_dir():
            raise ConfigError(f"--config-dir {folder}: no such directory.")
    found = [folder.resolve() for folder in explicit]
    local = Path.cwd() / LOCAL_FOLDER
    if local.is_dir() and not (local / "__init__.py").exists() and any(local.rglob("*.yaml")):
        found.append(local.resolve())
    return found


def searchpath_override(dirs: list[Path]) -> list[str]:
    """The hydra.searchpath override that adds `dirs` (nothing when there are none)."""
    if not dirs:
        return []
    return ["hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]"]
