"""A small convolutional network for images [C, H, W]."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from dltrain.errors import ConfigError

POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class CNN(nn.Module):
    """Stages of conv, (batch norm), ReLU and 2x2 pooling; global average pool, dropout, head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        batchnorm: bool = True,
        dropout: float = 0.0,
        pool: str = "max",
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                f"CNN needs images [C, H, W], got input shape {list(input_shape)}:"
                " for a table use model=tabular (or model=mlp); for sequences model=rnn"
            )
        in_channels, height, width = input_shape
        layers: list[nn.Module] = []
        for out in channels:
            layers.append(
                nn.Conv2d(
                    in_channels, out, kernel_size, padding=kernel_size // 2, bias=not batchnorm
                )
            )
            if batchnorm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            # Stop pooling once the feature map is down to a single row or column.
            if min(height, width) >= 2:
                layers.append(POOLS[pool](2))
                height, width = height // 2, width // 2
            in_channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(in_channels, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
