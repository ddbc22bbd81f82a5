"""A recurrent classifier for sequences [T, F]: LSTM or GRU, uni- or bidirectional.

With `masked` inputs (the last channel marks real steps, see dltrain.data.timeseries)
each series is packed to its own length, so padding never enters the recurrence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

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
    ) -> None:
        super().__init__()
        self.masked = masked
        if len(input_shape) != 2:
            raise ValueError(
                f"RNN needs sequences [T, F] (steps x features), got input shape {list(input_shape)}"
            )
        self.rnn = CELLS[cell](
            input_size=input_shape[1] - (1 if masked else 0),
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

    def forward(self, x: Tensor) -> Tensor:
        if self.masked:
            lengths = x[..., -1].sum(1).clamp_min(1).long().cpu()
            x = nn.utils.rnn.pack_padded_sequence(
                x[..., :-1], lengths, batch_first=True, enforce_sorted=False
            )
        _, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        last_layer = h[-self.directions :]  # [directions, batch, hidden]
        return self.head(torch.cat(list(last_layer), dim=1))
