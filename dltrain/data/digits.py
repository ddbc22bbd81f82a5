"""scikit-learn's bundled 8x8 handwritten digits: offline, small, the default dataset."""

from __future__ import annotations

import torch

from dltrain.data.base import InMemoryDataModule, Samples


class DigitsDataModule(InMemoryDataModule):
    """1797 grayscale 8x8 images [1, 8, 8] of the digits 0-9."""

    pixel_max = 16.0

    def load(self) -> Samples:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1)
        y = torch.as_tensor(digits.target, dtype=torch.long)
        return Samples(x, y, [str(name) for name in digits.target_names])


class DigitsSequenceDataModule(DigitsDataModule):
    """The same digits read row by row: sequences of 8 steps x 8 features, for RNNs."""

    baseline_kind = "nearest_neighbour"

    def load(self) -> Samples:
        samples = super().load()
        samples.x = samples.x.squeeze(1)
        return samples
