"""Batch augmentation on the training device, whole batches, training only: kornia for
images; jitter, scaling and window slicing for time series (Le Guennec et al. 2016;
Um et al. 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dltrain.errors import ConfigError


class SeriesAugment(nn.Module):
    """Raw padded series [N, T, F + 1] (last channel: real steps): each series-channel
    scaled by a factor ~ N(1, scaling), noise ~ N(0, jitter x its own std) added, and a
    random window of `window` x its length stretched back over the whole length."""

    def __init__(self, jitter: float = 0.0, scaling: float = 0.0, window: float = 0.0) -> None:
        super().__init__()
        self.jitter, self.scaling, self.window = jitter, scaling, window

    def forward(self, x: Tensor) -> Tensor:
        values, mask = x[..., :-1], x[..., -1:]
        if self.window:
            values = self._slice_windows(values, mask)
        real = mask.sum(1, keepdim=True).clamp_min(1)
        mean = values.nan_to_num(0.0).mul(mask).sum(1, keepdim=True) / real
        std = ((values - mean).nan_to_num(0.0).pow(2).mul(mask).sum(1, keepdim=True) / real).sqrt()
        if self.scaling:
            values = mean + (values - mean) * (1 + self.scaling * torch.randn_like(mean))
        if self.jitter:
            values = values + self.jitter * std * torch.randn_like(values)
        return torch.cat([values * mask, mask], dim=-1)

    def _slice_windows(self, values: Tensor, mask: Tensor) -> Tensor:
        n, steps, _ = values.shape
        lengths = mask[..., 0].sum(1)
        span = (lengths * self.window).clamp_min(2)
        start = torch.rand(n, device=values.device) * (lengths - span)
        # Each output step t of a series of length L reads position start + t/(L-1) * span.
        t = torch.arange(steps, device=values.device).float().unsqueeze(0)
        position = start.unsqueeze(1) + t / (lengths - 1).clamp_min(1).unsqueeze(1) * (
            span - 1
        ).unsqueeze(1)
        position = position.clamp(max=(lengths - 1).unsqueeze(1)).clamp_min(0)
        low = position.floor().long()
        high = (low + 1).clamp(max=(lengths - 1).long().unsqueeze(1))
        weight = (position - low).unsqueeze(-1)
        gather = lambda index: values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.shape[2]))  # noqa: E731
        return gather(low) * (1 - weight) + gather(high) * weight


def build_augmentation(
    input_shape: Sequence[int],
    rotation: float = 0.0,
    translate: float = 0.0,
    scale: Sequence[float] | None = None,
    hflip: float = 0.0,
    vflip: float = 0.0,
    jitter: float = 0.0,
    scaling: float = 0.0,
    window: float = 0.0,
    masked: bool = False,
) -> nn.Module | None:
    """Images: random affine (rotation in degrees, translation as a fraction of the size,
    scale range) and flips (probabilities). Time series (`masked` inputs): jitter, scaling,
    window slicing. None when every one is off; exit 2 for options that do not fit the data."""
    image_options = rotation or translate or scale or hflip or vflip
    series_options = jitter or scaling or window
    if series_options and not masked:
        raise ConfigError(
            "augment.jitter/scaling/window are for time series (data=timeseries), but this data"
            f" has samples of shape {list(input_shape)}: use augment=none or an image augment."
        )
    if image_options and len(input_shape) != 3:
        raise ConfigError(
            f"augmentation of rotation/translate/scale/flips works on images [C, H, W], but this"
            f" data has samples of shape {list(input_shape)}: use augment=none"
            + (" or augment=series." if masked else ".")
        )
    if series_options:
        return SeriesAugment(jitter, scaling, window)
    if not image_options:
        return None
    import kornia.augmentation as K  # noqa: N812 - kornia's own convention

    steps: list[nn.Module] = []
    if rotation or translate or scale:
        steps.append(
            K.RandomAffine(
                degrees=rotation,
                translate=(translate, translate) if translate else None,
                scale=tuple(scale) if scale else None,
                padding_mode="zeros",  # raw images: uncovered pixels turn black
                p=1.0,
            )
        )
    if hflip:
        steps.append(K.RandomHorizontalFlip(p=hflip))
    if vflip:
        steps.append(K.RandomVerticalFlip(p=vflip))
    return nn.Sequential(*steps)
