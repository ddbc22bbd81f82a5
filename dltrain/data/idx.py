"""MNIST and Fashion-MNIST: the standard IDX files (gzipped or not) with their own test split."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dltrain.data.base import InMemoryDataModule, Samples
from dltrain.data.download import download
from dltrain.errors import DataError, MissingDataError

# IDX type codes (third byte of the magic number) -> big-endian numpy types.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> Tensor:
    """An IDX file (http://yann.lecun.com/exdb/mnist/) as a tensor; gzip is detected."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(f"{path} is not a readable gzip file: {error}") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(
            f"{path} is not an IDX file: its magic number is 0x{raw[:4].hex()},"
            " expected 0x000008NN (NN = number of dimensions)."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    if len(raw) - header != math.prod(dims) * dtype.itemsize:
        raise DataError(f"{path} is truncated or padded: its header promises shape {dims}.")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return torch.from_numpy(array.astype(dtype.newbyteorder("=")))


class IdxDataModule(InMemoryDataModule):
    """A dataset in MNIST's four IDX files under <data_dir>/<folder>/."""

    pixel_max = 255.0

    title = ""  # the dataset's name in messages
    folder = ""
    base_url = ""
    files: dict[str, tuple[str, str]] = {}  # role -> (file name as published, MD5)
    classes: list[str] = []

    def load(self) -> Samples:
        paths = self._find_files()
        x_train, y_train = self._read_pair(paths["train_images"], paths["train_labels"])
        x_test, y_test = self._read_pair(paths["test_images"], paths["test_labels"])
        return Samples(x_train, y_train, list(self.classes), test=(x_test, y_test))

    def _find_files(self) -> dict[str, Path]:
        folder = Path(self.data_dir) / self.folder
        found, missing = {}, []
        for role, (name, md5) in self.files.items():
            candidates = [folder / name, folder / name.removesuffix(".gz")]
            existing = next((c for c in candidates if c.is_file()), None)
            if existing is None and self.download:
                existing = download(self.base_url + name, folder / name, md5)
            if existing is None:
                missing.append(name)
            found[role] = existing
        if missing:
            raise MissingDataError(
                f"{self.title} files not found in {folder}/:"
                f" put {', '.join(missing)} there (gzipped or not), or set data.download=true"
                f" to fetch them from {self.base_url} (MD5-checked)."
            )
        return found

    def _read_pair(self, images_path: Path, labels_path: Path) -> tuple[Tensor, Tensor]:
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{images_path} ({tuple(images.shape)}) and {labels_path} ({tuple(labels.shape)})"
                " do not pair up as [N, H, W] images and [N] labels."
            )
        labels = labels.long()
        bad = labels[(labels < 0) | (labels >= len(self.classes))]
        if len(bad):
            raise DataError(
                f"{labels_path} has label {bad[0].item()}, outside 0..{len(self.classes) - 1}."
            )
        return images.float().unsqueeze(1), labels


class MnistDataModule(IdxDataModule):
    """MNIST handwritten digits: 60000 train + 10000 test images [1, 28, 28]."""

    title = "MNIST"
    folder = "mnist"
    base_url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    files = {
        "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    }
    classes = [str(d) for d in range(10)]


class FashionMnistDataModule(IdxDataModule):
    """Zalando's Fashion-MNIST: 60000 train + 10000 test clothing images [1, 28, 28]."""

    title = "Fashion-MNIST"
    folder = "fashion_mnist"
    base_url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    files = {
        "train_images": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train_labels": ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        "test_images": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    }
    classes = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]  # fmt: skip
