"""The shared data module: stratified splits, training statistics, samplers, batches.

A source only implements `load()`. Tensors in memory are served by index slicing
(no per-sample collate, no workers); a torch Dataset (files read lazily) streams
through a DataLoader with workers. Batches stay in the data's raw scale: the model
normalizes them with `mean` and `std`, statistics of the training split only. The one
exception: when the model hands over its input preparation (`prepare_inputs`), in-memory
splits go through it once and their batches come as `PreparedBatch`, which the model
passes to the net as they are.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from dltrain.errors import ConfigError, DataError
from dltrain.problems import Classification

# Rows prepared at a time when a whole split goes through the model's input preparation.
PREPARED_ROWS = 8192


@dataclass
class Samples:
    """What a source loads: inputs (a tensor [N, ...] or a Dataset of inputs), int64 labels."""

    x: Tensor | Dataset
    y: Tensor
    class_names: list[str]
    # The source's own test split (MNIST, CIFAR-10); None: one is held out from x, y.
    test: tuple[Tensor | Dataset, Tensor] | None = None


class EpochPermutation:
    """A new permutation of range(n) each epoch, drawn from (seed, epoch); with passes > 1,
    an epoch is that many permutations one after the other (small data: see
    `InMemoryDataModule.passes`).

    Lightning calls `set_epoch` on a loader's `sampler` at every epoch start, so the
    batch order depends only on the seed and the epoch, also after a resume.
    """

    def __init__(self, n: int, seed: int, passes: int = 1) -> None:
        self.n, self.seed, self.epoch, self.passes = n, seed, 0, passes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self, pass_: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + pass_ * 7_919_111)

    def indices(self) -> Tensor:
        """This epoch's order of the samples."""
        return torch.cat(
            [torch.randperm(self.n, generator=self._generator(p)) for p in range(self.passes)]
        )

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.n * self.passes


class WeightedEpochSampler(EpochPermutation):
    """Draws n samples with replacement, each class equally likely (resampling for imbalance)."""

    def __init__(self, labels: Tensor, seed: int, passes: int = 1) -> None:
        super().__init__(len(labels), seed, passes)
        counts = torch.bincount(labels).float()
        self.weights = (1.0 / counts.clamp_min(1))[labels]

    def indices(self) -> Tensor:
        return torch.multinomial(
            self.weights, len(self), replacement=True, generator=self._generator()
        )


class RankShard:
    """One process's share of a sampler under data-parallel training: every world_size-th
    index from `rank`, the same number on every rank (DDP needs equal step counts)."""

    def __init__(self, sampler: EpochPermutation, rank: int, world_size: int) -> None:
        self.sampler, self.rank, self.world_size = sampler, rank, world_size
        self.n = len(sampler) // world_size

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def indices(self) -> Tensor:
        return self.sampler.indices()[self.rank :: self.world_size][: self.n]


class PreparedBatch(NamedTuple):
    """A batch whose inputs went through the model's input preparation already."""

    x: Tensor
    y: Tensor


class TensorBatches:
    """Mini-batches of in-memory tensors by index slicing (`PreparedBatch`es when the
    tensors are prepared inputs)."""

    # DataLoader's attribute, read by Lightning: batches come from `sampler`'s order.
    batch_sampler = None

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        sampler: EpochPermutation | RankShard | None = None,
        drop_last: bool = False,
        prepared: bool = False,
    ) -> None:
        self.x, self.y, self.batch_size, self.sampler = x, y, batch_size, sampler
        self.prepared = prepared
        # Only drop a ragged tail when there is at least one full batch to keep.
        self.drop_last = (
            drop_last and (len(sampler) if sampler is not None else len(y)) >= batch_size
        )

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.sampler.indices() if self.sampler is not None else None
        if order is not None:
            order = order.to(self.x.device)  # one copy per epoch, then slicing on the device
        for i in range(len(self)):
            rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
            index = rows if order is None else order[rows]
            batch = (self.x[index], self.y[index])
            yield PreparedBatch(*batch) if self.prepared else batch


