"""A temporal convolution net for sequences [T, F]: residual blocks of dilated 1-D
convolutions, global average pooling over time, a linear head.

The residual, fully convolutional shape with global pooling is the strong deep baseline
of the time-series classification archive (FCN and ResNet in Wang et al. 2017, Fawaz et
al. 2019); dilations 1, 2, 4, ... widen the receptive field without pooling. With
masked inputs (series with a mask channel, or token ids with an embedding; see
dltrain.models.sequence) padding is zeroed inside every block and left out of the
pooling, so sequences of any length mix in a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from dltrain.errors import ConfigError
from dltrain.models.sequence import SequenceInput, wide_and_deep


class TemporalBlock(nn.Module):
    """conv-BN-ReLU, conv-BN, plus the input (1x1 conv when the width changes), ReLU. The
    padding is zeroed between the convolutions, so real steps never read it."""

    def __init__(self, inputs: int, outputs: int, kernel_size: int, dilation: int,
                 dropout: float) -> None:  # fmt: skip
        super().__init__()
        # Explicit symmetric padding keeps the length (odd kernels) and exports to ONNX,
        # whose runtime refuses padding="same" with dilation.
        conv = {"kernel_size": kernel_size, "dilation": dilation, "bias": False,
                "padding": dilation * (kernel_size - 1) // 2}  # fmt: skip
        self.first = nn.Sequential(nn.Conv1d(inputs, outputs, **conv), nn.BatchNorm1d(outputs),
                                   nn.ReLU(), nn.Dropout(dropout))  # fmt: skip
        self.second = nn.Sequential(nn.Conv1d(outputs, outputs, **conv), nn.BatchNorm1d(outputs))
        self.skip = nn.Identity() if inputs == outputs else nn.Conv1d(inputs, outputs, 1)
        self.act = nn.ReLU()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.act(self.second(self.first(x) * mask) + self.skip(x)) * mask


class TCN(nn.Module):
    """Residual dilated convolutions over time, masked global average pooling, a head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (64, 64, 64),
        kernel_size: int = 7,
        dropout: float = 0.0,
        masked: bool = False,
        vocab_size: int | None = None,
        embedding_dim: int = 64,
        linear_skip: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ConfigError(f"model.kernel_size={kernel_size}: the TCN needs an odd kernel size")
        self.inputs = SequenceInput(input_shape, masked, vocab_size, embedding_dim)
        width = self.inputs.width
        blocks = []
        for i, out in enumerate(channels):
            blocks.append(TemporalBlock(width, out, kernel_size, 2**i, dropout))
            width = out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(width, num_classes)
        # Token inputs: a bag-of-words linear model beside the convolutions (wide and deep).
        self.bag = wide_and_deep(vocab_size, num_classes, self.head, linear_skip)

    def forward(self, x: Tensor) -> Tensor:
        wide = self.bag(x) if self.bag is not None else 0.0
        x, mask = self.inputs(x)
        h, mask = x.transpose(1, 2), mask.transpose(1, 2)  # [N, C, T], [N, 1, T]
        h = h * mask
        for block in self.blocks:
            h = block(h, mask)
        pooled = h.sum(2) / mask.sum(2).clamp_min(1.0)
        return self.head(pooled) + wide
