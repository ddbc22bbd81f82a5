"""A TPE search with and without pruning, same seed: best validation accuracy and total
time of each.

    python benchmarks/sweep_pruning.py [--trials 20] [--epochs 12] [--sweep asha] [--noise 2]

The task is chosen so that training, not start-up, fills a trial: the default CNN on
4000 generated 28x28 images with heavy noise (on the bundled 8x8 digits a trial's
epochs take a tenth of a second each, and pruning has little to save).

Target (issue 4): pruning reaches the same best (+-0.5 pt) in at most half the time.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = [
    "data=synthetic",
    "data.shape=[1,28,28]",
    "data.num_samples=4000",
    "data.noise=4",
    "model=cnn",
]


def sweep(
    workdir: Path, name: str, args: argparse.Namespace, pruner: list[str]
) -> tuple[float, float, int]:
    """(best val/acc, seconds, pruned trials) of one sweep."""
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "dltrain"), "fit", "-m", f"sweep={args.sweep}",
                    f"hydra.sweeper.n_trials={args.trials}", f"trainer.max_epochs={args.epochs}",
                    f"data.noise={args.noise}",
                    "regularization.early_stopping=null", f"hydra.sweep.dir={workdir / name}", *TASK, *pruner],
                   check=True, capture_output=True, cwd=workdir)  # fmt: skip
    seconds = time.perf_counter() - started
    with (workdir / name / "sweep_results.csv").open() as file:
        rows = list(csv.DictReader(file))
    best = max(float(row["value"]) for row in rows if row["status"] == "complete")
    return best, seconds, sum(row["status"] == "pruned" for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument(
        "--sweep", default="asha", help="a TPE sweep config: tpe (median), asha, hyperband"
    )
    parser.add_argument(
        "--noise", type=float, default=2.0, help="synthetic data noise: higher is harder"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        plain = sweep(workdir, "no_pruning", args, ["hydra.sweeper.pruner=null"])
        pruned = sweep(workdir, "pruning", args, [])
    for label, (best, seconds, count) in (("without pruning", plain), ("with pruning", pruned)):
        print(f"{label:<16} best val/acc {best:.4f}  total {seconds:6.1f} s  pruned trials {count}")
    print(
        f"sweep={args.sweep}, {args.trials} trials x {args.epochs} epochs, data.noise={args.noise}"
    )
    print(
        f"time ratio {pruned[1] / plain[1]:.2f} (target <= 0.5), best difference"
        f" {100 * (pruned[0] - plain[0]):+.2f} pt (target within +-0.5)"
    )


if __name__ == "__main__":
    main()