def _prepare_in_parts(prepare: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """`prepare(x)`, computed a few thousand rows at a time into one tensor (in the memory
    format the preparation gives, channels-last for images): no full-size temporaries."""
    with torch.no_grad():
        parts = x.split(PREPARED_ROWS)
        first = prepare(parts[0])
        channels_last = first.ndim == 4 and first.is_contiguous(memory_format=torch.channels_last)
        out = torch.empty(
            (len(x), *first.shape[1:]),
            dtype=first.dtype,
            device=first.device,
            memory_format=torch.channels_last if channels_last else torch.contiguous_format,
        )
        out[: len(first)] = first
        start = len(first)
        for part in parts[1:]:
            out[start : start + len(part)] = prepare(part)
            start += len(part)
    return out


class LabeledSubset(Dataset):
    """(input, label) pairs of a lazily read Dataset of inputs, restricted to some indices."""

    def __init__(self, inputs: Dataset, labels: Tensor, indices: Tensor) -> None:
        self.inputs, self.labels, self.indices = inputs, labels, indices.tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.inputs[self.indices[i]], self.labels[i]


def _count(n: int, noun: str) -> str:
    """'1 batch', '3 batches'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es"


def _one_thread_per_worker(_: int) -> None:
    # Workers only decode files; torch threads in each would oversubscribe the cores.
    torch.set_num_threads(1)


def stratified_split(
    y: Tensor, val_fraction: float, test_fraction: float | None, seed: int
) -> dict[str, Tensor]:
    """Indices of the train/val(/test) splits, each with the class proportions of `y`.

    With test_fraction None the source has its own test split: only val is held out.
    """
    from sklearn.model_selection import train_test_split

    index, labels = torch.arange(len(y)).numpy(), y.numpy()
    classes = len(set(labels.tolist()))

    def size(fraction: float, n: int) -> int:
        # scikit-learn's count for a fraction, but at least one sample of each class (small
        # sets with many classes) where the rest keeps one of each too.
        count = math.ceil(fraction * n)
        return max(count, classes) if n - max(count, classes) >= classes else count

    splits: dict[str, Any] = {}
    try:
        rest = index
        if test_fraction is not None:
            rest, splits["test"] = train_test_split(
                index, test_size=size(test_fraction, len(index)), stratify=labels,
                random_state=seed,
            )  # fmt: skip
        held_out = val_fraction / (1 - (test_fraction or 0.0))
        splits["train"], splits["val"] = train_test_split(
            rest, test_size=size(held_out, len(rest)), stratify=labels[rest], random_state=seed
        )
    except ValueError as error:
        raise DataError(
            f"cannot make a stratified split of {len(y)} samples: {error}"
            " Use more data, or smaller data.val_fraction / data.test_fraction."
        ) from error
    return {name: torch.as_tensor(ids) for name, ids in splits.items()}


def keep_fraction_of_classes(
    index: Tensor, y: Tensor, classes: Sequence[int], keep: float, seed: int
) -> Tensor:
    """`index` with only a `keep` fraction (at least 1) of the samples of each listed class."""
    generator = torch.Generator().manual_seed(seed)
    kept = []
    for label in torch.unique(y[index]).tolist():
        members = index[y[index] == label]
        if label in classes:
            count = max(1, round(keep * len(members)))
            members = members[torch.randperm(len(members), generator=generator)[:count]]
        kept.append(members)
    return torch.sort(torch.cat(kept)).values


def normalization_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and std per channel of [N, C, H, W] images, per feature of [N, F] or [N, T, F]."""
    dims = (0, 2, 3) if x.ndim == 4 else tuple(range(x.ndim - 1))
    mean = x.mean(dims, keepdim=True)[0]
    std = x.std(dims, keepdim=True)[0].clamp_min(1e-6)
    return mean, std


def _dataset_stats(inputs: Dataset, indices: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    """normalization_stats over a lazily read Dataset, one pass, batch by batch."""
    loader = DataLoader(Subset(inputs, indices.tolist()), batch_size=batch_size)
    total = squares = None
    count = 0
    for batch in loader:
        dims = (0, 2, 3) if batch.ndim == 4 else tuple(range(batch.ndim - 1))
        batch = batch.double()
        total = batch.sum(dims, keepdim=True)[0] + (0 if total is None else total)
        squares = (batch**2).sum(dims, keepdim=True)[0] + (0 if squares is None else squares)
        count += batch.numel() // batch.shape[1 if batch.ndim == 4 else -1]
    mean = total / count
    std = (squares / count - mean**2).clamp_min(1e-12).sqrt() * math.sqrt(count / max(count - 1, 1))
    return mean.float(), std.float().clamp_min(1e-6)


class InMemoryDataModule(L.LightningDataModule):
    """The base of every data source; subclasses implement `load`."""

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        num_workers: int = 0,
        seed: int = 0,
        data_dir: str = "data",
        sampler: str = "none",
        download: bool = False,
        imbalance: dict | None = None,
        hflip: float = 0.0,
        test_path: str | None = None,
        min_batches_per_epoch: int = 16,
        on_device: bool | str = "auto",
        device_memory_share: float = 0.5,
    ) -> None:
        super().__init__()
        # In-memory splits copied once to the training device ("auto": when they fit).
        self.on_device, self.device_memory_share = on_device, device_memory_share
        self._placed: dict[str, tuple[Tensor, Tensor, bool]] = {}
        # The model's input preparation, applied once per in-memory split (prepare_inputs).
        self._prepare: Callable[[Tensor], Tensor] | None = None
        # Small data: an epoch makes at least this many optimizer steps (see `passes`).
        self.min_batches_per_epoch = min_batches_per_epoch
        # What the data made dltrain decide for the user (shown in the data profile).
        self.notes: list[str] = []
        # The user's own held-out file, read like data.path: no test split is cut then.
        self.test_path = test_path
        self.problem = Classification()
        # The horizontal-flip probability that suits this data; augment configs read it.
        self.hflip = hflip
        self.batch_size = batch_size
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.num_workers, self.seed = num_workers, seed
        self.data_dir, self.sampler, self.download = data_dir, sampler, download
        self.imbalance = dict(imbalance) if imbalance else None
        self.splits: dict[str, tuple[Tensor | Dataset, Tensor]] = {}
        self.external_test = False
        # Per categorical column, the share of the user's test rows whose value training
        # never saw (tables fill it; the drift check reports it).
        self.unseen_categories: dict[str, float] = {}
        self.class_names: list[str] = []
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    def load(self) -> Samples:
        """All samples of the source."""
        raise NotImplementedError

    def read(self, path: str) -> Samples:
        """The samples of one file or folder (file-backed sources: data.path, data.test_path)."""
        raise ConfigError(f"data.test_path is not supported by {type(self).__name__}.")

    def path_key(self, path: str) -> str:
        """The config key that named `path`, for error messages."""
        return "data.test_path" if path == self.test_path else "data.path"

    def prepare(self, samples: Samples, train: Tensor) -> Samples:
        """Turn loaded samples into tensors, fitting what it needs on the training rows only."""
        return samples

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        samples = self.load()
        self.problem.check_source(samples.class_names, type(self).__name__)
        if self.test_path:
            test = self.read(self.test_path)
            y = self.problem.align_targets(
                test, samples.class_names, f"data.test_path={self.test_path}"
            )
            samples.test = (test.x, y)
        self.class_names = samples.class_names
        # A test split not cut at random from the training data: the profile compares them.
        self.external_test = samples.test is not None
        held_out = None if samples.test is not None else self.test_fraction
        strata = self.problem.strata(samples.y)
        index = stratified_split(strata, self.val_fraction, held_out, self.seed)
        if self.imbalance:
            # Only the training data is skewed: validation and test stay representative.
            index["train"] = keep_fraction_of_classes(
                index["train"],
                samples.y,
                self.imbalance["classes"],
                self.imbalance["keep"],
                self.seed,
            )
        samples = self.prepare(samples, index["train"])
        self.splits = {name: self._subset(samples.x, samples.y, ids) for name, ids in index.items()}
        if samples.test is not None:
            test_x, test_y = samples.test
            # Files read lazily (an image folder's data.test_path) become (image, label) pairs.
            if not isinstance(test_x, Tensor):
                test_x = LabeledSubset(test_x, test_y, torch.arange(len(test_y)))
            self.splits["test"] = (test_x, test_y)
        self.problem.check_splits({n: y for n, (_, y) in self.splits.items()}, self.class_names)
        train_size = len(self.splits["train"][1])
        if isinstance(self.batch_size, int) and train_size < self.batch_size:
            if train_size < 2:  # batch norm cannot train on a batch of one
                raise DataError(
                    f"the training split has {train_size} sample: use more data, or smaller"
                    " data.val_fraction / data.test_fraction."
                )
            self.notes.append(
                f"the training split has {train_size} samples, fewer than data.batch_size="
                f"{self.batch_size}: each step uses all {train_size}."
            )
            self.batch_size = train_size
        train_x = samples.x
        if self.allows_missing:
            self.mean = self.std = None  # its own preprocess() fits what it needs
        elif isinstance(train_x, Tensor):
            self.mean, self.std = normalization_stats(train_x[index["train"]])
        else:
            self.mean, self.std = _dataset_stats(train_x, index["train"], self.batch_size)

    @staticmethod
    def _subset(x: Tensor | Dataset, y: Tensor, ids: Tensor) -> tuple[Tensor | Dataset, Tensor]:
        return (x[ids] if isinstance(x, Tensor) else LabeledSubset(x, y[ids], ids)), y[ids]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, e.g. (1, 8, 8)."""
        x = self.splits["train"][0]
        return tuple(x.shape[1:]) if isinstance(x, Tensor) else tuple(x[0][0].shape)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self, split: str = "train") -> Tensor:
        """Samples per class in a split."""
        return torch.bincount(self.splits[split][1], minlength=self.num_classes)

    def _world(self) -> tuple[int, int]:
        """(rank, world size) of this process; (0, 1) outside distributed training."""
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def passes(self) -> int:
        """Passes over the training split per epoch: 1, or enough for an epoch of
        `min_batches_per_epoch` steps when the split is only a few batches. Small data
        then still gets enough optimizer steps, and early stopping's patience, checkpoints
        and the schedule keep their meaning per epoch."""
        batches = max(1, len(self.splits["train"][1]) // self.batch_size)
        return max(1, math.ceil(self.min_batches_per_epoch / batches))

    def epoch_notes(self) -> list[str]:
        """A note when an epoch makes several passes over a small training split."""
        passes, train_size = self.passes(), len(self.splits["train"][1])
        if passes == 1:
            return []
        steps = train_size * passes // self.batch_size
        return [
            f"the training split is {_count(train_size // self.batch_size, 'batch')} of"
            f" {self.batch_size}:"
            f" each epoch makes {passes} passes over it ({steps} steps;"
            f" data.min_batches_per_epoch={self.min_batches_per_epoch})."
        ]

    def _device(self) -> torch.device:
        """The device this process trains on (the CPU outside a Trainer)."""
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def placement(self, device: torch.device) -> tuple[bool, str]:
        """Whether the in-memory splits go to `device` once (data.on_device), and why."""
        tensors = [t for x, y in self.splits.values() if isinstance(x, Tensor) for t in (x, y)]
        if len(tensors) < 2 * len(self.splits):
            return False, "files read by a DataLoader" + (
                " into pinned memory" if device.type == "cuda" else ""
            )
        size = sum(t.nbytes for t in tensors)
        if self.on_device is True or self.on_device == "true":
            return True, f"{size / 2**20:.1f} MiB copied to {device} once (data.on_device=true)"
        if self.on_device is False or self.on_device == "false" or device.type == "cpu":
            return False, f"{size / 2**20:.1f} MiB in host memory"
        total = torch.cuda.get_device_properties(device).total_memory
        if size > self.device_memory_share * total:
            return False, (
                f"{size / 2**20:.1f} MiB in host memory: more than data.device_memory_share="
                f"{self.device_memory_share:g} of {device}'s {total / 2**30:.0f} GiB"
            )
        return True, f"{size / 2**20:.1f} MiB copied to {device} once (data.on_device=auto)"

    def prepare_inputs(self, prepare: Callable[[Tensor], Tensor] | None) -> None:
        """Have in-memory splits go through the model's input preparation once, where
        their batches are cut, instead of every batch through it (None: never)."""
        self._prepare, self._placed = prepare, {}

    def prepares(self, device: torch.device) -> bool:
        """Whether the splits' inputs are prepared once for training on `device`: on the
        device itself (the copy replaces the raw one there), or in host memory when the
        second copies of all processes take under a quarter of it."""
        tensors = [x for x, _ in self.splits.values()]
        if self._prepare is None or not all(
            isinstance(x, Tensor) and x.is_floating_point() for x in tensors
        ):
            return False
        if self.placement(device)[0] and device.type != "cpu":
            return True
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, OSError, ValueError):  # no sysconf: memory unknown
            return False
        copies = sum(x.nbytes for x in tensors) * self._world()[1]
        return device.type == "cpu" and copies < memory / 4

    def _placed_split(self, split: str) -> tuple[Tensor | Dataset, Tensor, bool]:
        """A split where its batches are cut (on the training device when `placement` says
        so), and whether its inputs are prepared."""
        x, y = self.splits[split]
        device = self._device()
        prepared = self.prepares(device)
        if not isinstance(x, Tensor) or not (prepared or self.placement(device)[0]):
            return x, y, False
        if split not in self._placed or self._placed[split][0].device != device:
            x, y = x.to(device), y.to(device)
            if prepared:
                x = _prepare_in_parts(self._prepare, x)
            self._placed[split] = (x, y, prepared)
        return self._placed[split]

    def _loader(self, split: str, train: bool = False) -> Any:
        x, y, prepared = self._placed_split(split)
        sampler = None
        if train:
            sampler = (
                WeightedEpochSampler(y, self.seed, self.passes())
                if self.sampler == "weighted"
                else EpochPermutation(len(y), self.seed, self.passes())
            )
        rank, world_size = self._world()
        if isinstance(x, Tensor) and world_size > 1:
            # Each process takes its own share; evaluation shards add up to the split once.
            if sampler is None:
                x, y = x[rank::world_size], y[rank::world_size]
            else:
                sampler = RankShard(sampler, rank, world_size)
        if isinstance(x, Tensor):
            return TensorBatches(
                x, y, self.batch_size, sampler=sampler, drop_last=train, prepared=prepared
            )
        return DataLoader(
            x,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=train and len(y) >= self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=_one_thread_per_worker,
            # Page-locked batches: Lightning's copies to the GPU are then asynchronous.
            pin_memory=self._device().type == "cuda",
        )

    def train_dataloader(self) -> Any:
        return self._loader("train", train=True)

    def val_dataloader(self) -> Any:
        return self._loader("val")

    def test_dataloader(self) -> Any:
        return self._loader("test")

    # Whether inputs may hold NaN for missing values (tables); preprocess() then handles them.
    allows_missing = False
    # Images: the raw value of a white pixel (255 for 8-bit files), which maps the data onto
    # the 0-1 scale of a pretrained backbone's statistics; None: not images, or unknown.
    pixel_max: float | None = None
    # The classical baseline that suits this input kind (dltrain.baselines), and what its
    # inputs are called in its name.
    baseline_kind = "linear"
    baseline_inputs = ""

    def profile_extras(self) -> dict[str, Any]:
        """Facts about this input kind for the data profile (text: vocabulary, unknown words)."""
        return {}

    def sequence_lengths(self, split: str) -> Tensor | None:
        """The number of real time steps of each sample of a split (series); None otherwise."""
        return None

    def drift_features(self, x: Tensor) -> dict[str, Tensor]:
        """One number per sample and feature, compared between training and test (drift.py)."""
        from dltrain.drift import per_sample_features

        return per_sample_features(x)

    def baseline_features(self, x: Tensor) -> Tensor:
        """Inputs as the baseline sees them: the model's preprocessing, flattened [N, D]."""
        with torch.no_grad():
            return self.preprocess()(x).flatten(1)

    def preprocess(self) -> nn.Module:
        """The model's first step on raw inputs, fitted on the training split: (x - mean) / std."""
        from dltrain.module import Normalize

        return Normalize(self.mean, self.std)

    def net_inputs(self) -> dict[str, Any]:
        """What the net needs from the data besides the class count: its input shape (and,
        for tables with categorical columns, their cardinalities)."""
        return {"input_shape": self.input_shape}

    def describe(self) -> dict[str, Any]:
        """Plain data a checkpoint keeps to rebuild the preprocessing and read raw inputs."""
        return {"kind": "tensor"}

    def state_dict(self) -> dict:
        """Saved in every checkpoint: what predicting on new inputs needs."""
        return {"mean": self.mean, "std": self.std, "class_names": self.class_names}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.std, self.class_names = state["mean"], state["std"], state["class_names"]
