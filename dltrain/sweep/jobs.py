"""What every dltrain sweeper does around its jobs: one sweep per directory, each job's
outcome in its trial.json, failures counted against hydra.sweeper.max_failure_rate."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dltrain.errors import ConfigError, DltrainError
from dltrain.sweep.report import STATUS_FILE, write_report
from dltrain.sweep.tracking import close_parent
from dltrain.trackers import mark_trial

LOCK_FILE = ".sweep.lock"


@contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """Hold the sweep directory for this process; a second sweep there exits 2.

    An advisory lock (flock) dies with its process: after a kill -9 the same command
    takes the directory again and continues the sweep.
    """
    sweep_dir.mkdir(parents=True, exist_ok=True)
    handle = (sweep_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "unknown"
        handle.close()
        raise ConfigError(
            f"a sweep is running in {sweep_dir}, pid {pid}: wait for it to end, or give this"
            " one another hydra.sweep.dir."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def job_folder(job: Any, sweep_dir: Path, number: int) -> Path:
    """The run directory a finished Hydra job wrote into."""
    if job.hydra_cfg:
        return Path(str(job.hydra_cfg.hydra.runtime.output_dir))
    return sweep_dir / str(number)


def record(folder: Path, status: dict[str, Any]) -> None:
    """Write a job's outcome (complete, pruned or failed, with its value or error)."""
    if folder.is_dir():
        (folder / STATUS_FILE).write_text(json.dumps(status, indent=2) + "\n")
        mark_trial(folder, status)


def failed(error: BaseException) -> dict[str, Any]:
    """The trial.json of a job that raised."""
    return {"status": "failed", "error": f"{type(error).__name__}: {error}"}


class FailureBudget:
    """Counts failed jobs; the sweep stops once more than max_failure_rate of them failed."""

    def __init__(self, planned: int, max_failure_rate: float) -> None:
        if not 0 <= max_failure_rate <= 1:
            raise ConfigError(
                f"hydra.sweeper.max_failure_rate={max_failure_rate}: give a fraction in [0, 1]."
            )
        self.planned, self.rate = planned, max_failure_rate
        self.failures = self.done = 0

    def count(self, status: dict[str, Any]) -> None:
        """Add one finished job."""
        self.done += 1
        self.failures += status["status"] == "failed"

    @property
    def exceeded(self) -> bool:
        """Whether more jobs failed than the sweep allows for its planned jobs."""
        return self.failures > self.rate * self.planned

    def finish(self, sweep_dir: Path) -> None:
        """After the last job: with failures, write the report and end with exit 1."""
        if not self.failures:
            return
        close_parent(sweep_dir, write_report(sweep_dir), failed=True)
        stopped = (
            " (the sweep stopped early: hydra.sweeper.max_failure_rate)" if self.exceeded else ""
        )
        raise DltrainError(
            f"{self.failures} of {self.done} trials failed{stopped}; their errors are in"
            f" {STATUS_FILE} of each trial's directory and in sweep_results.csv under {sweep_dir}."
        )
