"""Output heads and losses of regression: targets standardized with training statistics."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dltrain.errors import ConfigError

LOSSES = {"mse": nn.MSELoss, "huber": nn.HuberLoss, "l1": nn.L1Loss}


class TargetScale(nn.Module):
    """Training-split mean and std of a continuous target: the net predicts standardized
    values, this turns them into the target's own unit (kept in the checkpoint)."""

    def __init__(self, mean: Tensor | float = 0.0, std: Tensor | float = 1.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(()))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(()))

    def forward(self, outputs: Tensor) -> Tensor:
        return outputs.squeeze(-1) * self.std + self.mean

    def standardize(self, y: Tensor) -> Tensor:
        return (y - self.mean) / self.std


class StandardizedLoss(nn.Module):
    """A regression loss on standardized targets, so its scale is the same for any unit."""

    def __init__(self, name: str, scale: TargetScale) -> None:
        super().__init__()
        if name not in LOSSES:
            raise ConfigError(
                f"loss.name={name} is not a regression loss: use one of {', '.join(LOSSES)}."
            )
        self.loss, self.scale = LOSSES[name](), scale

    def forward(self, outputs: Tensor, y: Tensor) -> Tensor:
        return self.loss(outputs.squeeze(-1), self.scale.standardize(y))
