"""Batch augmentation with kornia: on the training device, whole batches, training only."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def build_augmentation(
    rotation: float = 0.0,
    translate: float = 0.0,
    scale: Sequence[float] | None = None,
    hflip: float = 0.0,
    vflip: float = 0.0,
) -> nn.Module | None:
    """Random affine (rotation in degrees, translation as a fraction of the size, scale range)
    and flips (probabilities); None when every one is off."""
    if not (rotation or translate or scale or hflip or vflip):
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
