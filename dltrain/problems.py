"""Problem kinds: what depends on the kind of target lives in one object per kind.

`problem=classification` (the default) or `problem=regression` picks one. The data asks
it how to encode a label column and how to stratify the splits; the LightningModule asks
it for the loss, the output head, the metrics and the end-of-test report; fit, predict,
the diagnosis and the sweep report ask it for what they show. Nothing else branches on
the kind of target.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltrain.errors import ConfigError, DataError

if TYPE_CHECKING:  # torch loads only when a run builds something: `dltrain config` stays fast
    from torch import Tensor, nn

# A numeric label column with more distinct non-integer values than this looks continuous.
CONTINUOUS_DISTINCT = 20
# Regression targets are split in this many quantile bins, so every split spans the range.
REGRESSION_STRATA = 10
REGRESSION_LOSSES = ("mse", "huber", "l1")  # dltrain.heads.LOSSES


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


def _numbers(values: list[Any]) -> list[float] | None:
    """The values as floats, or None when one of them is not a number."""
    try:
        return [float(value) for value in values]
    except (TypeError, ValueError):
        return None


def _looks_continuous(values: list[Any]) -> bool:
    numbers = _numbers(values) or []
    fractional = {v for v in numbers if math.isfinite(v) and not float(v).is_integer()}
    return len(fractional) > CONTINUOUS_DISTINCT


FAST = {"validate_args": False}  # our own outputs: no per-update argument checks


class Classification:
    """One class per sample: labels become class ids in a sorted order of their names."""

    name = "classification"
    has_classes = True
    logged_metrics = ("val/acc", "val/f1", "val/precision", "val/recall", "val/loss",
                      "train/acc", "train/loss")  # fmt: skip
    report_columns = ("test/acc", "test/f1", "baseline/test_acc")
    # The learning-curve panels: (metric, label) for the loss and one score.
    curves = (("loss", "cross-entropy loss"), ("acc", "accuracy"))
    # The figure (higher is better) that compares the net with its baseline.
    headline = "acc"

    def bounded(self, figures: dict[str, Tensor]) -> dict[str, Tensor]:
        """The figures within their range, [0, 1]: float32 rounding gives an F1 of 1.0000001."""
        return {name: value.clamp(0.0, 1.0) for name, value in figures.items()}

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
        import torch

        ids = {name: i for i, name in enumerate(names)}
        return torch.tensor([ids[t] for t in texts], dtype=torch.long), names

    @staticmethod
    def check_config(cfg: Any) -> None:
        """Config rules of this kind, checked before any data is loaded."""
        name = _get(cfg, "loss.name")
        if name not in (None, "cross_entropy"):
            raise ConfigError(
                f"loss.name={name} is a regression loss: classification uses cross_entropy"
                " (or set problem=regression)."
            )

    def check_source(self, class_names: list[str], source: str) -> None:
        """Every source yields classes; nothing to check."""

    def strata(self, y: Tensor) -> Tensor:
        """What splits are stratified on: the classes themselves."""
        return y

    def align_targets(self, other: Any, class_names: list[str], source: str) -> Tensor:
        """Another file's labels (data.test_path) as the training data's class ids, by name."""
        import torch

        unknown = sorted(set(other.class_names) - set(class_names))
        if unknown:
            raise DataError(
                f"{source} has classes the training data lacks: {', '.join(unknown[:5])}"
                f" (training classes: {', '.join(class_names)})."
            )
        ids = torch.tensor([class_names.index(name) for name in other.class_names])
        return ids[other.y]

    def check_splits(self, targets: dict[str, Tensor], class_names: list[str]) -> None:
        """Every split holds every class, or its figures mean little."""
        for name, y in targets.items():
            missing = sorted(set(range(len(class_names))) - set(y.unique().tolist()))
            if missing:
                names = ", ".join(class_names[i] for i in missing)
                raise DataError(
                    f"the {name} split has no samples of class {names}: use more data,"
                    " or larger data.val_fraction / data.test_fraction."
                )

    def target_profile(self, targets: dict[str, Tensor], class_names: list[str]) -> dict:
        """The data profile's view of the targets: class counts per split, the imbalance."""
        import torch

        counts = {
            split: dict(zip(class_names, torch.bincount(y, minlength=len(class_names)).tolist(),
                            strict=True))
            for split, y in targets.items()
        }  # fmt: skip
        train = list(counts["train"].values())
        return {
            "class_counts": counts,
            "imbalance_ratio": (max(train) / min(train)) if min(train) else float("inf"),
            "targets_title": "class counts (smallest .. largest)",
            "targets_shown": {
                s: f"{min(c.values())} .. {max(c.values())}" for s, c in counts.items()
            },
        }

    def outputs(self, num_classes: int) -> int:
        """The net's output width: one logit per class."""
        return num_classes

    def linear_baseline(self, num_classes: int) -> Any:
        """The classical linear model for classes: multinomial logistic regression."""
        from dltrain.baselines import LogisticRegression

        return LogisticRegression(num_classes)

    def target_shift(self, y_train: Tensor, y_test: Tensor, class_names: list[str]) -> dict:
        """How the test split's targets differ from training's: classes whose share moved."""
        from dltrain.drift import shifted_classes

        return {"shifted_classes": shifted_classes(y_train, y_test, class_names)}

    def head(self, y_train: Tensor | None = None) -> nn.Module:
        """What turns the net's outputs into the model's outputs: the logits as they are."""
        from torch import nn

        return nn.Identity()

    def criterion(
        self, head: nn.Module, loss: dict, class_weights: Tensor | None, label_smoothing: float
    ) -> nn.Module:
        """Cross-entropy, with class weights and label smoothing."""
        from torch import nn

        return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)

    def chance_loss(self, num_classes: int) -> float:
        """The loss of guessing: ln(classes), the diagnosis's unit for loss changes."""
        return math.log(max(2, num_classes))

    # Training figures are sums on the device (no torchmetrics update), tallied over groups
    # of batches and divided by the sample count once an epoch: `train_tally` gives the
    # sums for some batches' outputs, `train_figures` names their means.
    train_figures = ("acc",)

    def train_tally(self, outputs: Tensor, y: Tensor) -> Tensor:
        """Training batches' sums: correct predictions."""
        return (outputs.argmax(-1) == y).sum().unsqueeze(0)

    def scores(self, num_classes: int) -> Any:
        """Validation and test metrics: accuracy, macro precision, recall and F1."""
        return _class_scores(num_classes)

    def test_extras(self, num_classes: int) -> nn.ModuleDict:
        """Test-only metrics: per class, the confusion matrix, and for two classes ROC/PR."""
        from torch import nn
        from torchmetrics import MetricCollection
        from torchmetrics.classification import (
            BinaryAUROC,
            BinaryAveragePrecision,
            BinaryPrecisionRecallCurve,
            BinaryROC,
            MulticlassConfusionMatrix,
        )

        extras = {
            "per_class": _class_scores(num_classes, average="none"),
            "confusion": MulticlassConfusionMatrix(num_classes, **FAST),
        }
        if num_classes == 2:
            # Threshold-free figures of the positive (second) class's score.
            extras["binary"] = MetricCollection(
                {"auroc": BinaryAUROC(**FAST), "average_precision": BinaryAveragePrecision(**FAST)},
                prefix="test/",
            )
            extras["curves"] = MetricCollection(
                {"roc": BinaryROC(**FAST), "pr": BinaryPrecisionRecallCurve(**FAST)}
            )
        return nn.ModuleDict(extras)

    def update_extras(self, extras: nn.ModuleDict, outputs: Tensor, y: Tensor) -> None:
        extras["per_class"].update(outputs, y)
        extras["confusion"].update(outputs, y)
        if "binary" in extras:
            positive = outputs.softmax(dim=1)[:, 1]
            extras["binary"].update(positive, y)
            extras["curves"].update(positive, y)

    def compute_extras(self, extras: nn.ModuleDict) -> tuple[dict, dict]:
        """(figures to log, the test report) from the test-only metrics; resets them."""
        figures: dict[str, Any] = {}
        report: dict[str, Any] = {
            "confusion_matrix": extras["confusion"].compute().tolist(),
            "per_class": {
                k: v.tolist() for k, v in self.bounded(extras["per_class"].compute()).items()
            },
        }
        if "binary" in extras:
            figures = self.bounded(extras["binary"].compute())
            fpr, tpr, _ = extras["curves"]["roc"].compute()
            precision, recall, _ = extras["curves"]["pr"].compute()
            report["curves"] = {
                "roc": (fpr.tolist(), tpr.tolist()),
                "pr": (recall.tolist(), precision.tolist()),
                **{k.removeprefix("test/"): float(v) for k, v in figures.items()},
            }
        for metric in extras.values():
            metric.reset()
        return figures, report

    def metrics_json(self, metrics: dict, report: dict, class_names: list[str]) -> dict:
        """metrics.json: the flat figures, the confusion matrix and per-class figures."""
        confusion = report["confusion_matrix"]
        per_class = {
            name: {
                "precision": report["per_class"]["precision"][i],
                "recall": report["per_class"]["recall"][i],
                "f1": report["per_class"]["f1"][i],
                "support": int(sum(confusion[i])),
            }
            for i, name in enumerate(class_names)
        }
        return {**metrics, "test/confusion_matrix": confusion, "test/per_class": per_class,
                "class_names": class_names}  # fmt: skip

    def plots(self, report: dict, class_names: list[str], directory: Path) -> None:
        """The confusion matrix, and the ROC and precision-recall curves of binary problems."""
        from dltrain import plots

        plots.confusion_matrix(
            report["confusion_matrix"], class_names, directory / "confusion_matrix.png"
        )
        if "curves" in report:
            plots.binary_curves(report["curves"], class_names[1], directory)

    def predictions(self, outputs: Tensor, class_names: list[str]) -> tuple[list[str], list[list]]:
        """predictions.csv columns: the predicted class and one probability per class."""
        probabilities = outputs.softmax(dim=1)
        rows = [
            [class_names[int(p.argmax())], *[f"{v:.6f}" for v in p.tolist()]] for p in probabilities
        ]
        return ["predicted", *[f"p_{name}" for name in class_names]], rows


