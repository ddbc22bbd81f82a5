"""Time series as users bring them: the UCR/UEA archive's .ts files, .npz arrays, and
long-format CSV tables (one row per time step).

A sample is a padded tensor [T, F + 1]: F channels (NaN where a value is missing), then a
0/1 channel that marks real time steps, so series of unequal length are batched without
truncation and the nets mask the padding (masked pooling in the TCN, packed sequences in
the RNN). The model's first module (`SeriesPreprocess`) standardizes each channel with
training statistics, fills missing values with the channel mean and zeroes the padding;
checkpoints and exported models take these raw padded series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dltrain.data.base import InMemoryDataModule, Samples
from dltrain.errors import DataError, did_you_mean

# The .ts header lines dltrain reads; any other @-line is refused.
TS_KEYS = ("problemname", "timestamps", "missing", "univariate", "dimensions", "equallength",
           "serieslength", "classlabel", "targetlabel", "data")  # fmt: skip


@dataclass
class SeriesFile:
    """What one file holds: series [T_i, F] (float64, NaN = missing), their labels (None
    when the file has none) and the header's facts."""

    series: list[np.ndarray]
    labels: list[Any] | None
    header: dict[str, Any] = field(default_factory=dict)


def _flag(value: str, key: str, where: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise DataError(f"{where}: @{key} must be true or false, not '{value}'.")
    return value.lower() == "true"


def read_ts(path: Path, key: str = "data.path") -> SeriesFile:
    """A UCR/UEA archive .ts file, its header honoured and checked."""
    header: dict[str, Any] = {}
    series, labels = [], []
    with open(path, encoding="utf-8", errors="replace") as file:
        in_data = False
        for number, raw in enumerate(file, start=1):
            line = raw.strip()
            where = f"{key}={path}, line {number}"
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise DataError(
                        f"{where}: expected a @-header line or @data, got '{line[:40]}'."
                    )
                name, _, value = line[1:].partition(" ")
                name, value = name.lower(), value.strip()
                if name not in TS_KEYS:
                    raise DataError(
                        f"{where}: unknown header line @{name}.{did_you_mean(name, list(TS_KEYS))}"
                    )
                if name == "data":
                    in_data = True
                elif name == "classlabel":
                    words = value.split()
                    header["classlabel"] = _flag(words[0] if words else "", name, where)
                    header["classes"] = words[1:]
                    if header["classlabel"] and not header["classes"]:
                        raise DataError(f"{where}: @classLabel true lists no class labels.")
                elif name == "problemname":
                    header[name] = value
                elif name in ("serieslength", "dimensions"):
                    if not value.isdigit():
                        raise DataError(f"{where}: @{name} must be a whole number, not '{value}'.")
                    header[name] = int(value)
                else:
                    header[name] = _flag(value, name, where)
                continue
            if header.get("timestamps"):
                raise DataError(f"{where}: .ts files with @timeStamps true are not supported.")
            fields = line.split(":")
            labelled = header.get("classlabel") or header.get("targetlabel")
            if labelled:
                label, fields = fields[-1].strip(), fields[:-1]
                if header.get("classlabel") and label not in header["classes"]:
                    raise DataError(
                        f"{where}: class label '{label}' is not among @classLabel's"
                        f" ({', '.join(header['classes'])})."
                    )
                labels.append(label)
            dims = [_values(f, where, header) for f in fields]
            if series and len(dims) != series[0].shape[1]:
                raise DataError(
                    f"{where}: {len(dims)} dimensions, but the first series has {series[0].shape[1]}."
                )
            lengths = {len(d) for d in dims}
            if len(lengths) != 1:
                raise DataError(f"{where}: the dimensions of one series have different lengths.")
            series.append(np.stack(dims, axis=1))
    if not in_data:
        raise DataError(f"{key}={path} has no @data line: is it a .ts file?")
    if not series:
        raise DataError(f"{key}={path} holds no series after @data.")
    _check_header(series, header, f"{key}={path}")
    return SeriesFile(series, labels or None, header)


def _values(text: str, where: str, header: dict) -> np.ndarray:
    values = []
    for item in text.split(","):
        item = item.strip()
        if item in ("?", "NaN", "nan", ""):
            if header.get("missing") is False:
                raise DataError(f"{where}: a missing value, but the header says @missing false.")
            values.append(math.nan)
            continue
        try:
            values.append(float(item))
        except ValueError:
            raise DataError(f"{where}: '{item[:20]}' is not a number.") from None
    return np.asarray(values, dtype=np.float64)


def _check_header(series: list[np.ndarray], header: dict, source: str) -> None:
    dims, lengths = series[0].shape[1], {s.shape[0] for s in series}
    if header.get("univariate") is True and dims != 1:
        raise DataError(f"{source}: @univariate true, but the series have {dims} dimensions.")
    if "dimensions" in header and header["dimensions"] != dims:
        raise DataError(
            f"{source}: @dimensions {header['dimensions']}, but the series have {dims}."
        )
    if header.get("equallength") is True and len(lengths) > 1:
        raise DataError(
            f"{source}: @equalLength true, but lengths range {min(lengths)}..{max(lengths)}."
        )
    if header.get("equallength") is True and "serieslength" in header:
        if lengths != {header["serieslength"]}:
            raise DataError(
                f"{source}: @seriesLength {header['serieslength']}, but the series have"
                f" {next(iter(lengths))} steps."
            )


def read_npz(path: Path, key: str = "data.path") -> SeriesFile:
    """An .npz archive with `x` ([N, T] or [N, T, F]; NaN = missing) and, for training, `y`;
    or an .npy array of series alone (no labels: for predict)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{key}={path} is not a readable {path.suffix} array ({error}).") from None
    if isinstance(archive, np.ndarray):
        archive = {"x": archive}
    if "x" not in archive:
        raise DataError(f"{key}={path} has no array 'x' (it has: {', '.join(archive.files)}).")
    try:
        x = np.asarray(archive["x"], dtype=np.float64)
        labels = archive["y"].tolist() if "y" in archive else None
    except ValueError as error:  # an object array would need pickle, which is never used
        raise DataError(
            f"{key}={path}: {error} (store numbers and strings, not objects)."
        ) from None
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise DataError(f"{key}={path}: 'x' must be [N, T] or [N, T, F], not {list(x.shape)}.")
    if labels is not None and len(labels) != len(x):
        raise DataError(f"{key}={path}: 'y' has {len(labels)} labels for {len(x)} series.")
    return SeriesFile(list(x), labels)


def read_long_csv(
    path: Path, id_column: str, time_column: str | None, label_column: str, key: str = "data.path"
) -> SeriesFile:
    """A long table: one row per (series id, time step); the other columns are channels."""
    from dltrain.data.table import read_table

    table = read_table(path, key)
    columns = list(table.columns)
    for name, option in ((id_column, "data.id_column"), (time_column, "data.time_column")):
        if name is not None and name not in columns:
            raise DataError(
                f"{key}={path} has no column '{name}' ({option}).{did_you_mean(name, columns)}"
                f" Columns: {', '.join(columns)}."
            )
    features = [c for c in columns if c not in (id_column, time_column, label_column)]
    series, labels = [], []
    has_labels = label_column in columns
    for series_id, rows in table.groupby(id_column, sort=False):
        if time_column is not None:
            rows = rows.sort_values(time_column)
        try:
            values = rows[features].to_numpy(dtype=np.float64)
        except ValueError:
            raise DataError(f"{key}={path}: the channel columns must hold numbers.") from None
        series.append(values)
        if has_labels:
            found = rows[label_column].dropna().unique()
            if len(found) != 1:
                raise DataError(
                    f"{key}={path}: series '{series_id}' has {len(found)} different labels in"
                    f" '{label_column}'; a series has one."
                )
            labels.append(found[0].item() if hasattr(found[0], "item") else found[0])
    return SeriesFile(series, labels if has_labels else None, {"features": features})


def pad(series: list[np.ndarray], length: int | None = None) -> Tensor:
    """Series [T_i, F] as one tensor [N, T, F + 1]: the values, then 1 on real steps."""
    longest = max(s.shape[0] for s in series) if length is None else length
    out = torch.zeros(len(series), longest, series[0].shape[1] + 1)
    for i, s in enumerate(series):
        steps = min(len(s), longest)
        out[i, :steps, :-1] = torch.as_tensor(s[:steps], dtype=torch.float32)
        out[i, :steps, -1] = 1.0
    return out


def resample(series: np.ndarray, length: int) -> np.ndarray:
    """A series stretched or squeezed to `length` steps by linear interpolation."""
    if len(series) == length:
        return series
    old = np.linspace(0.0, 1.0, len(series))
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, series[:, f]) for f in range(series.shape[1])], axis=1)


class SeriesPreprocess(nn.Module):
    """Raw padded series -> the net's input: each channel standardized with training
    statistics, missing values at the channel mean (0), padding at 0, the mask kept."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    def forward(self, x: Tensor) -> Tensor:
        values, mask = x[..., :-1], x[..., -1:]
        values = ((values - self.mean) / self.std).nan_to_num(0.0) * mask
        return torch.cat([values, mask], dim=-1)


class TimeSeriesDataModule(InMemoryDataModule):
    """`path`: a .ts, .npz or long-format .csv file of labelled series; `test_path` the
    archive's own test file (then no test split is cut)."""

    allows_missing = True
    baseline_kind = "nearest_neighbour"

    def __init__(
        self,
        path: str | None = None,
        label_column: str = "label",
        id_column: str = "id",
        time_column: str | None = None,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.label_column = path, label_column
        self.id_column, self.time_column, self.max_length = id_column, time_column, max_length
        self.channels: int | None = None

    def read_file(self, path: str, key: str) -> SeriesFile:
        """The series of one file, by extension."""
        file = Path(path)
        if not file.is_file():
            raise DataError(f"{key}={path}: no such file.")
        suffix = file.suffix.lower()
        if suffix == ".ts":
            return read_ts(file, key)
        if suffix in (".npz", ".npy"):
            return read_npz(file, key)
        if suffix in (".csv", ".parquet", ".pq"):
            return read_long_csv(file, self.id_column, self.time_column, self.label_column, key)
        raise DataError(f"{key}={path}: give a .ts, .npz, .npy or long-format .csv file of series.")

    def series_tensor(self, found: SeriesFile, source: str) -> Tensor:
        """Padded [N, T, F + 1] series, checked against the training channels, resampled to
        data.max_length when they are longer."""
        channels = found.series[0].shape[1]
        if self.channels is not None and channels != self.channels:
            raise DataError(
                f"{source} has {channels} channels per time step; the training data has"
                f" {self.channels}."
            )
        series = found.series
        if self.max_length:
            series = [resample(s, self.max_length) if len(s) > self.max_length else s
                      for s in series]  # fmt: skip
        return pad(series, self.max_length)

    def read(self, path: str) -> Samples:
        key = self.path_key(path)
        found = self.read_file(path, key)
        if found.labels is None:
            raise DataError(
                f"{key}={path} holds no labels: a .ts file needs @classLabel true (or"
                " @targetLabel true), an .npz a 'y' array (an .npy has none), a long table a label column"
                f" ({self.label_column})."
            )
        y, class_names = self.problem.encode_targets(found.labels, self.label_column, path)
        x = self.series_tensor(found, f"{key}={path}")
        self.channels = found.series[0].shape[1]
        return Samples(x, y, class_names)

    def load(self) -> Samples:
        if not self.path:
            raise DataError("data=timeseries needs a file: set data.path=path/to/X_TRAIN.ts.")
        return self.read(self.path)

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.mean is None and self.splits:
            values = self.splits["train"][0]
            real = values[..., :-1][values[..., -1] > 0]  # [steps, F] of real steps
            self.mean = torch.nanmean(real, dim=0)
            centred = (real - self.mean).nan_to_num(0.0)
            counts = (~torch.isnan(real)).sum(0).clamp_min(2)
            self.std = (centred.pow(2).sum(0) / (counts - 1)).sqrt().clamp_min(1e-6)

    def preprocess(self) -> nn.Module:
        return SeriesPreprocess(self.mean, self.std)

    def net_inputs(self) -> dict[str, Any]:
        return {"input_shape": self.input_shape, "masked": True}

    def baseline_features(self, x: Tensor) -> Tensor:
        """The standardized values over time (the mask left out), zero-padded to the longest
        series of any split, flattened: splits of different lengths compare step by step."""
        longest = max(split[0].shape[1] for split in self.splits.values())
        with torch.no_grad():
            values = self.preprocess()(x)[..., :-1]
        values = nn.functional.pad(values, (0, 0, 0, longest - values.shape[1]))
        return values.flatten(1)

    def drift_features(self, x: Tensor) -> dict[str, Tensor]:
        """Per series: the mean of each channel over its real steps, and its length."""
        mask = x[..., -1]
        values = x[..., :-1].nan_to_num(0.0) * mask.unsqueeze(-1)
        means = values.sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        features = {f"channel {c} mean": means[:, c] for c in range(means.shape[1])}
        return {**features, "length": mask.sum(1)}

    def sequence_lengths(self, split: str) -> Tensor:
        """The number of real time steps of each series in a split."""
        return self.splits[split][0][..., -1].sum(1)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "timeseries", "channels": self.channels,
                "max_length": self.max_length, "id_column": self.id_column,
                "time_column": self.time_column, "label_column": self.label_column}  # fmt: skip
