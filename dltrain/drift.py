"""Is the test data representative of the training data?

Checked when the test split was not cut from the training data at random (the user's
data.test_path, or a source's own test split): the class proportions (or a continuous
target's distribution), each numeric feature's distribution (two-sample
Kolmogorov-Smirnov statistic against its critical value at alpha = 0.001, so that only
clear shifts are named), and the share of category values never seen in training.
Images are compared by each image's mean per channel, sequences by each sample's mean
per feature.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

KS_C_ALPHA = 1.949  # c(alpha) of the two-sample KS critical value, alpha = 0.001
CLASS_SHARE_GAP = 0.05  # a class's share differing by more than this (and by chance) is named
UNSEEN_SHARE = 0.01  # test category values never seen in training above this share are named


def ks_statistic(a: Tensor, b: Tensor) -> float:
    """The largest distance between the empirical distribution functions of a and b."""
    a, b = torch.sort(a.double()).values, torch.sort(b.double()).values
    points = torch.cat([a, b])
    cdf_a = torch.searchsorted(a, points, right=True) / len(a)
    cdf_b = torch.searchsorted(b, points, right=True) / len(b)
    return float((cdf_a - cdf_b).abs().max())


def ks_critical(n: int, m: int) -> float:
    """The KS statistic above which two samples of sizes n and m differ at alpha = 0.001."""
    return KS_C_ALPHA * math.sqrt((n + m) / (n * m))


def per_sample_features(x: Tensor) -> dict[str, Tensor]:
    """One number per sample and feature: table columns, image channel means, sequence
    feature means."""
    if x.ndim == 4:
        return {f"channel {c} mean": x[:, c].mean((1, 2)) for c in range(x.shape[1])}
    if x.ndim == 3:
        return {f"feature {f} mean": x[:, :, f].mean(1) for f in range(x.shape[2])}
    return {f"feature {f}": x[:, f] for f in range(x.reshape(len(x), -1).shape[1])}


def shifted_features(train: dict[str, Tensor], test: dict[str, Tensor]) -> list[dict[str, Any]]:
    """Features whose test distribution differs clearly from training, largest shift first."""
    shifted = []
    for name, values in train.items():
        a, b = values[~torch.isnan(values)], test[name][~torch.isnan(test[name])]
        if len(a) < 2 or len(b) < 2:
            continue
        statistic, critical = ks_statistic(a, b), ks_critical(len(a), len(b))
        if statistic > critical:
            shifted.append({"feature": name, "ks": round(statistic, 4),
                            "critical": round(critical, 4)})  # fmt: skip
    return sorted(shifted, key=lambda s: -s["ks"])


def shifted_classes(y_train: Tensor, y_test: Tensor, names: list[str]) -> list[dict[str, Any]]:
    """Classes whose share of the test split differs from training beyond chance."""
    k = len(names)
    train = torch.bincount(y_train, minlength=k).double() / len(y_train)
    test = torch.bincount(y_test, minlength=k).double() / len(y_test)
    shifted = []
    for i, name in enumerate(names):
        chance = 3 * math.sqrt(max(float(train[i] * (1 - train[i])), 1e-12) / len(y_test))
        if abs(float(test[i] - train[i])) > max(CLASS_SHARE_GAP, chance):
            shifted.append({"class": name, "train_share": round(float(train[i]), 4),
                            "test_share": round(float(test[i]), 4)})  # fmt: skip
    return shifted


def compare(datamodule: Any) -> dict[str, Any] | None:
    """data_profile.json's `test_vs_train`; None when the test split was cut at random."""
    if not datamodule.external_test:
        return None
    (x_train, y_train), (x_test, y_test) = datamodule.splits["train"], datamodule.splits["test"]
    report: dict[str, Any] = {
        "test_source": "data.test_path" if datamodule.test_path else "the source's own test split"
    }
    report.update(datamodule.problem.target_shift(y_train, y_test, datamodule.class_names))
    if isinstance(x_train, Tensor) and isinstance(x_test, Tensor):
        features = datamodule.drift_features
        report.setdefault("shifted_features", [])
        report["shifted_features"] += shifted_features(features(x_train), features(x_test))
    report["unseen_categories"] = dict(datamodule.unseen_categories)
    return report


def warnings_for(report: dict[str, Any] | None) -> list[str]:
    """The profile's warnings about an unrepresentative test split, naming what drifted."""
    if not report:
        return []
    source, found = report["test_source"], []
    if report.get("shifted_classes"):
        shown = ", ".join(f"{c['class']} ({c['train_share']:.0%} in training, {c['test_share']:.0%}"
                          " in test)" for c in report["shifted_classes"][:5])  # fmt: skip
        found.append(f"the class proportions of {source} differ from training: {shown}.")
    if report.get("shifted_features"):
        shown = ", ".join(f"{s['feature']} (KS {s['ks']:.2f})"
                          for s in report["shifted_features"][:5])  # fmt: skip
        found.append(
            f"{source} is distributed differently from the training data in {shown}:"
            " test figures may not carry over; check how the test data was collected."
        )
    unseen = {k: v for k, v in report.get("unseen_categories", {}).items() if v > UNSEEN_SHARE}
    if unseen:
        shown = ", ".join(f"{k} ({v:.0%})" for k, v in unseen.items())
        found.append(f"{source} holds categories never seen in training: {shown}.")
    return found
