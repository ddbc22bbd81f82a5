"""The classical baseline every fit is measured against, fitted on the training split only.

Chosen by input and problem kind: a standardized linear model (multinomial logistic
regression with scikit-learn's default L2 penalty, C=1; ridge regression with alpha=1)
on tables and flattened small inputs, 1-nearest-neighbour (Euclidean) on sequences.
Written in a few lines of torch rather than scikit-learn so that start-up stays lean and
the time budget is honoured between iterations (scikit-learn cannot be interrupted). The
inputs are the model's own preprocessing of the raw data (training statistics), so the
baseline sees exactly what the net sees; its figures come from the problem's own metric
collection, computed like the net's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

KINDS = ("auto", "linear", "nearest_neighbour", "none")


@dataclass
class Budget:
    """When a baseline gives up: wall time (checked between iterations) and input size."""

    max_seconds: float = 5.0
    max_values: int = 50_000_000  # training inputs x features; beyond it the baseline is skipped

    def __post_init__(self) -> None:
        self.deadline = time.perf_counter() + self.max_seconds

    def spent(self) -> bool:
        return time.perf_counter() > self.deadline


class LogisticRegression:
    """Multinomial logistic regression, L2 penalty 1/(2C) on the weights (not the bias),
    full-batch L-BFGS in float64: scikit-learn's LogisticRegression(C=1) objective."""

    name = "logistic regression"

    def __init__(self, num_classes: int, c: float = 1.0) -> None:
        self.num_classes, self.c = num_classes, c

    def fit(self, x: Tensor, y: Tensor, budget: Budget) -> bool:
        """Fit; whether it converged before the budget ran out."""
        x = x.double()
        self.weight = torch.zeros(x.shape[1], self.num_classes, dtype=torch.float64,
                                  requires_grad=True)  # fmt: skip
        self.bias = torch.zeros(self.num_classes, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([self.weight, self.bias], lr=1, max_iter=20,
                                      history_size=10, line_search_fn="strong_wolfe",
                                      tolerance_grad=1e-7, tolerance_change=1e-12)  # fmt: skip
        # scikit-learn sums the loss over samples; the mean keeps the scale independent of N.
        penalty = 1.0 / (2 * self.c * len(y))

        def closure() -> Tensor:
            optimizer.zero_grad()
            logits = x @ self.weight + self.bias
            loss = torch.nn.functional.cross_entropy(logits, y) + penalty * (self.weight**2).sum()
            loss.backward()
            return loss

        previous = math.inf
        while not budget.spent():
            loss = float(optimizer.step(closure).detach())
            if previous - loss <= 1e-10 * max(1.0, abs(loss)):
                return True
            previous = loss
        return False

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Logits [N, classes]."""
        return (x.double() @ self.weight + self.bias).float()


class RidgeRegression:
    """Least squares with an L2 penalty alpha on the weights, in closed form (scikit-learn's
    Ridge(alpha=1): the intercept is not penalized)."""

    name = "ridge regression"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, x: Tensor, y: Tensor, budget: Budget) -> bool:
        x, y = x.double(), y.double()
        x_mean, y_mean = x.mean(0), y.mean()
        centred = x - x_mean
        gram = centred.T @ centred + self.alpha * torch.eye(x.shape[1], dtype=torch.float64)
        self.weight = torch.linalg.solve(gram, centred.T @ (y - y_mean))
        self.bias = y_mean - x_mean @ self.weight
        return True

    def predict(self, x: Tensor) -> Tensor:
        """Predicted numbers [N]."""
        return (x.double() @ self.weight + self.bias).float()


class NearestNeighbour:
    """1-nearest-neighbour by Euclidean distance over the whole (standardized) sequence."""

    name = "1-nearest-neighbour (euclidean)"

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes  # 0: the target is a number

    def fit(self, x: Tensor, y: Tensor, budget: Budget) -> bool:
        self.x, self.y, self.budget = x.float(), y, budget
        return True

    def predict(self, x: Tensor) -> Tensor:
        """The nearest training sample's target: one-hot logits for classes, else its number."""
        nearest = []
        for chunk in x.float().split(1024):
            if self.budget.spent():
                raise TimeoutError
            nearest.append(torch.cdist(chunk, self.x).argmin(dim=1))
        y = self.y[torch.cat(nearest)]
        if not self.num_classes:
            return y
        return torch.nn.functional.one_hot(y, self.num_classes).float()


def choose(kind: str, datamodule: Any) -> Any:
    """The baseline model for this data and problem (`baseline.kind`, auto: by input kind)."""
    if kind == "auto":
        kind = datamodule.baseline_kind
    if kind == "nearest_neighbour":
        return NearestNeighbour(datamodule.num_classes)  # no class names: a number's neighbour
    return datamodule.problem.linear_baseline(datamodule.num_classes)


def fit_baseline(datamodule: Any, kind: str = "auto", max_seconds: float = 5.0,
                 max_values: int = 50_000_000) -> dict[str, Any]:  # fmt: skip
    """The baseline's figures on validation and test (`baseline/val_acc`, ...), its name and
    seconds; or {"baseline/skipped": why} when the data does not suit it."""
    if kind == "none":
        return {}
    started = time.perf_counter()
    budget = Budget(max_seconds, int(max_values))
    x_train, y_train = datamodule.splits["train"]
    if not isinstance(x_train, Tensor):
        return {"baseline/skipped": "inputs are read from files as training needs them"}
    values = x_train[:1].numel() * len(x_train)
    if values > budget.max_values:
        return {
            "baseline/skipped": f"{values:,} training input values exceed baseline.max_values"
            f" ({budget.max_values:,})"
        }
    model = choose(kind, datamodule)
    features = datamodule.baseline_features
    try:
        converged = model.fit(features(x_train), y_train, budget)
        figures: dict[str, Any] = {"baseline/name": model.name + datamodule.baseline_inputs}
        for split in ("val", "test"):
            x, y = datamodule.splits[split]
            scores = datamodule.problem.scores(datamodule.num_classes)
            for metric in scores.values():
                # One process scores the whole split, also after DDP training: no syncing
                # (torchmetrics' `distributed_available_fn` argument, set after the fact).
                metric.distributed_available_fn = lambda: False
            scores.update(model.predict(features(x)), y)
            figures.update({f"baseline/{split}_{k}": float(v) for k, v in scores.compute().items()})
    except TimeoutError:
        return {"baseline/skipped": f"it ran past baseline.max_seconds ({max_seconds:g} s)"}
    figures["baseline/seconds"] = round(time.perf_counter() - started, 3)
    if not converged:
        figures["baseline/name"] += f" (stopped at baseline.max_seconds={max_seconds:g})"
    return figures


def summary(figures: dict[str, Any], headline: str) -> str:
    """One line for the data profile: the baseline's name and headline figures, or why not."""
    if "baseline/skipped" in figures:
        return f"skipped: {figures['baseline/skipped']}"
    return (
        f"{figures['baseline/name']}: val {headline} {figures[f'baseline/val_{headline}']:.4f},"
        f" test {headline} {figures[f'baseline/test_{headline}']:.4f}"
        f" ({figures['baseline/seconds']:.2f} s)"
    )
