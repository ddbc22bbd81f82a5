"""The one way dltrain reads a checkpoint: as data, never as code.

Every load (test, predict, export, fit resume=, best-checkpoint evaluation) ends up in
`load_checkpoint`, which calls torch.load with weights_only=True explicitly: torch's
environment switch TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD only changes loads that leave the
argument out. Everything dltrain stores in a checkpoint is tensors and plain containers
of str/int/float/bool, so a checkpoint it wrote always loads this way.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

from dltrain.errors import DataError

URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class UnsafeCheckpointError(DataError):
    """A checkpoint whose pickle asks for code (a global that is not plain data): exit 2."""


def _unsafe_global(error: Exception) -> str:
    """The global a refused pickle asked for, from torch's message."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return found.group(1) if found else "a non-data object"


def check_local(path: str | Path, key: str = "ckpt_path") -> Path:
    """A checkpoint path that is a local file; URLs are refused (dltrain never downloads them)."""
    text = str(path)
    if URL.match(text) and not text.startswith("file://"):
        raise DataError(
            f"{key}={text}: dltrain loads checkpoints from local files only; download it"
            " yourself, check where it came from, and pass the file's path."
        )
    return Path(text.removeprefix("file://"))


def load_checkpoint(path: str | Path, map_location: Any = "cpu", hint: str = "") -> dict[str, Any]:
    """The checkpoint at `path` as plain data; exit-2 errors for unsafe or unreadable files."""
    import torch

    file = check_local(path)
    if not file.is_file():
        raise DataError(f"no checkpoint at {file}.{hint}")
    try:
        checkpoint = torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights_only" not in str(error) and "GLOBAL" not in str(error):
            raise DataError(f"{file} is not a readable checkpoint ({error}).{hint}") from None
        raise UnsafeCheckpointError(
            f"{file} asks to load {_unsafe_global(error)}, which is code, not data: refused."
            f" dltrain never loads code from checkpoints or weight files.{hint}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split()).split(". ")[0][:160]
        raise DataError(
            f"{file} is truncated or corrupt and cannot be read ({reason}).{hint}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise DataError(f"{file} holds a {type(checkpoint).__name__}, not a dltrain checkpoint.")
    return checkpoint


def unsafe_globals(path: str | Path) -> list[str]:
    """The globals a checkpoint needs beyond what weights-only loading allows (empty: safe)."""
    import torch

    return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
