"""What the sequence nets (RNN, TCN) read: plain sequences [N, T, F], masked series
[N, T, F + 1] (the last channel marks real steps; dltrain.data.timeseries) or token ids
[N, L] (0 is padding; dltrain.data.text), embedded here with a vocabulary size that comes
from the data, never typed in a config."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from dltrain.errors import ConfigError


class SequenceInput(nn.Module):
    """Turns any of the three input forms into (values [N, T, C], mask [N, T, 1])."""

    def __init__(self, input_shape: Sequence[int], masked: bool = False,
                 vocab_size: int | None = None, embedding_dim: int = 64) -> None:  # fmt: skip
        super().__init__()
        self.masked = masked
        self.embedding = (
            nn.Embedding(vocab_size, embedding_dim, padding_idx=0) if vocab_size else None
        )
        if self.embedding is None and len(input_shape) != 2:
            raise ConfigError(
                f"sequence nets need sequences [T, F] (steps x features) or token ids, got input"
                f" shape {list(input_shape)}: for images use model=cnn, for tables model=tabular"
            )
        self.width = embedding_dim if vocab_size else input_shape[1] - (1 if masked else 0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.embedding is not None:
            ids = x.long()
            return self.embedding(ids), (ids > 0).unsqueeze(-1).to(self.embedding.weight.dtype)
        if self.masked:
            return x[..., :-1], x[..., -1:]
        return x, x.new_ones(*x.shape[:2], 1)


class BagOfWords(nn.Module):
    """A linear model of the words: the mean over a text's tokens of one learned vector of
    class scores per token (fastText's linear classifier), padding left out. Beside a deep
    net whose own output starts at zero, training starts from this linear model."""

    def __init__(self, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        # An embedding and a masked mean rather than EmbeddingBag: it exports to ONNX.
        self.scores = nn.Embedding(vocab_size, num_classes, padding_idx=0)
        nn.init.zeros_(self.scores.weight)

    def forward(self, ids: Tensor) -> Tensor:
        ids = ids.long()
        real = (ids > 0).unsqueeze(-1).to(self.scores.weight.dtype)
        return (self.scores(ids) * real).sum(1) / real.sum(1).clamp_min(1.0)


def wide_and_deep(vocab_size: int | None, num_classes: int, head: nn.Linear,
                  enabled: bool) -> BagOfWords | None:  # fmt: skip
    """For token inputs: the bag-of-words linear path, and the deep head zeroed."""
    if not (vocab_size and enabled):
        return None
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return BagOfWords(vocab_size, num_classes)
