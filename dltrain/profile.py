"""The data profile shown before training: split sizes, class balance, value ranges, leaks."""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import Tensor

from dltrain.drift import compare
from dltrain.drift import warnings_for as drift_warnings
from dltrain.errors import DataError


def _fingerprints(x: Tensor) -> set[str]:
    flat = x.reshape(len(x), -1).contiguous().numpy()
    return {hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in flat}


def profile(datamodule: Any) -> dict[str, Any]:
    """Figures about the data a fit is about to train on (data_profile.json)."""
    splits = {name: datamodule.splits[name] for name in ("train", "val", "test")}
    targets = {split: y for split, (_, y) in splits.items()}
    report: dict[str, Any] = {
        "samples": {split: len(y) for split, y in targets.items()},
        **datamodule.problem.target_profile(targets, datamodule.class_names),
        "input_shape": list(datamodule.input_shape),
    }
    if datamodule.mean is not None:
        report["train_mean"] = datamodule.mean.flatten().tolist()
        report["train_std"] = datamodule.std.flatten().tolist()
    description = datamodule.describe()
    if description["kind"] == "table":
        report["columns"] = table_columns(description["schema"], splits["train"][0])
    x_train = datamodule.splits["train"][0]
    x_test = datamodule.splits["test"][0]
    if isinstance(x_train, Tensor):
        for split, (x, _) in splits.items():
            # Tables mark missing values with NaN, which the model imputes; inf is never allowed.
            bad = int((torch.isinf(x) if datamodule.allows_missing else ~torch.isfinite(x)).sum())
            if bad:
                raise DataError(
                    f"the {split} split has {bad} non-finite input values (NaN or inf): clean the data first."
                )
        finite = x_train[torch.isfinite(x_train)]
        report["train_min"] = float(finite.min()) if finite.numel() else None
        report["train_max"] = float(finite.max()) if finite.numel() else None
        report["duplicates_train_test"] = (
            len(_fingerprints(x_train) & _fingerprints(x_test))
            if isinstance(x_test, Tensor)
            else None
        )
    else:
        # File-backed data is read lazily; value range and duplicates are not scanned.
        report["train_min"] = report["train_max"] = report["duplicates_train_test"] = None
    lengths = {split: datamodule.sequence_lengths(split) for split in splits}
    if lengths["train"] is not None:
        report["lengths"] = {
            split: {"min": int(n.min()), "median": int(n.median()), "max": int(n.max())}
            for split, n in lengths.items()
        }
    report.update(datamodule.profile_extras())
    test_vs_train = compare(datamodule)
    if test_vs_train is not None:
        report["test_vs_train"] = test_vs_train
    return report


def table_columns(schema: dict[str, Any], x_train: Tensor) -> dict[str, Any]:
    """Per column of a table: its inferred kind, missing training values, categories."""
    columns: dict[str, Any] = {}
    for i, name in enumerate(schema["numeric"]):
        columns[name] = {"kind": "numeric", "missing": int(torch.isnan(x_train[:, i]).sum())}
    offset = len(schema["numeric"])
    for j, (name, values) in enumerate(schema["categories"].items()):
        missing = int((x_train[:, offset + j] == 0).sum())
        columns[name] = {"kind": "categorical", "categories": len(values), "missing": missing}
    return columns


def warnings_for(report: dict[str, Any], imbalance_ratio: float) -> list[str]:
    """What in the profile deserves the user's attention, each with what to do."""
    found = []
    if report["imbalance_ratio"] >= imbalance_ratio:
        found.append(
            f"the training classes are imbalanced (largest/smallest = {report['imbalance_ratio']:.1f}):"
            " consider loss.class_weights=balanced or data.sampler=weighted."
        )
    found += drift_warnings(report.get("test_vs_train"))
    if report.get("duplicates_train_test"):
        found.append(
            f"{report['duplicates_train_test']} test samples also appear in the training split:"
            " the test figures will look better than they are."
        )
    return found
