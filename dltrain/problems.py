"""Problem kinds: what depends on the kind of target lives in one object per kind.

Data sources ask it how to encode a label column and how to stratify the splits;
growing a new kind (regression) means a new class here, not branches elsewhere.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from dltrain.errors import DataError

# A numeric label column with more distinct non-integer values than this looks continuous.
CONTINUOUS_DISTINCT = 20


def label_text(value: Any) -> str:
    """A label as its class name: 3.0 and 3 are one class; surrounding spaces dropped."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def class_order(labels: list[str]) -> list[str]:
    """Class names sorted numerically when every label is a number, else alphabetically."""
    try:
        return sorted(set(labels), key=float)
    except ValueError:
        return sorted(set(labels))


def _looks_continuous(values: list[Any]) -> bool:
    numbers = []
    for value in values:
        try:
            numbers.append(float(value))
        except (TypeError, ValueError):
            return False
    fractional = {v for v in numbers if math.isfinite(v) and not float(v).is_integer()}
    return len(fractional) > CONTINUOUS_DISTINCT


class Classification:
    """One class per sample: labels become class ids in a sorted order of their names."""

    name = "classification"
    has_classes = True

    def encode_targets(
        self, values: list[Any], column: str, source: Any
    ) -> tuple[Tensor, list[str]]:
        """(int64 class ids, class names) of a label column."""
        if _looks_continuous(values):
            raise DataError(
                f"the label column '{column}' of {source} holds continuous numbers (many distinct"
                " fractional values): to predict a number, use problem=regression."
            )
        texts = [label_text(v) for v in values]
        names = class_order(texts)
        if len(names) < 2:
            raise DataError(
                f"the label column '{column}' of {source} holds one class only ('{names[0]}'):"
                " a classifier needs at least two."
            )
        ids = {name: i for i, name in enumerate(names)}
        return torch.tensor([ids[t] for t in texts], dtype=torch.long), names

    def strata(self, y: Tensor) -> Tensor:
        """What splits are stratified on: the classes themselves."""
        return y
