"""OmegaConf resolvers used by the built-in configs."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def unique_dir(path: str) -> str:
    """Return `path`, or `path_1`, `path_2`, ... when it exists, so runs never share a directory.

    Cached per config (and Hydra copies the cache into every sweep job), so one run
    resolves its directory once even when Hydra reads the key several times.
    """
    candidate, n = Path(path), 0
    while candidate.exists():
        n += 1
        candidate = Path(f"{path}_{n}")
    return str(candidate)


def register() -> None:
    """Register dltrain's resolvers (idempotent)."""
    OmegaConf.register_new_resolver("unique_dir", unique_dir, use_cache=True, replace=True)
