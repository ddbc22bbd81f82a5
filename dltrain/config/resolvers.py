"""OmegaConf resolvers used by the built-in configs."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def unique_dir(path: str) -> str:
    """Create and return `path`, or `path_1`, `path_2`, ... when it exists, so runs never
    share a directory: each candidate is created exclusively, so two runs started in the
    same second (same timestamp) get one directory each.

    Cached per config (and Hydra copies the cache into every sweep job), so one run
    resolves its directory once even when Hydra reads the key several times.
    """
    candidate, n = Path(path), 0
    try:
        existing = next(p for p in candidate.parents if p.exists())
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a directory", str(existing))
        candidate.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                candidate.mkdir()
                return str(candidate)
            except FileExistsError:
                n += 1
                candidate = Path(f"{path}_{n}")
    except OSError as error:
        from dltrain.errors import ConfigError

        where = f" ({error.filename}: {error.strerror})" if error.filename else ""
        raise ConfigError(
            f"cannot write the run directory {candidate}{where}. Choose another place with"
            " paths.root=... (or hydra.run.dir=...)."
        ) from None


def amp_precision() -> str:
    """Lightning's mixed precision for this GPU: bf16-mixed where supported (no loss
    scaling needed), else 16-mixed; 32-true without a GPU (the config check says why)."""
    import torch

    if not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def register() -> None:
    """Register dltrain's resolvers (idempotent)."""
    OmegaConf.register_new_resolver("unique_dir", unique_dir, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("amp_precision", amp_precision, replace=True)
