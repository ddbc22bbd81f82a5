"""In-memory data: stratified splits, normalization from training statistics, sliced batches."""

from __future__ import annotations

import math
from collections.abc import Iterator

import lightning as L
import torch
from torch import Tensor

from dltrain.errors import DataError


class EpochPermutation:
    """A new permutation of range(n) each epoch, drawn from (seed, epoch).

    Lightning calls `set_epoch` on a loader's `sampler` at every epoch start, so the
    batch order depends only on the seed and the epoch, also after a resume.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> Tensor:
        """This epoch's order of the samples."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=generator)


class TensorBatches:
    """Mini-batches of in-memory tensors by index slicing: no per-sample collate, no workers."""

    # DataLoader's attribute, read by Lightning: batches come from `sampler`'s order.
    batch_sampler = None

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        sampler: EpochPermutation | None = None,
        drop_last: bool = False,
    ) -> None:
        self.x, self.y, self.batch_size, self.sampler = x, y, batch_size, sampler
        # Only drop a ragged tail when there is at least one full batch to keep.
        self.drop_last = drop_last and len(y) >= batch_size

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.sampler.indices() if self.sampler is not None else None
        for i in range(len(self)):
            start = i * self.batch_size
            if order is None:
                yield (
                    self.x[start : start + self.batch_size],
                    self.y[start : start + self.batch_size],
                )
            else:
                index = order[start : start + self.batch_size]
                yield self.x[index], self.y[index]


def stratified_split(
    y: Tensor, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, Tensor]:
    """Indices of the train/val/test splits, each with the class proportions of `y`."""
    from sklearn.model_selection import train_test_split

    index = torch.arange(len(y)).numpy()
    labels = y.numpy()
    try:
        rest, test = train_test_split(
            index, test_size=test_fraction, stratify=labels, random_state=seed
        )
        train, val = train_test_split(
            rest,
            test_size=val_fraction / (1 - test_fraction),
            stratify=labels[rest],
            random_state=seed,
        )
    except ValueError as error:
        raise DataError(
            f"cannot make a stratified train/val/test split of {len(y)} samples: {error}"
            " Use more data or smaller data.val_fraction / data.test_fraction."
        ) from error
    return {
        name: torch.as_tensor(ids) for name, ids in (("train", train), ("val", val), ("test", test))
    }


def normalization_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and std per channel of [N, C, H, W] images, per feature of [N, F] or [N, T, F]."""
    dims = (0, 2, 3) if x.ndim == 4 else tuple(range(x.ndim - 1))
    mean = x.mean(dims, keepdim=True)[0]
    std = x.std(dims, keepdim=True)[0].clamp_min(1e-6)
    return mean, std


class InMemoryDataModule(L.LightningDataModule):
    """A dataset held in memory as tensors; subclasses only implement `load`."""

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.num_workers = num_workers  # in-memory batches need no worker processes
        self.seed = seed
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.class_names: list[str] = []
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    def load(self) -> tuple[Tensor, Tensor, list[str]]:
        """All samples as (float inputs [N, ...], int64 labels [N], class names)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y, self.class_names = self.load()
        index = stratified_split(y, self.val_fraction, self.test_fraction, self.seed)
        # Statistics of the training split only: nothing about val/test leaks into training.
        self.mean, self.std = normalization_stats(x[index["train"]])
        self.splits = {
            name: ((x[ids] - self.mean) / self.std, y[ids]) for name, ids in index.items()
        }

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, e.g. (1, 8, 8)."""
        return tuple(self.splits["train"][0].shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def train_dataloader(self) -> TensorBatches:
        x, y = self.splits["train"]
        sampler = EpochPermutation(len(y), self.seed)
        return TensorBatches(x, y, self.batch_size, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> TensorBatches:
        return TensorBatches(*self.splits["val"], self.batch_size)

    def test_dataloader(self) -> TensorBatches:
        return TensorBatches(*self.splits["test"], self.batch_size)

    def state_dict(self) -> dict:
        """Saved in every checkpoint: what predicting on new inputs needs."""
        return {"mean": self.mean, "std": self.std, "class_names": self.class_names}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.std, self.class_names = state["mean"], state["std"], state["class_names"]
