"""A TPE search on digits with and without pruning, same seed: best validation accuracy
and total time of each, repeated over seeds with the arms alternating; the median time
ratio and the median best difference are printed.

    python benchmarks/sweep_pruning.py [--trials 30] [--sweep asha] [--seeds 0 1 2] [override ...]

Both sweeps run the same command, `dltrain fit -m sweep=<sweep>` with the default recipe
(CNN on the bundled digits, 30 epochs), one with `hydra.sweeper.pruner=null`. Extra
arguments are Hydra overrides given to both (e.g. `trainer.max_epochs=12`). The arm that
runs first alternates from seed to seed, so a machine that slows down over the run
favours neither.

Target (issue 4): pruning reaches the same best (+-0.5 pt) in at most half the time.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep(workdir: Path, name: str, args: argparse.Namespace, seed: int, extra: list[str]) -> dict:
    """Best val/acc, seconds, and trial counts of one sweep."""
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "dltrain"), "fit", "-m", f"sweep={args.sweep}",
                    f"hydra.sweeper.n_trials={args.trials}", f"seed={seed}",
                    f"hydra.sweep.dir={workdir / name}", *args.overrides, *extra],
                   check=True, capture_output=True, cwd=workdir)  # fmt: skip
    seconds = time.perf_counter() - started
    with (workdir / name / "sweep_results.csv").open() as file:
        rows = list(csv.DictReader(file))
    complete = [row for row in rows if row["status"] == "complete"]
    return {
        "best": max(float(row["value"]) for row in complete),
        "seconds": seconds,
        "complete": len(complete),
        "pruned": sum(row["status"] == "pruned" for row in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="the sweep configs' n_trials")
    parser.add_argument(
        "--sweep", default="asha", help="a TPE sweep config: asha, hyperband, tpe (median)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="one repeat per seed (the sampler's and the runs')")  # fmt: skip
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both sweeps")
    args = parser.parse_args()
    ratios, differences = [], []
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        for i, seed in enumerate(args.seeds):
            arms = [("no_pruning", ["hydra.sweeper.pruner=null"]), ("pruning", [])]
            results = {name: sweep(workdir, f"{name}_{seed}", args, seed, extra)
                       for name, extra in (arms if i % 2 == 0 else arms[::-1])}  # fmt: skip
            plain, pruned = results["no_pruning"], results["pruning"]
            ratios.append(pruned["seconds"] / plain["seconds"])
            differences.append(100 * (pruned["best"] - plain["best"]))
            for label, result in (("without pruning", plain), ("with pruning", pruned)):
                print(f"seed {seed} {label:<16} best val/acc {result['best']:.4f}"
                      f"  total {result['seconds']:6.1f} s  complete {result['complete']:2d}"
                      f"  pruned {result['pruned']:2d}")  # fmt: skip
    print(
        f"sweep={args.sweep}, {args.trials} trials, seeds {args.seeds} {' '.join(args.overrides)}"
    )
    print(f"time ratio: median {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f};"
          f" target <= 0.5); best difference: median {statistics.median(differences):+.2f} pt"
          f" (range {min(differences):+.2f} to {max(differences):+.2f}; target within +-0.5)")  # fmt: skip


if __name__ == "__main__":
    main()
