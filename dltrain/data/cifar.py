"""CIFAR-10 in its standard python-pickle batches, with its own test split."""

from __future__ import annotations

import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from dltrain.data.base import InMemoryDataModule, Samples
from dltrain.data.download import download
from dltrain.errors import DataError, MissingDataError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
NEEDED = [*TRAIN_FILES, "test_batch", "batches.meta"]


def unpickle(path: Path) -> dict:
    """One CIFAR batch file; the published files are Python 2 pickles with bytes keys.

    Pickle can run code: only read files you fetched from the publisher (data.download
    checks their MD5) or made yourself.
    """
    try:
        with path.open("rb") as file:
            batch = pickle.load(file, encoding="bytes")
    except Exception as error:
        raise DataError(f"{path} is not a readable CIFAR-10 batch: {error}") from error
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}


class Cifar10DataModule(InMemoryDataModule):
    """CIFAR-10: 50000 train + 10000 test colour images [3, 32, 32] of 10 classes."""

    pixel_max = 255.0

    def load(self) -> Samples:
        folder = Path(self.data_dir) / "cifar10" / BATCHES
        missing = [name for name in NEEDED if not (folder / name).is_file()]
        if missing and self.download:
            self._fetch(folder)
        elif missing:
            raise MissingDataError(
                f"CIFAR-10 files not found: put {', '.join(missing)} in {folder}/ (the contents of"
                f" {URL}), or set data.download=true to fetch and MD5-check that archive."
            )
        names = [
            n.decode() if isinstance(n, bytes) else n
            for n in unpickle(folder / "batches.meta")["label_names"]
        ]
        x_train, y_train = zip(
            *(self._read(folder / name, len(names)) for name in TRAIN_FILES), strict=True
        )
        test = self._read(folder / "test_batch", len(names))
        return Samples(torch.cat(x_train), torch.cat(y_train), names, test=test)

    @staticmethod
    def _read(path: Path, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = unpickle(path)
        data, labels = np.asarray(batch["data"], dtype=np.uint8), np.asarray(batch["labels"])
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
            raise DataError(f"{path}: expected 'data' of shape [N, 3072] and N labels.")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise DataError(f"{path} has labels outside 0..{num_classes - 1}.")
        x = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32))
        return x, torch.from_numpy(labels.astype(np.int64))

    def _fetch(self, folder: Path) -> None:
        archive = download(URL, folder.parent / "cifar-10-python.tar.gz", ARCHIVE_MD5)
        with tempfile.TemporaryDirectory(dir=folder.parent) as staging:
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
            shutil.rmtree(folder, ignore_errors=True)
            Path(staging, BATCHES).rename(folder)  # appears only once complete
