"""Tables as users bring them: numeric and text columns, gaps, an id column to drop.

Read with pandas (CSV: quoting, encodings, NA markers; Parquet with pyarrow). Column
kinds are inferred (text -> categorical, numbers -> numeric) and can be set with
data.categorical / data.numeric / data.drop. Everything fitted from data is fitted on
the training split only and kept as plain data (`TableSchema.to_state`): the category
vocabularies and which numeric columns had gaps. A sample is one float row: the numeric
columns' raw values (NaN where missing), then each categorical column's index (0: missing
or never seen in training). The model's `TablePreprocess` imputes, adds missing
indicators and standardizes, so checkpoints and exported models take those raw rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dltrain.data.base import InMemoryDataModule, Samples
from dltrain.errors import ConfigError, DataError, did_you_mean
from dltrain.problems import label_text

NA_VALUES = ["?", "NA", "N/A", "na", "n/a", "NaN", "nan", "null", "NULL", "None", "none", "-", ""]
# A text column with more distinct values than this share of its rows is an id, not a category.
ID_LIKE_SHARE = 0.9


def read_table(path: str | Path, key: str = "data.path") -> Any:
    """A CSV or Parquet file as a pandas DataFrame; exit-2 errors for unreadable files."""
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise DataError(f"{key}={path}: no such file.")
    try:
        if file.suffix.lower() in (".parquet", ".pq"):
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise DataError(
                    f"{key}={path}: reading Parquet needs pyarrow: pip install 'dltrain[parquet]'."
                ) from None
            table = pd.read_parquet(file)
        else:
            table = pd.read_csv(
                file, na_values=NA_VALUES, keep_default_na=True, skipinitialspace=True,
                encoding_errors="replace",
            )  # fmt: skip
    except DataError:
        raise
    except Exception as error:  # pandas raises many kinds for a malformed file
        raise DataError(f"{key}={path} is not a readable table ({error}).") from None
    if table.empty:
        raise DataError(f"{key}={path} has no rows.")
    table.columns = [str(c).strip() for c in table.columns]
    return table


def _check_columns(names: list[str], columns: list[str], key: str, path: Any) -> None:
    for name in names:
        if name not in columns:
            raise ConfigError(
                f"{key} names '{name}', which {path} does not have.{did_you_mean(name, columns)}"
                f" Columns: {', '.join(columns)}."
            )


def encode_label_column(
    table: Any, column: str, problem: Any, path: Any
) -> tuple[Tensor, list[str]]:
    """(targets, class names) of a table's label column; an empty cell exits 2 with its line."""
    labels = table[column]
    if labels.isna().any():
        row = int(labels.isna().to_numpy().argmax()) + 2
        raise DataError(f"{path}, line {row}: the label column '{column}' is empty.")
    return problem.encode_targets(labels.tolist(), column, path)


def embedding_width(cardinality: int) -> int:
    """fastai's rule of thumb for an embedding's width from its number of categories."""
    return min(50, round(1.6 * cardinality**0.56))


