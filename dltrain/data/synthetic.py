"""Generated data with a learnable signal, sized by config: for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dltrain.data.base import InMemoryDataModule, Samples


class SyntheticDataModule(InMemoryDataModule):
    """Each class has a random prototype of `shape`; a sample is its prototype plus noise."""

    def __init__(
        self,
        num_samples: int = 2000,
        shape: Sequence[int] = (1, 8, 8),
        num_classes: int = 10,
        noise: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_samples, self.shape = num_samples, tuple(shape)
        self.num_classes_wanted, self.noise = num_classes, noise

    def load(self) -> Samples:
        generator = torch.Generator().manual_seed(self.seed)
        prototypes = torch.randn(self.num_classes_wanted, *self.shape, generator=generator)
        y = torch.arange(self.num_samples) % self.num_classes_wanted
        y = y[torch.randperm(self.num_samples, generator=generator)]
        noise = torch.randn(self.num_samples, *self.shape, generator=generator)
        x = prototypes[y] + self.noise * noise
        return Samples(x, y, [f"class_{i}" for i in range(self.num_classes_wanted)])
