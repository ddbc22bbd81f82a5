"""Tiny datasets written in the exact on-disk formats the readers accept."""

from __future__ import annotations

import csv
import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x0000 08 <ndim>, big-endian dims, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def labelled_images(n: int, shape: tuple[int, ...], classes: int = 10, seed: int = 0):
    """n images with a class-dependent mean brightness, so the classes are learnable."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 60, size=(n, *shape)) + (labels * 19).reshape(-1, *[1] * len(shape))
    return images.clip(0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_mnist(folder: Path, n_train: int = 100, n_test: int = 20, gzipped: bool = True) -> None:
    """The four MNIST IDX files (28x28) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = labelled_images(n_train, (28, 28), seed=1)
    x_test, y_test = labelled_images(n_test, (28, 28), seed=2)
    arrays = {"train_images": x_train, "train_labels": y_train,
              "test_images": x_test, "test_labels": y_test}  # fmt: skip
    for role, array in arrays.items():
        data = idx_bytes(array)
        name = IDX_NAMES[role]
        if gzipped:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def write_cifar10(folder: Path, per_batch: int = 20, n_test: int = 20) -> None:
    """cifar-10-batches-py/: five data batches, a test batch and batches.meta, as pickles with
    bytes keys like the published Python 2 files."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        x, y = labelled_images(per_batch, (3, 32, 32), seed=i)
        batch = {b"data": x.reshape(per_batch, -1), b"labels": y.tolist()}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    x, y = labelled_images(n_test, (3, 32, 32), seed=9)
    (folder / "test_batch").write_bytes(
        pickle.dumps({b"data": x.reshape(n_test, -1), b"labels": y.tolist()})
    )
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
             b"dog", b"frog", b"horse", b"ship", b"truck"]  # fmt: skip
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))


def write_image_folder(root: Path, classes=("cat", "dog", "fox"), per_class: int = 12,
                       size=(12, 10), mode: str = "RGB") -> None:  # fmt: skip
    """root/<class>/<n>.png images with class-dependent colours, read back with Pillow."""
    from PIL import Image

    rng = np.random.default_rng(0)
    channels = 3 if mode == "RGB" else 1
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 50, size=(*size, channels)) + 80 * label
            array = pixels.clip(0, 255).astype(np.uint8)
            Image.fromarray(array[..., 0] if mode == "L" else array, mode).save(
                root / name / f"{i}.png"
            )


def write_csv(path: Path, rows: int = 90, labels=("setosa", "versicolor", "virginica")) -> None:
    """A table with three numeric features and a string label column that they predict."""
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["f1", "f2", "species", "f3"])
        for i in range(rows):
            label = i % len(labels)
            f1, f2, f3 = rng.normal(size=3) + label * 2
            writer.writerow([f"{f1:.4f}", f"{f2:.4f}", labels[label], f"{f3:.4f}"])
