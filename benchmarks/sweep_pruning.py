"""A TPE search on digits with and without pruning, same seed: best validation accuracy
and total time of each.

    python benchmarks/sweep_pruning.py [--trials 30] [--sweep asha] [--seed 0] [override ...]

Both sweeps run the same command, `dltrain fit -m sweep=<sweep>` with the default recipe
(CNN on the bundled digits, 30 epochs), one with `hydra.sweeper.pruner=null`. Extra
arguments are Hydra overrides given to both (e.g. `trainer.max_epochs=12`).

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


def sweep(workdir: Path, name: str, args: argparse.Namespace, extra: list[str]) -> dict:
    """Best val/acc, seconds, and trial counts of one sweep."""
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "dltrain"), "fit", "-m", f"sweep={args.sweep}",
                    f"hydra.sweeper.n_trials={args.trials}", f"seed={args.seed}",
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
    parser.add_argument("--seed", type=int, default=0, help="seeds the sampler and the runs")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both sweeps")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        plain = sweep(workdir, "no_pruning", args, ["hydra.sweeper.pruner=null"])
        pruned = sweep(workdir, "pruning", args, [])
    for label, result in (("without pruning", plain), ("with pruning", pruned)):
        print(
            f"{label:<16} best val/acc {result['best']:.4f}  total {result['seconds']:6.1f} s"
            f"  complete {result['complete']:2d}  pruned {result['pruned']:2d}"
        )
    print(f"sweep={args.sweep} seed={args.seed}, {args.trials} trials {' '.join(args.overrides)}")
    print(
        f"time ratio {pruned['seconds'] / plain['seconds']:.2f} (target <= 0.5), best difference"
        f" {100 * (pruned['best'] - plain['best']):+.2f} pt (target within +-0.5)"
    )


if __name__ == "__main__":
    main()