@dataclass
class TableSchema:
    """What was learned from the training rows: column kinds, vocabularies, gaps."""

    numeric: list[str]
    categories: dict[str, list[str]]  # column -> categories seen in training (index = position + 1)
    gaps: list[str] = field(default_factory=list)  # numeric columns with missing training values

    @property
    def gap_columns(self) -> Tensor:
        """Positions, among the numeric columns, of those that get a missing indicator."""
        return torch.tensor([self.numeric.index(c) for c in self.gaps], dtype=torch.long)

    def net_inputs(self) -> dict[str, Any]:
        """The net's input shape after TablePreprocess and, with categorical columns, the
        cardinality of each (its categories + 1 for missing or unseen)."""
        width = len(self.numeric) + len(self.gaps) + len(self.categories)
        cardinalities = [len(values) + 1 for values in self.categories.values()]
        return {"input_shape": (width,), **({"categories": cardinalities} if cardinalities else {})}

    def encode(self, table: Any, source: Any) -> Tensor:
        """Raw model rows [N, numeric + categorical] from a DataFrame with these columns."""
        import pandas as pd

        missing = [c for c in [*self.numeric, *self.categories] if c not in table.columns]
        if missing:
            raise DataError(
                f"{source} lacks the column '{missing[0]}', which the model uses"
                f" (columns there: {', '.join(map(str, table.columns))})."
            )
        parts = []
        for column in self.numeric:
            values = pd.to_numeric(table[column], errors="coerce")
            text = table[column][values.isna() & table[column].notna()]
            if len(text):
                raise DataError(
                    f"{source}: numeric column '{column}' holds '{text.iloc[0]}', not a number;"
                    f" set data.categorical=[{column}] if it is a category."
                )
            parts.append(torch.tensor(values.to_numpy(dtype="float64"), dtype=torch.float32))
        for column, values in self.categories.items():
            index = {value: i + 1 for i, value in enumerate(values)}
            codes = [index.get(_category(v), 0) for v in table[column].tolist()]
            parts.append(torch.tensor(codes, dtype=torch.float32))
        rows = torch.stack(parts, dim=1) if parts else torch.zeros(len(table), 0)
        if torch.isinf(rows).any():
            raise DataError(f"{source} holds an infinite value in a numeric column.")
        return rows

    def unseen_shares(self, table: Any) -> dict[str, float]:
        """Per categorical column, the share of rows whose value training never saw."""
        shares = {}
        for column, values in self.categories.items():
            known = set(values)
            cells = [_category(v) for v in table[column].tolist()] if column in table else []
            unseen = sum(1 for c in cells if c is not None and c not in known)
            shares[column] = round(unseen / max(len(cells), 1), 4)
        return shares

    def to_state(self) -> dict[str, Any]:
        """Plain data for the checkpoint (loadable with weights_only=True)."""
        return {"numeric": list(self.numeric), "categories": dict(self.categories),
                "gaps": list(self.gaps)}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TableSchema:
        return cls(list(state["numeric"]), {k: list(v) for k, v in state["categories"].items()},
                   list(state["gaps"]))  # fmt: skip


def _category(value: Any) -> str | None:
    """A cell as its category name (3.0 and 3 are one), None when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return label_text(value)


class TablePreprocess(nn.Module):
    """Raw table rows -> the net's input: numeric gaps filled with the training median,
    a 0/1 indicator per column that had gaps in training, standardized numbers, then the
    category indices unchanged. Its buffers travel in the checkpoint."""

    def __init__(
        self, median: Tensor, mean: Tensor, std: Tensor, gaps: Tensor, n_categorical: int
    ) -> None:
        super().__init__()
        self.register_buffer("median", median.float())
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        self.register_buffer("gaps", gaps.long())  # indices of numeric columns with indicators
        self.n_numeric, self.n_categorical = len(median), n_categorical

    @classmethod
    def empty(cls, schema: TableSchema) -> TablePreprocess:
        """Buffers of the right sizes, to be filled from a checkpoint's state."""
        n = len(schema.numeric)
        return cls(torch.zeros(n), torch.zeros(n), torch.ones(n), schema.gap_columns,
                   len(schema.categories))  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        numbers, categories = x[:, : self.n_numeric], x[:, self.n_numeric :]
        missing = torch.isnan(numbers)
        numbers = (torch.where(missing, self.median, numbers) - self.mean) / self.std
        return torch.cat([numbers, missing[:, self.gaps].to(x.dtype), categories], dim=1)