class Regression:
    """A continuous target: standardized with training statistics, predicted in its own unit."""

    name = "regression"
    has_classes = False
    logged_metrics = ("val/rmse", "val/mae", "val/r2", "val/loss", "train/loss", "train/mae")
    report_columns = ("test/rmse", "test/r2", "baseline/test_r2")
    curves = (("loss", "loss on the standardized target"), ("mae", "mean absolute error"))
    headline = "r2"

    def bounded(self, figures: dict[str, Tensor]) -> dict[str, Tensor]:
        """The figures within their range: R² at most 1, errors at least 0 (float32 rounding)."""
        return {name: value.clamp(max=1.0) if name.endswith("r2") else value.clamp(min=0.0)
                for name, value in figures.items()}  # fmt: skip

    def __init__(self, loss: str = "mse") -> None:
        self.loss = loss

    def encode_targets(
        self, values: list[Any], column: str, source: Any
    ) -> tuple[Tensor, list[str]]:
        """(float32 targets, no class names) of a label column of numbers."""
        numbers = _numbers(values)
        if numbers is None:
            text = next(v for v in values if _numbers([v]) is None)
            raise DataError(
                f"the label column '{column}' of {source} holds '{text}', not a number:"
                " problem=regression predicts numbers; for classes use problem=classification."
            )
        if not all(map(math.isfinite, numbers)):
            raise DataError(f"the label column '{column}' of {source} holds an infinite value.")
        import torch

        return torch.tensor(numbers, dtype=torch.float32), []

    @staticmethod
    def check_config(cfg: Any) -> None:
        """Config rules of this kind, checked before any data is loaded."""
        name = _get(cfg, "loss.name")
        if name not in REGRESSION_LOSSES:
            raise ConfigError(
                f"loss.name={name} is not allowed with problem=regression: use one of"
                f" {', '.join(REGRESSION_LOSSES)}."
            )
        for key, neutral in (("loss.class_weights", None), ("data.sampler", "none"),
                             ("data.imbalance", None)):  # fmt: skip
            value = _get(cfg, key)
            if value not in (neutral, None):
                raise ConfigError(
                    f"{key}={value} is for classes: remove it with problem=regression."
                )

    def check_source(self, class_names: list[str], source: str) -> None:
        """Sources that only yield classes (images, digits) cannot be regressed on."""
        if class_names:
            raise ConfigError(
                f"problem=regression needs a continuous target, but {source} yields classes:"
                " use data=csv with a numeric label column."
            )

    def align_targets(self, other: Any, class_names: list[str], source: str) -> Tensor:
        """Another file's targets (data.test_path): numbers as they are."""
        return other.y

    def check_splits(self, targets: dict[str, Tensor], class_names: list[str]) -> None:
        """Any split of numbers will do: nothing to check."""

    def target_profile(self, targets: dict[str, Tensor], class_names: list[str]) -> dict:
        """The data profile's view of the targets: mean, std and range per split."""
        stats = {
            split: {"mean": float(y.mean()), "std": float(y.std()) if len(y) > 1 else 0.0,
                    "min": float(y.min()), "max": float(y.max())}
            for split, y in targets.items()
        }  # fmt: skip
        return {
            "targets": stats,
            "imbalance_ratio": 1.0,
            "targets_title": "target mean ± std (min .. max)",
            "targets_shown": {
                s: f"{v['mean']:.4g} ± {v['std']:.3g} ({v['min']:.4g} .. {v['max']:.4g})"
                for s, v in stats.items()
            },
        }

    def strata(self, y: Tensor) -> Tensor:
        """Quantile bins of the target, so every split covers its whole range."""
        import torch

        bins = min(REGRESSION_STRATA, max(1, len(y) // 10))
        edges = torch.quantile(
            y.double(), torch.linspace(0, 1, bins + 1, dtype=torch.float64)[1:-1]
        )
        return torch.bucketize(y.double(), edges)

    def outputs(self, num_classes: int) -> int:
        """The net's output width: one number."""
        return 1

    def linear_baseline(self, num_classes: int) -> Any:
        """The classical linear model for numbers: ridge regression."""
        from dltrain.baselines import RidgeRegression

        return RidgeRegression()

    def target_shift(self, y_train: Tensor, y_test: Tensor, class_names: list[str]) -> dict:
        """How the test split's targets differ from training's: a KS test of the numbers."""
        from dltrain.drift import shifted_features

        return {"shifted_features": shifted_features({"target": y_train}, {"target": y_test})}

    def head(self, y_train: Tensor | None = None) -> nn.Module:
        """The target's training mean and std (placeholders when a checkpoint fills them)."""
        from dltrain.heads import TargetScale

        if y_train is None:
            return TargetScale()
        return TargetScale(y_train.mean(), y_train.std().clamp_min(1e-8))

    def criterion(
        self, head: nn.Module, loss: dict, class_weights: Tensor | None, label_smoothing: float
    ) -> nn.Module:
        """MSE, Huber or L1 on standardized targets (loss.name)."""
        # Label smoothing (in the regularization bundles) has no meaning for numbers: unused.
        from dltrain.heads import StandardizedLoss

        return StandardizedLoss(self.loss, head)

    def chance_loss(self, num_classes: int) -> float:
        """The loss of predicting the mean, on standardized targets."""
        return 1.0

    train_figures = ("mae",)

    def train_tally(self, outputs: Tensor, y: Tensor) -> Tensor:
        """Training batches' sums: absolute errors."""
        return (outputs - y).abs().sum().unsqueeze(0)

    def scores(self, num_classes: int) -> Any:
        """Validation and test metrics in the target's unit: MAE, RMSE, R²."""
        from torchmetrics import MetricCollection
        from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

        return MetricCollection({"mae": MeanAbsoluteError(),
                                 "rmse": MeanSquaredError(squared=False), "r2": R2Score()})  # fmt: skip

    def test_extras(self, num_classes: int) -> nn.ModuleDict:
        """The test predictions and targets, for the plots."""
        from torch import nn
        from torchmetrics.aggregation import CatMetric

        return nn.ModuleDict({"predicted": CatMetric(), "true": CatMetric()})

    def update_extras(self, extras: nn.ModuleDict, outputs: Tensor, y: Tensor) -> None:
        extras["predicted"].update(outputs)
        extras["true"].update(y)

    def compute_extras(self, extras: nn.ModuleDict) -> tuple[dict, dict]:
        report = {name: metric.compute().flatten().tolist() for name, metric in extras.items()}
        for metric in extras.values():
            metric.reset()
        return {}, report

    def metrics_json(self, metrics: dict, report: dict, class_names: list[str]) -> dict:
        """metrics.json: the flat figures (no classes)."""
        return dict(metrics)

    def plots(self, report: dict, class_names: list[str], directory: Path) -> None:
        """Predicted against true, and the residuals, on the test split."""
        from dltrain import plots

        plots.regression(report["predicted"], report["true"], directory)

    def predictions(self, outputs: Tensor, class_names: list[str]) -> tuple[list[str], list[list]]:
        """predictions.csv columns: the predicted number, in the target's unit."""
        return ["predicted"], [[f"{v:.6g}"] for v in outputs.flatten().tolist()]


def _class_scores(num_classes: int, average: str = "macro") -> Any:
    """Precision, recall and F1 (macro by default), plus accuracy when averaged."""
    from torchmetrics import MetricCollection
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassF1Score,
        MulticlassPrecision,
        MulticlassRecall,
    )

    metrics = {
        "precision": MulticlassPrecision(num_classes, average=average, **FAST),
        "recall": MulticlassRecall(num_classes, average=average, **FAST),
        "f1": MulticlassF1Score(num_classes, average=average, **FAST),
    }
    if average != "none":
        metrics["acc"] = MulticlassAccuracy(num_classes, average="micro", **FAST)
    return MetricCollection(metrics)


def _get(cfg: Any, key: str) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key, default=None)


KINDS = {"dltrain.problems.Classification": Classification,
         "dltrain.problems.Regression": Regression}  # fmt: skip


def problem_class(cfg: Any) -> type[Classification] | type[Regression]:
    """The problem kind a config names, without building anything (config checks)."""
    target = _get(cfg, "problem._target_")
    if target is None:
        return Classification
    if target not in KINDS:
        raise ConfigError(
            f"problem._target_={target}: use problem=classification or problem=regression."
        )
    return KINDS[target]


def build_problem(cfg: Any) -> Classification | Regression:
    """The run's problem object (`problem` config group); classification when absent."""
    node = cfg.get("problem") if cfg is not None else None
    if node is None:
        return Classification()
    problem_class(cfg)  # only dltrain's own kinds
    from hydra.utils import instantiate

    return instantiate(node)
