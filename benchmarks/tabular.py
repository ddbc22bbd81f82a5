"""dltrain on scikit-learn's tables beside scikit-learn's models, on the same split.

For each table (breast cancer, wine: classification), the table is written to a CSV,
`dltrain fit data=csv model=mlp` trains on it with the shipped defaults, and scikit-learn's
LogisticRegression (standardized) and HistGradientBoostingClassifier are fitted on exactly
the training rows dltrain used (dltrain's own stratified split, same seed) and scored on
its test rows. Prints one row per table: test accuracy of each.

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
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dltrain.data.base import stratified_split

TABLES = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine}


def dltrain_test_acc(csv: Path, workdir: Path, seed: int, extra: list[str]) -> float:
    run = workdir / f"run_{csv.stem}"
    command = [str(Path(sys.executable).parent / "dltrain"), "fit", "data=csv", f"data.path={csv}",
               "data.label_column=target", "model=mlp", f"seed={seed}", f"hydra.run.dir={run}", *extra]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=workdir)
    return json.loads((run / "metrics.json").read_text())["test/acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args, extra = parser.parse_known_args()
    print(f"{'table':<15} {'rows':>5} {'dltrain mlp':>12} {'logistic':>9} {'hist-gb':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, loader in TABLES.items():
            frame = loader(as_frame=True).frame
            csv = Path(tmp) / f"{name}.csv"
            frame.to_csv(csv, index=False)
            y = frame.pop("target").to_numpy()
            x = frame.to_numpy(dtype=np.float64)
            split = stratified_split(torch.tensor(y), 0.15, 0.15, args.seed)
            train, test = split["train"].numpy(), split["test"].numpy()
            ours = dltrain_test_acc(csv, Path(tmp), args.seed, extra)
            figures = []
            for model in (make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                          HistGradientBoostingClassifier(random_state=args.seed)):  # fmt: skip
                figures.append(model.fit(x[train], y[train]).score(x[test], y[test]))
            print(f"{name:<15} {len(y):>5} {ours:>12.4f} {figures[0]:>9.4f} {figures[1]:>8.4f}")


if __name__ == "__main__":
    main()
