"""Shared helpers: run the real `dltrain` command in a subprocess, compose configs in-process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def dltrain_command() -> list[str]:
    """The installed console script beside this interpreter, as a user would run it."""
    script = Path(sys.executable).parent / "dltrain"
    if script.exists():
        return [str(script)]
    found = shutil.which("dltrain")
    return [found] if found else [sys.executable, "-m", "dltrain"]


def run_dltrain(*args: str, cwd: Path, timeout: float = 300, env: dict | None = None):
    """Run `dltrain *args` in `cwd`; one torch thread so parallel test workers never oversubscribe."""
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("DLTRAIN_DEBUG", "HYDRA_FULL_ERROR")
    }
    full_env = {**inherited, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [*dltrain_command(), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_dirs(root: Path) -> list[Path]:
    """Every run directory (one holding .hydra/) below `root`, sorted."""
    return sorted(p.parent for p in root.rglob(".hydra"))


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture
def dltrain(tmp_path):
    """Call as dltrain('fit', 'trainer=smoke'); runs in a fresh temporary directory."""

    def call(*args: str, **kwargs):
        return run_dltrain(*args, cwd=tmp_path, **kwargs)

    call.cwd = tmp_path
    return call


@pytest.fixture
def compose_fit():
    """Compose the fit config in-process with overrides, as Hydra would for `dltrain fit`."""
    from hydra import compose, initialize_config_module

    from dltrain.config.resolvers import register

    register()

    def compose_with(*overrides: str):
        with initialize_config_module("dltrain.configs", version_base="1.3"):
            return compose("fit", overrides=list(overrides))

    return compose_with
