"""dltrain on scikit-learn's tables beside scikit-learn's models, on the same split.

For each table (breast cancer, wine: classification; diabetes: regression), the table is
written to a CSV, `dltrain fit data=csv model=mlp` trains on it with the shipped defaults
(plus problem=regression for diabetes), and scikit-learn's standardized linear model
(LogisticRegression; Ridge) and histogram gradient boosting are fitted on exactly the
training rows dltrain used (dltrain's own stratified split, same seed) and scored on its
test rows. Prints one row per table: test accuracy (classification) or R² (regression).

    python benchmarks/tabular.py [--seed 0] [extra dltrain overrides ...]
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
    "diabetes": (datasets.load_diabetes, Regression(), "test/r2",
                 (Ridge(), HistGradientBoostingRegressor)),
}  # fmt: skip


def dltrain_figure(
    csv: Path, workdir: Path, problem: str, figure: str, seed: int, extra: list[str]
) -> float:
    run = workdir / f"run_{csv.stem}"
    command = [str(Path(sys.executable).parent / "dltrain"), "fit", f"problem={problem}", "data=csv",
               f"data.path={csv}", "data.label_column=target", "model=mlp", f"seed={seed}",
               f"hydra.run.dir={run}", *extra]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=workdir)
    return json.loads((run / "metrics.json").read_text())[figure]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args, extra = parser.parse_known_args()
    print(
        f"{'table':<15} {'rows':>5} {'figure':>8} {'dltrain mlp':>12} {'linear':>8} {'hist-gb':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, (loader, problem, figure, (linear, boosting)) in TABLES.items():
            frame = loader(as_frame=True).frame
            csv = Path(tmp) / f"{name}.csv"
            frame.to_csv(csv, index=False)
            y = frame.pop("target").to_numpy()
            x = frame.to_numpy(dtype=np.float64)
            # dltrain's own split: stratified on the classes, or on quantile bins of a number
            split = stratified_split(problem.strata(torch.tensor(y)), 0.15, 0.15, args.seed)
            train, test = split["train"].numpy(), split["test"].numpy()
            ours = dltrain_figure(csv, Path(tmp), problem.name, figure, args.seed, extra)
            theirs = [
                model.fit(x[train], y[train]).score(x[test], y[test])
                for model in (
                    make_pipeline(StandardScaler(), linear),
                    boosting(random_state=args.seed),
                )
            ]
            print(
                f"{name:<15} {len(y):>5} {figure:>8} {ours:>12.4f} {theirs[0]:>8.4f} {theirs[1]:>8.4f}"
            )


if __name__ == "__main__":
    main()
