"""The detectors on synthetic epoch histories, and the data profile."""

import math

import pytest
import torch

from dltrain.diagnosis import Thresholds, diagnose
from dltrain.errors import DataError
from dltrain.problems import Classification
from dltrain.profile import profile, warnings_for

TEN_CLASSES = {"class_names": [str(i) for i in range(10)], "test/acc": 0.9, "test/f1": 0.9}


def history(train_loss, val_loss=None, train_acc=None):
    val_loss = val_loss or train_loss
    train_acc = train_acc or [0.95] * len(train_loss)
    return [{"epoch": i, "train/loss": t, "val/loss": v, "train/acc": a}
            for i, (t, v, a) in enumerate(zip(train_loss, val_loss, train_acc, strict=True))]  # fmt: skip


def codes(rows, metrics=TEN_CLASSES, **kwargs):
    return [finding["code"] for finding in diagnose(rows, metrics, Thresholds(), **kwargs)]


def test_a_steady_run_is_healthy():
    assert codes(history([1.5, 0.6, 0.3, 0.25, 0.24, 0.24], [1.4, 0.7, 0.4, 0.35, 0.34, 0.34])) == [
        "healthy"
    ]


def test_rising_validation_loss_with_falling_training_loss_is_overfitting():
    rows = history([1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01], [1.0, 0.6, 0.5, 0.55, 0.6, 0.7, 0.8])
    assert codes(rows) == ["overfitting"]


def test_low_training_accuracy_is_underfitting():
    rows = history([2.2, 2.1, 2.05, 2.05, 2.04], train_acc=[0.2, 0.25, 0.3, 0.3, 0.31])
    assert "underfitting" in codes(rows)


def test_loss_above_guessing_or_jumping_means_the_rate_is_too_high():
    assert "lr_too_high" in codes(history([6.8, 3.1, 2.3, 2.4, 2.3]))
    assert "lr_too_high" in codes(history([1.0, 1.5, 0.9, 1.4, 0.9]))
    assert "lr_too_high" in codes(history([1.0, math.nan, math.nan]))
    # tiny wiggles late in training are no jumps
    assert "lr_too_high" not in codes(history([1.0, 0.1, 0.002, 0.003, 0.002, 0.004]))


def test_a_loss_still_falling_fast_at_the_end_is_not_converged():
    assert codes(history([2.0, 1.8, 1.6, 1.4, 1.2, 1.0])) == ["not_converged"]


def test_imbalance_is_reported_only_on_imbalanced_training_data():
    metrics = {**TEN_CLASSES, "test/acc": 0.70, "test/f1": 0.62,
               "test/per_class": {str(i): {"recall": 0.2 if i < 5 else 0.95} for i in range(10)}}  # fmt: skip
    rows = history([1.5, 0.6, 0.3, 0.25, 0.24, 0.24])
    assert codes(rows, metrics, imbalance_ratio=10.0) == ["imbalance_hurting"]
    assert codes(rows, metrics, imbalance_ratio=1.0) == ["healthy"]


class FakeData:
    def __init__(self, x, y):
        self.class_names = ["a", "b"]
        self.splits = {"train": (x[:6], y[:6]), "val": (x[6:8], y[6:8]), "test": (x[8:], y[8:])}
        self.input_shape = tuple(x.shape[1:])
        self.mean, self.std = x.mean(0), x.std(0)
        self.allows_missing = False
        self.external_test = False
        self.problem = Classification()

    def describe(self):
        return {"kind": "tensor"}

    def sequence_lengths(self, split):
        return None

    def profile_extras(self):
        return {}


def test_profile_counts_classes_duplicates_and_refuses_non_finite_values():
    x = torch.arange(20, dtype=torch.float32).reshape(10, 2)
    x[9] = x[0]  # a test sample that is also a training sample
    y = torch.tensor([0, 0, 0, 0, 0, 1, 0, 1, 0, 1])
    report = profile(FakeData(x, y))
    assert report["samples"] == {"train": 6, "val": 2, "test": 2}
    assert report["imbalance_ratio"] == 5.0 and report["duplicates_train_test"] == 1
    assert len(warnings_for(report, imbalance_ratio=3.0)) == 2
    x[3, 1] = math.inf
    with pytest.raises(DataError, match="non-finite"):
        profile(FakeData(x, y))


def with_steps(rows, per_epoch):
    return [{**row, "step": per_epoch * (row["epoch"] + 1)} for row in rows]


def test_few_steps_with_a_falling_loss_is_too_few_steps_and_says_what_to_do():
    rows = with_steps(history([1.5, 1.0, 0.7, 0.5, 0.4, 0.35]), per_epoch=2)  # 12 steps
    findings = diagnose(rows, TEN_CLASSES, Thresholds())
    assert findings[0]["code"] == "too_few_steps"
    assert "only 12 optimizer steps (6 epochs of 2)" in findings[0]["message"]
    assert "trainer.max_epochs=100 gives 200" in findings[0]["message"]
    # Enough steps, or a loss that stopped falling: silent.
    assert "too_few_steps" not in codes(with_steps(history([1.5, 1.0, 0.7, 0.5, 0.4, 0.35]), 50))
    assert "too_few_steps" not in codes(with_steps(history([1.5, 0.6, 0.3, 0.25, 0.24, 0.26]), 2))


def test_a_net_under_its_baseline_is_below_baseline_with_the_gap():
    steady = with_steps(history([1.5, 0.6, 0.3, 0.25, 0.24, 0.24]), 50)
    metrics = {**TEN_CLASSES, "val/acc": 0.85, "baseline/val_acc": 0.97,
               "baseline/name": "logistic regression"}  # fmt: skip
    findings = diagnose(steady, metrics, Thresholds())
    assert [f["code"] for f in findings] == ["below_baseline"]
    assert (
        "0.850 is 0.120 under the baseline's (logistic regression: 0.970)" in findings[0]["message"]
    )
    assert codes(steady, {**metrics, "val/acc": 0.965}) == ["healthy"]  # within baseline_gap
    regression = {"val/r2": 0.3, "baseline/val_r2": 0.5, "baseline/name": "ridge regression"}
    standardized = with_steps(history([0.9, 0.5, 0.3, 0.25, 0.24, 0.24]), 50)
    assert codes(standardized, regression, chance_loss=1.0, headline="r2") == ["below_baseline"]


def test_a_training_set_learned_by_heart_far_above_validation_is_a_generalization_gap():
    def rows(val_acc):
        train_loss, val_loss = (
            [0.9, 0.2, 0.05, 0.02, 0.01, 0.01],
            [0.9, 0.6, 0.55, 0.55, 0.54, 0.54],
        )
        return [{"epoch": i, "train/loss": t, "val/loss": v, "train/acc": a, "val/acc": val_acc}
                for i, (t, v, a) in enumerate(zip(train_loss, val_loss,
                                                  [0.7, 0.95, 0.99, 1.0, 1.0, 1.0], strict=True))]  # fmt: skip

    # The validation loss never rises (no overfitting finding), yet 1.0 against 0.80 is a gap.
    found = diagnose(rows(0.80), TEN_CLASSES, Thresholds())
    assert [f["code"] for f in found] == ["generalization_gap"]
    assert "0.800" in found[0]["message"] and "0.200" in found[0]["message"]
    assert codes(rows(0.95)) == ["healthy"]
