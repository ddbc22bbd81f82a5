"""dltrain on scikit-learn's tables beside scikit-learn's models, on the same split.

For each table (breast cancer, wine, digits: classification; diabetes: regression), the
table is written to a CSV and `dltrain fit data=csv [model=<each --models>]` trains on it
with the shipped defaults (plus problem=regression for diabetes). scikit-learn's
standardized linear model (LogisticRegression; Ridge) and histogram gradient boosting are
fitted on exactly the training rows dltrain used (dltrain's own stratified split, same
seed) and scored on its test rows; dltrain's own baseline (`baseline/test_*` in
metrics.json) is shown too. Prints one row per table and seed, then the mean over seeds:
test accuracy (classification) or R² (regression).

    python benchmarks/tabular.py [--seeds 0 1 2] [--models default mlp] [--tables wine ...]
    [overrides ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn import datasets
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dltrain.data.base import stratified_split
from dltrain.problems import Classification, Regression

# name: (loader, problem, dltrain's figure, scikit-learn's models)
TABLES = {
    "breast_cancer": (datasets.load_breast_cancer, Classification(), "test/acc",
                      (LogisticRegression(max_iter=5000), HistGradientBoostingClassifier)),
    "wine": (datasets.load_wine, Classification(), "test/acc",
             (LogisticRegression(max_iter=5000), HistGradientBoostingClassifier)),
    "digits": (datasets.load_digits, Classification(), "test/acc",
               (LogisticRegression(max_iter=5000), HistGradientBoostingClassifier)),
    "diabetes": (datasets.load_diabetes, Regression(), "test/r2",
                 (Ridge(), HistGradientBoostingRegressor)),
}  # fmt: skip


def dltrain_figures(
    csv: Path, workdir: Path, problem: str, figure: str, model: str, seed: int, extra: list[str]
) -> tuple[float, float]:
    """(the net's test figure, dltrain's baseline's) of one default fit."""
    run = workdir / f"run_{csv.stem}_{model}_{seed}"
    command = [str(Path(sys.executable).parent / "dltrain"), "fit", f"problem={problem}", "data=csv",
               f"data.path={csv}", "data.label_column=target", f"seed={seed}",
               f"hydra.run.dir={run}", *extra]  # fmt: skip
    if model != "default":  # default: the net data=csv chooses (model=tabular)
        command.append(f"model={model}")
    subprocess.run(command, check=True, capture_output=True, cwd=workdir)
    metrics = json.loads((run / "metrics.json").read_text())
    return metrics[figure], metrics[figure.replace("test/", "baseline/test_")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["default", "mlp"])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    args, extra = parser.parse_known_args()
    columns = [*args.models, "baseline", "sk-linear", "hist-gb"]
    print(f"{'table':<14} {'seed':>4} {'rows':>5} {'figure':>8} "
          + " ".join(f"{c:>10}" for c in columns))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tables:
            loader, problem, figure, (linear, boosting) = TABLES[name]
            frame = loader(as_frame=True).frame
            csv = Path(tmp) / f"{name}.csv"
            frame.to_csv(csv, index=False)
            y = frame.pop("target").to_numpy()
            x = frame.to_numpy(dtype=np.float64)
            rows = []
            for seed in args.seeds:
                # dltrain's own split: stratified on the classes, or on quantile bins of a number
                split = stratified_split(problem.strata(torch.tensor(y)), 0.15, 0.15, seed)
                train, test = split["train"].numpy(), split["test"].numpy()
                ours = [dltrain_figures(csv, Path(tmp), problem.name, figure, model, seed, extra)
                        for model in args.models]  # fmt: skip
                theirs = [
                    model.fit(x[train], y[train]).score(x[test], y[test])
                    for model in (make_pipeline(StandardScaler(), linear),
                                  boosting(random_state=seed))
                ]  # fmt: skip
                rows.append([*(o[0] for o in ours), ours[0][1], *theirs])
                print(f"{name:<14} {seed:>4} {len(y):>5} {figure:>8} "
                      + " ".join(f"{v:>10.4f}" for v in rows[-1]))  # fmt: skip
            means = np.mean(rows, axis=0)
            print(f"{name:<14} {'mean':>4} {len(y):>5} {figure:>8} "
                  + " ".join(f"{v:>10.4f}" for v in means))  # fmt: skip


if __name__ == "__main__":
    main()
