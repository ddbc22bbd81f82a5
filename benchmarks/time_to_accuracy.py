"""Time to accuracy on the bundled digits: training seconds and test accuracy per seed.

    python benchmarks/time_to_accuracy.py [--seeds 0 1 2] [--experiments default digits_fast]

Training seconds are the sum of the epochs' wall times in metrics.csv (training and
validation, without start-up or the final test). Targets (issue 6): the default fit
reaches test accuracy >= 0.98 within 30 s of training; digits_fast as fast as possible.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run(experiment: str, seed: int, workdir: Path) -> tuple[float, float, int]:
    """(training seconds, test accuracy, epochs) of one fit."""
    out = workdir / f"{experiment}_{seed}"
    args = [] if experiment == "default" else [f"experiment={experiment}"]
    subprocess.run([str(Path(sys.executable).parent / "dltrain"), "fit", *args, f"seed={seed}",
                    f"hydra.run.dir={out}"], check=True, capture_output=True, cwd=workdir)  # fmt: skip
    with (out / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    accuracy = json.loads((out / "metrics.json").read_text())["test/acc"]
    return sum(float(row["epoch_seconds"]) for row in rows), accuracy, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--experiments", nargs="+", default=["default", "digits_fast"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for experiment in args.experiments:
            for seed in args.seeds:
                seconds, accuracy, epochs = run(experiment, seed, Path(folder))
                verdict = "ok" if accuracy >= 0.98 else "below 0.98"
                print(f"{experiment:<12} seed {seed}: test/acc {accuracy:.4f} ({verdict}) after"
                      f" {seconds:.2f} s of training, {epochs} epochs")  # fmt: skip


if __name__ == "__main__":
    main()
