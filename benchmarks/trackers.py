"""What an experiment tracker costs a fit, timed from outside, in the same run.

    python benchmarks/trackers.py [--loggers mlflow tensorboard] [--rounds 3]

For each logger (and `logger=none`), `dltrain fit` trains the overhead benchmark's MLP
(784-512-256-10, 50k synthetic samples, batch 128) for 5 epochs and for 1 epoch; the
difference / 4 is the cost of one epoch with everything a tracker does per epoch
(training and validation figures, lr, epoch time), without the one-off start-up
(imports; the store is created by an untimed first fit). Rounds alternate the loggers (and their order); the median ratio of each
to `logger=none` is printed. Target (issue 20): mlflow <= 1.05.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from overhead import COMMON, MODELS


def fit_seconds(logger: str, epochs: int, workdir: Path) -> float:
    """Wall time of one `dltrain fit`, start to exit."""
    command = [str(Path(sys.executable).parent / "dltrain"), "fit", *COMMON, *MODELS["mlp"],
               f"logger={logger}", f"trainer.max_epochs={epochs}", "callbacks.progress_bar=null",
               "trainer.enable_progress_bar=false", f"hydra.run.dir={workdir / f'{logger}_{epochs}'}",
               "regularization.early_stopping=null"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=workdir,
                   env={**os.environ, "WANDB_MODE": "offline"})  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loggers", nargs="+", default=["mlflow"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {name: [] for name in args.loggers}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for logger in args.loggers:  # the store's one-off creation (./mlflow.db) is not timed
            fit_seconds(logger, 1, workdir)
        for round_ in range(args.rounds):
            per_epoch = {}
            order = ["none", *args.loggers]
            # Alternate the order: a machine that drifts during a round favours no one.
            for logger in order if round_ % 2 == 0 else order[::-1]:
                one = fit_seconds(logger, 1, workdir)
                per_epoch[logger] = (fit_seconds(logger, 5, workdir) - one) / 4
            for name in args.loggers:
                ratios[name].append(per_epoch[name] / per_epoch["none"])
            shown = ", ".join(f"{k} {v:.3f} s" for k, v in per_epoch.items())
            print(f"round {round_}: seconds per epoch: {shown}")
    for name, values in ratios.items():
        print(f"logger={name} / logger=none per epoch: median {statistics.median(values):.3f}"
              f" ({', '.join(f'{v:.3f}' for v in values)})")  # fmt: skip


if __name__ == "__main__":
    main()
