"""Fetching dataset files: checksum-verified and atomic, so a partial download is never used."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from dltrain.errors import DataError


def md5sum(path: Path) -> str:
    """MD5 of a file: the checksum the dataset publishers give."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, destination: Path, md5: str, timeout: float = 60) -> Path:
    """Fetch `url` to `destination`; it appears only once complete and its MD5 matches."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(url, timeout=timeout) as reply:
            for block in iter(lambda: reply.read(1 << 20), b""):
                file.write(block)
        actual = md5sum(Path(partial))
        if actual != md5:
            raise DataError(
                f"the download of {url} is corrupt (MD5 {actual}, expected {md5}); nothing"
                " was kept. Try again, or put the file there yourself."
            )
        os.replace(partial, destination)
    except (urllib.error.URLError, OSError) as error:
        raise DataError(f"could not download {url}: {error}") from error
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return destination
