"""A multilayer perceptron on the flattened input (with embeddings for table categories)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class CategoryEmbeddings(nn.Module):
    """The last len(categories) input columns are category indices: each gets an embedding
    (width from its cardinality, fastai's rule), concatenated after the numeric columns."""

    def __init__(self, categories: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        from dltrain.data.table import embedding_width

        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_width(n)) for n in categories)
        self.dropout = nn.Dropout(dropout)
        self.width = sum(e.embedding_dim for e in self.embeddings)

    def forward(self, x: Tensor) -> Tensor:
        n = len(self.embeddings)
        numbers, codes = x[:, : x.shape[1] - n], x[:, x.shape[1] - n :].long()
        embedded = [e(codes[:, i]) for i, e in enumerate(self.embeddings)]
        return torch.cat([numbers, self.dropout(torch.cat(embedded, dim=1))], dim=1)


class MLP(nn.Module):
    """Per hidden layer: linear, (batch norm), activation, dropout; then a linear head.

    With `categories` (cardinalities of a table's categorical columns, from the data),
    those columns are embedded first.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (256, 128),
        activation: str = "relu",
        batchnorm: bool = True,
        dropout: float = 0.0,
        categories: Sequence[int] | None = None,
        linear_skip: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        if categories:
            embeddings = CategoryEmbeddings(categories, dropout)
            layers.append(embeddings)
            width += embeddings.width - len(categories)
        # Wide and deep: a linear model of the inputs plus the hidden layers' correction,
        # which starts at zero, so training starts from (and can stay near) a linear model.
        self.linear = nn.Linear(width, num_classes) if linear_skip else None
        self.n_inputs = len(layers)  # the layers before the hidden ones
        for out in hidden:
            # A bias before batch norm is cancelled by its mean subtraction.
            layers.append(nn.Linear(width, out, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(out))
            layers += [ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = out
        layers.append(nn.Linear(width, num_classes))
        if linear_skip:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.linear is None:
            return self.layers(x)
        for i, layer in enumerate(self.layers):
            if i == self.n_inputs:
                skip = self.linear(x)
            x = layer(x)
        return x + skip
