"""A CSV table: numeric feature columns plus a label column."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from dltrain.data.base import InMemoryDataModule, Samples
from dltrain.errors import DataError

MISSING = {"", "na", "nan", "null", "none", "?"}


def _label_order(labels: list[str]) -> list[str]:
    """Class names sorted numerically when every label is a number, else alphabetically."""
    try:
        return sorted(set(labels), key=float)
    except ValueError:
        return sorted(set(labels))


class CsvDataModule(InMemoryDataModule):
    """`path`: a CSV with a header row; every column but `label_column` is a numeric feature."""

    def __init__(self, path: str | None = None, label_column: str = "label", **kwargs) -> None:
        super().__init__(**kwargs)
        self.path, self.label_column = path, label_column

    def load(self) -> Samples:
        if not self.path:
            raise DataError("data=csv needs a file: set data.path=path/to/table.csv.")
        path = Path(self.path)
        if not path.is_file():
            raise DataError(f"data.path={self.path}: no such file.")
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            header = reader.fieldnames or []
            if self.label_column not in header:
                raise DataError(
                    f"{path} has no label column '{self.label_column}' (columns: {', '.join(header)})."
                    " Set data.label_column to the column that holds the class."
                )
            features = [name for name in header if name != self.label_column]
            rows, labels = [], []
            for line, row in enumerate(reader, start=2):
                rows.append([self._number(row[name], name, line, path) for name in features])
                label = (row[self.label_column] or "").strip()
                if label.lower() in MISSING:
                    raise DataError(
                        f"{path}, line {line}: the label column '{self.label_column}' is empty."
                    )
                labels.append(label)
        if not rows:
            raise DataError(f"{path} has a header but no rows.")
        class_names = _label_order(labels)
        ids = {name: i for i, name in enumerate(class_names)}
        x = torch.tensor(rows, dtype=torch.float32)
        y = torch.tensor([ids[label] for label in labels], dtype=torch.long)
        return Samples(x, y, class_names)

    @staticmethod
    def _number(text: str | None, column: str, line: int, path: Path) -> float:
        value = (text or "").strip()
        if value.lower() in MISSING:
            raise DataError(
                f"{path}, line {line}: column '{column}' has a missing value; fill or drop"
                " such rows first."
            )
        try:
            number = float(value)
        except ValueError:
            raise DataError(
                f"{path}, line {line}: column '{column}' holds '{value}', not a number; every"
                " feature column must be numeric (encode categories first)."
            ) from None
        if not math.isfinite(number):
            raise DataError(f"{path}, line {line}: column '{column}' holds {value}.")
        return number
