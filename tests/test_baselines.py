"""The classical baseline: the same model as scikit-learn's, fitted on the training split only,
reproducible, within its budget, skipped cleanly on large data."""

import numpy as np
import pytest
import torch
from sklearn import datasets
from sklearn.linear_model import LogisticRegression as SkLogistic
from sklearn.linear_model import Ridge

from dltrain.baselines import Budget, LogisticRegression, RidgeRegression, fit_baseline
from dltrain.data.base import InMemoryDataModule, Samples
from dltrain.data.digits import DigitsDataModule, DigitsSequenceDataModule


def standardized(x):
    x = torch.tensor(x, dtype=torch.float64)
    return (x - x.mean(0)) / x.std(0, unbiased=False).clamp_min(1e-6)


def test_logistic_regression_is_scikit_learns_model():
    x, y = datasets.load_wine(return_X_y=True)
    x = standardized(x)
    ours = LogisticRegression(num_classes=3)
    assert ours.fit(x, torch.tensor(y), Budget(30))
    theirs = SkLogistic(C=1.0, max_iter=5000, tol=1e-10).fit(x.numpy(), y)
    ours_p = ours.predict(x).softmax(1).numpy()
    assert np.abs(ours_p - theirs.predict_proba(x.numpy())).max() < 1e-3


def test_ridge_regression_is_scikit_learns_model():
    x, y = datasets.load_diabetes(return_X_y=True)
    x = standardized(x)
    ours = RidgeRegression()
    ours.fit(x, torch.tensor(y), Budget())
    theirs = Ridge(alpha=1.0).fit(x.numpy(), y)
    assert np.allclose(ours.weight.numpy(), theirs.coef_, rtol=1e-4)
    assert np.allclose(ours.predict(x).numpy(), theirs.predict(x.numpy()), rtol=1e-4)


class TwoClouds(InMemoryDataModule):
    """Two well-separated classes: any linear model gets them all right."""

    def load(self):
        generator = torch.Generator().manual_seed(0)
        y = torch.arange(2).repeat(200)
        x = torch.randn(400, 5, generator=generator) + 4 * y.unsqueeze(1).float()
        return Samples(x, y, ["a", "b"])


def ready(datamodule):
    datamodule.setup("fit")
    return datamodule


def test_the_baseline_is_fitted_on_the_training_split_only():
    data = ready(TwoClouds(batch_size=32))
    assert fit_baseline(data)["baseline/val_acc"] == 1.0
    # Train on flipped labels: a baseline fitted on the training split gets validation all
    # wrong; one that saw the validation labels would get it right.
    x, y = data.splits["train"]
    data.splits["train"] = (x, 1 - y)
    figures = fit_baseline(data)
    assert figures["baseline/val_acc"] == 0.0 and figures["baseline/test_acc"] == 0.0


def test_the_baseline_is_reproducible_and_named():
    data = ready(DigitsDataModule(batch_size=64, seed=0))
    first, second = fit_baseline(data), fit_baseline(data)
    for figures in (first, second):
        figures.pop("baseline/seconds")
    assert first == second and first["baseline/name"] == "logistic regression"
    assert 0.93 < first["baseline/test_acc"] <= 1.0
    other_seed = fit_baseline(ready(DigitsDataModule(batch_size=64, seed=1)))
    assert other_seed["baseline/test_acc"] != first["baseline/test_acc"]


def test_the_baseline_keeps_to_its_time_budget():
    data = ready(DigitsDataModule(batch_size=64))
    figures = fit_baseline(data, max_seconds=0.05)
    assert "stopped at baseline.max_seconds=0.05" in figures["baseline/name"]
    assert figures["baseline/seconds"] < 0.5
    sequences = ready(DigitsSequenceDataModule(batch_size=64))
    figures = fit_baseline(sequences)
    assert figures["baseline/name"].startswith("1-nearest-neighbour")
    assert figures["baseline/test_acc"] > 0.9
    assert "ran past" in fit_baseline(sequences, max_seconds=1e-9)["baseline/skipped"]


def test_the_baseline_is_skipped_on_large_data_and_can_be_turned_off():
    data = ready(DigitsDataModule(batch_size=64))
    figures = fit_baseline(data, max_values=1000)
    assert figures == {
        "baseline/skipped": "80,448 training input values exceed baseline.max_values (1,000)"
    }
    assert fit_baseline(data, kind="none") == {}


@pytest.mark.parametrize("kind", ["linear", "nearest_neighbour"])
def test_each_baseline_kind_serves_regression_too(kind):
    class Line(InMemoryDataModule):
        def load(self):
            x = torch.linspace(-1, 1, 300).unsqueeze(1)
            return Samples(x, 3 * x.squeeze(1) + 1, [])

    from dltrain.problems import Regression

    data = Line(batch_size=32)
    data.problem = Regression()
    figures = fit_baseline(ready(data), kind=kind)
    assert figures["baseline/test_r2"] > 0.99 and "baseline/test_rmse" in figures
