"""A recurrent classifier for sequences [T, F]: LSTM or GRU, uni- or bidirectional.

With masked inputs (series with a mask channel, or token ids with an embedding; see
dltrain.models.sequence) each sequence is packed to its own length, so padding never
enters the recurrence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dltrain.models.sequence import SequenceInput, wide_and_deep

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RNN(nn.Module):
    """Stacked LSTM/GRU over the time axis; the last hidden state(s) feed a linear head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        cell: str = "lstm",
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        masked: bool = False,
        vocab_size: int | None = None,
        embedding_dim: int = 64,
        linear_skip: bool = True,
    ) -> None:
        super().__init__()
        self.inputs = SequenceInput(input_shape, masked, vocab_size, embedding_dim)
        self.packed = masked or bool(vocab_size)
        self.rnn = CELLS[cell](
            input_size=self.inputs.width,
            hidden_size=hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            # PyTorch applies this between stacked layers only.
            dropout=dropout if layers > 1 else 0.0,
        )
        directions = 2 if bidirectional else 1
        self.directions = directions
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(directions * hidden, num_classes))
        # Token inputs: a bag-of-words linear model beside the recurrence (wide and deep).
        self.bag = wide_and_deep(vocab_size, num_classes, self.head[1], linear_skip)

    def forward(self, x: Tensor) -> Tensor:
        wide = self.bag(x) if self.bag is not None else 0.0
        x, mask = self.inputs(x)
        if self.packed:
            lengths = mask[..., 0].sum(1).clamp_min(1).long().cpu()
            x = nn.utils.rnn.pack_padded_sequence(
                x, lengths, batch_first=True, enforce_sorted=False
            )
        _, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        last_layer = h[-self.directions :]  # [directions, batch, hidden]
        return self.head(torch.cat(list(last_layer), dim=1)) + wide
