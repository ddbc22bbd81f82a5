"""Start-up times of the dltrain command, measured from outside as a user waits for them.

    python benchmarks/startup.py [--repeat 3]

- `dltrain --help`                     target < 0.3 s
- `dltrain config`                     target < 1.5 s
- `dltrain fit trainer=smoke`, from the command to the first training step: target < 3 s
  (a callback, importable from the working directory, notes the wall-clock time of the
  first batch; the command is started with that clock's time in the environment).
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

FIRST_STEP = """
import os, time
from lightning.pytorch.callbacks import Callback

class FirstStep(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0 and trainer.current_epoch == 0:
            started = float(os.environ["STARTUP_T0"])
            with open("first_step.txt", "w") as file:
                file.write(str(time.time() - started))
"""


def dltrain(*args: str, cwd: Path, env: dict | None = None) -> float:
    """Wall time of one dltrain command."""
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "dltrain"), *args], cwd=cwd, env=env,
                   check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def first_step_seconds(cwd: Path) -> float:
    """Seconds from starting `dltrain fit` to its first training batch."""
    (cwd / "first_step_timer.py").write_text(FIRST_STEP)
    env = {**os.environ, "STARTUP_T0": repr(time.time())}
    dltrain("fit", "trainer=smoke", "+callbacks.first_step._target_=first_step_timer.FirstStep",
            cwd=cwd, env=env)  # fmt: skip
    return float((cwd / "first_step.txt").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        rows = [
            ("dltrain --help", [dltrain("--help", cwd=cwd) for _ in range(args.repeat)], 0.3),
            ("dltrain config", [dltrain("config", cwd=cwd) for _ in range(args.repeat)], 1.5),
            (
                "fit: command -> first step",
                [first_step_seconds(cwd) for _ in range(args.repeat)],
                3.0,
            ),
        ]
    for name, times, target in rows:
        median = statistics.median(times)
        verdict = "ok" if median < target else "ABOVE TARGET"
        print(
            f"{name:<28} median {median:.2f} s over {len(times)} (target < {target} s: {verdict})"
        )


if __name__ == "__main__":
    main()
