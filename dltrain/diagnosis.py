"""Diagnosis of a finished fit from its epoch history: the common training pitfalls.

Each detector returns a finding (code, message with the evidence, what to try) or
None. Loss changes are measured against the loss of guessing uniformly, ln(classes),
so they mean the same for any number of classes and any stage of training. The
thresholds are in the `diagnosis` config block; a diagnosis never changes the run. The
codes: overfitting, generalization_gap, underfitting, lr_too_high, not_converged,
too_few_steps, below_baseline, imbalance_hurting, and healthy when nothing else was found.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Thresholds:
    """When each pitfall is reported (the `diagnosis` config block)."""

    overfit_rise: float = 0.1  # val loss this fraction above its minimum at the end ...
    overfit_epochs: int = 3  # ... at least this many epochs after that minimum
    underfit_train_acc: float = 0.8  # best training accuracy below this
    jump: float = 0.1  # a train-loss rise of this x ln(classes) between epochs is a jump ...
    lr_jumps: int = 2  # ... and this many jumps mean the learning rate is too high
    converging_drop: float = 0.02  # train loss still falls this x ln(classes) per epoch at the end
    imbalance_gap: float = 0.05  # test accuracy minus macro-F1 above this, or ...
    worst_recall: float = 0.5  # ... the worst class's recall below this x the mean recall
    imbalance_ratio: float = 3.0  # largest/smallest training class from this is imbalanced
    baseline_gap: float = 0.01  # the net's validation headline this far under the baseline's
    min_steps: int = 200  # fewer optimizer steps than this, with the loss still falling
    memorized_train_acc: float = 0.98  # training accuracy at least this ...
    memorized_train_loss: float = 0.05  # ... and training loss under this x ln(classes) ...
    generalization_gap: float = 0.08  # ... with validation accuracy this far below it


@dataclass(frozen=True)
class Finding:
    """One diagnosis: a machine-readable code and a one-line explanation with advice."""

    code: str
    message: str


@dataclass(frozen=True)
class Context:
    """What the detectors know besides the history: the test figures and the data profile."""

    metrics: Row
    chance_loss: float  # the loss of guessing: ln(classes); 1 for a standardized target's MSE
    imbalance_ratio: float  # largest/smallest class in the training split
    headline: str = "acc"  # the problem's figure compared with the baseline (higher is better)


def _series(rows: Sequence[Row], key: str) -> list[float]:
    return [float(row[key]) for row in rows if row.get(key) not in (None, "")]


def overfitting(rows: Sequence[Row], c: Context, t: Thresholds) -> Finding | None:
    val, train = _series(rows, "val/loss"), _series(rows, "train/loss")
    if len(val) < t.overfit_epochs + 2 or len(train) != len(val):
        return None
    best = min(range(len(val)), key=val.__getitem__)
    # A relative rise, and one that matters against the loss of guessing (not 0.013 -> 0.018).
    rose = (
        val[-1] >= val[best] * (1 + t.overfit_rise) and val[-1] - val[best] > 0.02 * c.chance_loss
    )
    if rose and len(val) - 1 - best >= t.overfit_epochs and train[-1] < train[best]:
        return Finding(
            "overfitting",
            f"validation loss rose from {val[best]:.3f} (epoch {best}) to {val[-1]:.3f} while training"
            " loss kept falling: try stronger regularization (regularization=strong), augmentation"
            " (augment=light), early stopping or more data.",
        )
    return None


def generalization_gap(rows: Sequence[Row], c: Context, t: Thresholds) -> Finding | None:
    """The training set learned by heart while validation stays clearly worse, whether or
    not the validation loss rises (with label noise or a shift it often does not)."""
    train_acc, train_loss = _series(rows, "train/acc"), _series(rows, "train/loss")
    val_acc = _series(rows, "val/acc")
    if (
        not train_acc
        or not val_acc
        or len(train_acc) != len(val_acc)
        or len(train_loss) != len(val_acc)
    ):
        return None
    gap = train_acc[-1] - max(val_acc)
    memorized = (train_acc[-1] >= t.memorized_train_acc
                 and train_loss[-1] < t.memorized_train_loss * c.chance_loss)  # fmt: skip
    if memorized and gap > t.generalization_gap:
        return Finding(
            "generalization_gap",
            f"the net learned the training set by heart (accuracy {train_acc[-1]:.3f}, loss"
            f" {train_loss[-1]:.3f}) but validation reached only {max(val_acc):.3f}: a gap of"
            f" {gap:.3f}. Try more data or augmentation (augment=light), stronger regularization"
            " (regularization=strong), a smaller net, or check that validation data looks like"
            " training data.",
        )
    return None


def underfitting(rows: Sequence[Row], c: Context, t: Thresholds) -> Finding | None:
    train_acc = _series(rows, "train/acc")
    if train_acc and max(train_acc) < t.underfit_train_acc:
        return Finding(
            "underfitting",
            f"training accuracy itself stayed low (best {max(train_acc):.3f}): try a larger model,"
            " less regularization (regularization=none), a higher learning rate or more epochs.",
        )
    return None


def lr_too_high(rows: Sequence[Row], c: Context, t: Thresholds) -> Finding | None:
    train = _series(rows, "train/loss")
    if any(not math.isfinite(v) for v in train):
        return Finding(
            "lr_too_high",
            "the training loss became non-finite: lower optim.lr (dltrain find-lr suggests one).",
        )
    worst = max(train, default=0.0)
    if worst > c.chance_loss * (1 + t.jump):
        return Finding(
            "lr_too_high",
            f"the training loss reached {worst:.3f}, worse than guessing ({c.chance_loss:.3f}):"
            " the updates overshoot; lower optim.lr, or run `dltrain find-lr`.",
        )
    jumps = sum(1 for a, b in zip(train, train[1:], strict=False) if b - a > t.jump * c.chance_loss)
    if jumps >= t.lr_jumps:
        return Finding(
            "lr_too_high",
            f"the training loss jumped up {jumps} times between epochs: lower optim.lr,"
            " or run `dltrain find-lr`.",
        )
    return None


def not_converged(rows: Sequence[Row], c: Context, t: Thresholds) -> Finding | None:
    train = _series(rows, "train/loss")
    if len(train) < 4:
        return None
    last = train[-4:]
    falling = all(
        a - b > t.converging_drop * c.chance_loss for a, b in zip(last, last[1:], strict=False)
    )
    if falling:
        return Finding(
            "not_converged",
            f"the training loss was still falling at the last epoch ({last[0]:.3f} -> {last[-1]:.3f}"
            " over 3 epochs): train longer (trainer.max_epochs) or raise optim.lr.",
        )
    return None


def too_few_steps(rows: Sequence[Row], c: Context, t: Thresholds) -> Finding | None:
    train, steps = _series(rows, "train/loss"), _series(rows, "step")
    if len(train) < 2 or not steps or steps[-1] >= t.min_steps:
        return None
    # Still improving in the second half of training: more steps would have helped.
    if train[-1] < train[len(train) // 2] - t.converging_drop * c.chance_loss:
        total, epochs = int(steps[-1]), len(rows)
        needed = math.ceil(epochs * t.min_steps / max(total, 1))
        return Finding(
            "too_few_steps",
            f"training made only {total} optimizer steps ({epochs} epochs of"
            f" {total // epochs}) and its loss was still falling: train longer"
            f" (trainer.max_epochs={needed} gives {t.min_steps}), use a smaller data.batch_size,"
            " or raise optim.lr.",
        )
    return None


def below_baseline(rows: Sequence[Row], c: Context, t: Thresholds) -> Finding | None:
    ours, theirs = c.metrics.get(f"val/{c.headline}"), c.metrics.get(f"baseline/val_{c.headline}")
    if ours is None or theirs is None or ours >= theirs - t.baseline_gap:
        return None
    return Finding(
        "below_baseline",
        f"the net's validation {c.headline} {ours:.3f} is {theirs - ours:.3f} under the baseline's"
        f" ({c.metrics.get('baseline/name')}: {theirs:.3f}): on small or simple data try a"
        " smaller net, stronger regularization (regularization=strong),"
        " more epochs, or keep the classical model.",
    )


def imbalance_hurting(rows: Sequence[Row], c: Context, t: Thresholds) -> Finding | None:
    if c.imbalance_ratio < t.imbalance_ratio:
        return None
    acc, f1 = c.metrics.get("test/acc"), c.metrics.get("test/f1")
    recalls = [v["recall"] for v in c.metrics.get("test/per_class", {}).values()]
    gap = acc is not None and f1 is not None and acc - f1 > t.imbalance_gap
    neglected = bool(recalls) and min(recalls) < t.worst_recall * (sum(recalls) / len(recalls))
    if gap or neglected:
        return Finding(
            "imbalance_hurting",
            f"the training classes are imbalanced ({c.imbalance_ratio:.1f}:1) and the rare ones are served"
            f" poorly (macro-F1 {f1:.3f}, accuracy {acc:.3f}, worst class recall {min(recalls, default=0):.3f}):"
            " try loss.class_weights=balanced or data.sampler=weighted.",
        )
    return None


DETECTORS: list[Callable[[Sequence[Row], Context, Thresholds], Finding | None]] = [
    lr_too_high,
    too_few_steps,  # before underfitting: too few steps is the cause, low accuracy the symptom
    underfitting,
    overfitting,
    not_converged,
    below_baseline,
    imbalance_hurting,
    generalization_gap,  # last: on imbalanced data the gap is the rare classes' symptom
]


def diagnose(
    rows: Sequence[Row],
    metrics: Row,
    thresholds: Thresholds | None = None,
    imbalance_ratio: float = 1.0,
    chance_loss: float | None = None,
    headline: str = "acc",
) -> list[dict]:
    """Every finding for a run (metrics.json's `diagnosis`); [healthy] when there is none.

    `chance_loss` is the loss of guessing, the problem's unit for loss changes (default:
    ln(classes), cross-entropy's)."""
    t = thresholds or Thresholds()
    if chance_loss is None:
        classes = max(
            2, len(metrics.get("class_names", [])) or len(metrics.get("test/per_class", {})) or 2
        )
        chance_loss = math.log(classes)
    context = Context(metrics, chance_loss, imbalance_ratio, headline)
    findings = [f for detect in DETECTORS if (f := detect(rows, context, t)) is not None]
    if not findings:
        findings = [Finding("healthy", "nothing notable: the run looks healthy.")]
    return [asdict(f) for f in findings]