class TableDataModule(InMemoryDataModule):
    """`path`: a CSV or Parquet table with a header row and a `label_column`."""

    allows_missing = True

    def __init__(
        self,
        path: str | None = None,
        label_column: str = "label",
        categorical: list[str] | None = None,
        numeric: list[str] | None = None,
        drop: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.label_column = path, label_column
        self.categorical, self.numeric = list(categorical or []), list(numeric or [])
        self.drop = list(drop or [])
        self.schema: TableSchema | None = None

    def read(self, path: str) -> Samples:
        table = read_table(path, self.path_key(path))
        columns = list(table.columns)
        if self.label_column not in columns:
            raise DataError(
                f"{path} has no label column '{self.label_column}'."
                f"{did_you_mean(self.label_column, columns)} Columns: {', '.join(columns)}."
                " Set data.label_column to the column that holds the target."
            )
        for key in ("categorical", "numeric", "drop"):
            _check_columns(getattr(self, key), columns, f"data.{key}", path)
        y, class_names = encode_label_column(table, self.label_column, self.problem, path)
        features = table.drop(columns=[self.label_column, *self.drop])
        return Samples(features, y, class_names)

    def load(self) -> Samples:
        if not self.path:
            raise DataError("data=csv needs a file: set data.path=path/to/table.csv.")
        return self.read(self.path)

    def prepare(self, samples: Samples, train: Tensor) -> Samples:
        table = samples.x
        self.schema = self._fit_schema(table.iloc[train.tolist()], self.path)
        x = self.schema.encode(table, self.path)
        test = samples.test
        if test is not None:
            self.unseen_categories = self.schema.unseen_shares(test[0])
            test = (self.schema.encode(test[0], self.test_path), test[1])
        return Samples(x, samples.y, samples.class_names, test)

    def _fit_schema(self, train: Any, source: Any) -> TableSchema:
        import pandas as pd

        numeric, categories = [], {}
        for column in train.columns:
            values = train[column]
            if values.isna().all():
                raise DataError(
                    f"column '{column}' of {source} is empty in every training row: drop it with"
                    f" data.drop=[{column}]."
                )
            numbers = pd.to_numeric(values, errors="coerce")
            is_text = bool((numbers.isna() & values.notna()).any())
            if column in self.categorical or (is_text and column not in self.numeric):
                seen = sorted({c for c in map(_category, values.tolist()) if c is not None})
                if len(seen) > ID_LIKE_SHARE * values.notna().sum() and len(seen) > 20:
                    raise DataError(
                        f"column '{column}' of {source} has a different value in nearly every row"
                        f" ({len(seen)} of {int(values.notna().sum())}): it looks like an id; drop it"
                        f" with data.drop=[{column}]."
                    )
                categories[column] = seen
            else:
                numeric.append(column)
        gaps = [c for c in numeric if train[c].isna().any()]
        return TableSchema(numeric, categories, gaps)

    def preprocess(self) -> nn.Module:
        """Imputation, indicators and standardization fitted on the training rows."""
        schema = self.schema
        train = self.splits["train"][0][:, : len(schema.numeric)]
        median = torch.nanmedian(train, dim=0).values if len(schema.numeric) else torch.zeros(0)
        filled = torch.where(torch.isnan(train), median, train)
        mean, std = filled.mean(0), filled.std(0).nan_to_num(1.0).clamp_min(1e-6)
        return TablePreprocess(median, mean, std, schema.gap_columns, len(schema.categories))

    def net_inputs(self) -> dict[str, Any]:
        return self.schema.net_inputs()

    def drift_features(self, x: Tensor) -> dict[str, Tensor]:
        """The numeric columns by name, raw (NaN where missing)."""
        return {name: x[:, i] for i, name in enumerate(self.schema.numeric)}

    def baseline_features(self, x: Tensor) -> Tensor:
        """The preprocessed numbers and indicators, then each category one-hot."""
        rows = super().baseline_features(x)
        cardinalities = self.net_inputs().get("categories", [])
        numbers = rows[:, : rows.shape[1] - len(cardinalities)]
        codes = rows[:, numbers.shape[1] :].long()
        one_hot = [nn.functional.one_hot(codes[:, i], n).float()
                   for i, n in enumerate(cardinalities)]  # fmt: skip
        return torch.cat([numbers, *one_hot], dim=1)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "table", "label_column": self.label_column,
                "schema": self.schema.to_state()}  # fmt: skip
