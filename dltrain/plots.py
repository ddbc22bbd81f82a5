"""Plots written into every run directory, with matplotlib's file-only Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, safe in CI and over SSH
    import matplotlib.pyplot as plt

    return plt


def learning_curves(
    rows: Sequence[dict[str, Any]],
    path: Path,
    panels: Sequence[tuple[str, str]] = (("loss", "cross-entropy loss"), ("acc", "accuracy")),
    baseline: dict[str, Any] | None = None,
) -> Path:
    """Loss, a metric (the problem's `curves`) and learning rate per epoch, training
    against validation; the classical baseline's validation figure as a reference line."""
    plt = pyplot()
    epochs = [row["epoch"] for row in rows]
    figure, axes = plt.subplots(1, 3, figsize=(14, 4))
    for axis, (metric, label) in zip(axes[:2], panels, strict=True):
        for split, style in (("train", "-"), ("val", "--")):
            values = [row.get(f"{split}/{metric}") for row in rows]
            if any(v is not None for v in values):
                axis.plot(epochs, values, style, marker="o", markersize=3, label=split)
        reference = (baseline or {}).get(f"baseline/val_{metric}")
        if reference is not None:
            axis.axhline(reference, color="grey", linestyle=":",
                         label=f"baseline (val): {baseline['baseline/name']}")  # fmt: skip
        axis.set(title=f"{label} per epoch", xlabel="epoch", ylabel=label)
        axis.legend()
        axis.grid(alpha=0.3)
    axes[2].plot(epochs, [row.get("lr") for row in rows], marker="o", markersize=3)
    axes[2].set(title="learning rate per epoch", xlabel="epoch", ylabel="learning rate")
    axes[2].grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def confusion_matrix(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path
) -> Path:
    """The test confusion matrix: counts, and normalized per true class (recall on the diagonal)."""
    import numpy as np

    plt = pyplot()
    counts = np.asarray(matrix, dtype=float)
    normalized = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    size = max(5.0, 0.55 * len(class_names) + 2)
    figure, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for axis, values, title, fmt in (
        (axes[0], counts, "test confusion matrix (counts)", "{:.0f}"),
        (axes[1], normalized, "normalized per true class", "{:.2f}"),
    ):
        image = axis.imshow(values, cmap="Blues")
        axis.set(title=title, xlabel="predicted class", ylabel="true class")
        ticks = range(len(class_names))
        axis.set_xticks(ticks, class_names, rotation=45, ha="right")
        axis.set_yticks(ticks, class_names)
        if len(class_names) <= 20:
            threshold = values.max() / 2
            for i in ticks:
                for j in ticks:
                    colour = "white" if values[i, j] > threshold else "black"
                    axis.text(
                        j,
                        i,
                        fmt.format(values[i, j]),
                        ha="center",
                        va="center",
                        color=colour,
                        fontsize=8,
                    )
        figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def binary_curves(curves: dict[str, Any], positive: str, directory: Path) -> list[Path]:
    """roc.png and precision_recall.png of a binary classifier on the test split."""
    plt = pyplot()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (x, y), labels, title in (
        ("roc.png", curves["roc"], ("false positive rate", "true positive rate"),
         f"ROC, positive class '{positive}' (AUC {curves['auroc']:.3f})"),
        ("precision_recall.png", curves["pr"], ("recall", "precision"),
         f"precision-recall, positive class '{positive}' (AP {curves['average_precision']:.3f})"),
    ):  # fmt: skip
        figure, axis = plt.subplots(figsize=(5, 4.5))
        axis.plot(x, y)
        if name == "roc.png":
            axis.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
        axis.set(xlabel=labels[0], ylabel=labels[1], title=title, xlim=(0, 1), ylim=(0, 1.02))
        figure.tight_layout()
        figure.savefig(directory / name, dpi=110)
        plt.close(figure)
        written.append(directory / name)
    return written


def regression(predicted: Sequence[float], true: Sequence[float], directory: Path) -> list[Path]:
    """predicted_vs_true.png and residuals.png of a regression on the test split."""
    import numpy as np

    plt = pyplot()
    directory.mkdir(parents=True, exist_ok=True)
    predicted, true = np.asarray(predicted, dtype=float), np.asarray(true, dtype=float)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    figure, axis = plt.subplots(figsize=(5, 4.5))
    axis.plot(true, predicted, "o", markersize=3, alpha=0.6)
    axis.plot([low, high], [low, high], "--", color="grey", linewidth=0.8)
    axis.set(xlabel="true", ylabel="predicted", title="test: predicted against true")
    figure.tight_layout()
    figure.savefig(directory / "predicted_vs_true.png", dpi=110)
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(5, 4.5))
    axis.plot(predicted, predicted - true, "o", markersize=3, alpha=0.6)
    axis.axhline(0, color="grey", linestyle="--", linewidth=0.8)
    axis.set(xlabel="predicted", ylabel="predicted - true", title="test residuals")
    figure.tight_layout()
    figure.savefig(directory / "residuals.png", dpi=110)
    plt.close(figure)
    return [directory / "predicted_vs_true.png", directory / "residuals.png"]
