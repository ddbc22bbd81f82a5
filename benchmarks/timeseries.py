"""dltrain on the time-series classification archive beside 1-NN DTW, on the archive's splits.

For each dataset, `dltrain fit data=timeseries data.path=<Name>_TRAIN.ts
data.test_path=<Name>_TEST.ts model=tcn` (shipped defaults, plus any extra overrides)
gives the test accuracy. Beside it: 1-NN DTW (full window; dependent DTW for
multivariate series) computed here on the same files for equal-length datasets, the
archive's published 1-NN DTW accuracy, and dltrain's own baseline (1-NN Euclidean,
`baseline/test_acc`).

The archive files: the aeon package bundles several; without installing it,

    pip download aeon==1.6.0 --no-deps -d /tmp/aeon
    unzip -j /tmp/aeon/aeon-*.whl 'aeon/datasets/data/*/*.ts' -d archive/
    python benchmarks/timeseries.py --data archive [--seeds 0 1 2] [overrides ...]
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

from dltrain.data.timeseries import read_ts

# 1-NN DTW test accuracy as published by the archives (UCR 2018: DTW with a full window;
# UEA 2018, Bagnall et al.: DTW_D for multivariate data).
PUBLISHED_DTW = {"GunPoint": 0.907, "ItalyPowerDemand": 0.950, "ArrowHead": 0.703,
                 "BasicMotions": 0.975, "JapaneseVowels": 0.949, "OSULeaf": 0.591,
                 "PickupGestureWiimoteZ": 0.660}  # fmt: skip
DATASETS = ["GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "JapaneseVowels"]


def dtw_matrix(queries: torch.Tensor, references: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """DTW distances [Q, R] between equal-length series [Q, T, F] and [R, T, F] (full window,
    squared Euclidean cost per step over all channels), one anti-diagonal at a time."""
    steps = queries.shape[1]
    out = []
    for part in queries.double().split(chunk):
        # cost[q, r, i, j] = ||part[q, i] - references[r, j]||^2
        diff = part[:, None, :, None, :] - references.double()[None, :, None, :, :]
        cost = diff.pow(2).sum(-1)
        # D is kept padded by one row and column of infinity; D[0, 0] = 0.
        table = torch.full(
            (*cost.shape[:2], steps + 1, steps + 1), float("inf"), dtype=torch.float64
        )
        table[..., 0, 0] = 0.0
        for k in range(2, 2 * steps + 1):  # cells with i + j = k (1-based)
            i = torch.arange(max(1, k - steps), min(steps, k - 1) + 1)
            j = k - i
            best = torch.minimum(torch.minimum(table[..., i - 1, j - 1], table[..., i - 1, j]),
                                 table[..., i, j - 1])  # fmt: skip
            table[..., i, j] = cost[..., i - 1, j - 1] + best
        out.append(table[..., steps, steps])
    return torch.cat(out)


def dtw_accuracy(train: Path, test: Path) -> float | None:
    """1-NN DTW test accuracy, or None for unequal-length series."""
    a, b = read_ts(train), read_ts(test)
    if len({len(s) for s in a.series + b.series}) > 1:
        return None
    x_train, x_test = torch.tensor(np.stack(a.series)), torch.tensor(np.stack(b.series))
    nearest = dtw_matrix(x_test, x_train).argmin(dim=1)
    predicted = [a.labels[i] for i in nearest.tolist()]
    return sum(p == t for p, t in zip(predicted, b.labels, strict=True)) / len(b.labels)


def dltrain_accuracy(train: Path, test: Path, seed: int, workdir: Path, extra: list[str]) -> dict:
    """(test accuracy, baseline test accuracy) of a default `dltrain fit` on the archive split."""
    run = workdir / f"{train.stem}_{seed}"
    command = [str(Path(sys.executable).parent / "dltrain"), "fit", "data=timeseries",
               f"data.path={train}", f"data.test_path={test}", "model=tcn", f"seed={seed}",
               f"hydra.run.dir={run}", *extra]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=workdir)
    return json.loads((run / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of <Name>_TRAIN.ts files")
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args, extra = parser.parse_known_args()
    print(f"{'dataset':<22} {'dltrain tcn (seeds)':>26} {'mean':>6} {'1-NN ED':>8}"
          f" {'DTW here':>9} {'DTW published':>14}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            train, test = args.data / f"{name}_TRAIN.ts", args.data / f"{name}_TEST.ts"
            runs = [dltrain_accuracy(train, test, seed, Path(tmp), extra) for seed in args.seeds]
            ours = [r["test/acc"] for r in runs]
            here = dtw_accuracy(train, test)
            print(f"{name:<22} {' / '.join(f'{v:.3f}' for v in ours):>26}"
                  f" {sum(ours) / len(ours):>6.3f} {runs[0]['baseline/test_acc']:>8.3f}"
                  f" {'-' if here is None else f'{here:.3f}':>9}"
                  f" {PUBLISHED_DTW.get(name, float('nan')):>14.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
