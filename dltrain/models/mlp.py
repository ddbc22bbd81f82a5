"""A multilayer perceptron on the flattened input."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Per hidden layer: linear, (batch norm), activation, dropout; then a linear head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (256, 128),
        activation: str = "relu",
        batchnorm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for out in hidden:
            # A bias before batch norm is cancelled by its mean subtraction.
            layers.append(nn.Linear(width, out, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(out))
            layers += [ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = out
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
