"""The wheel ships the config tree, so an installed dltrain finds its configs anywhere."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_wheel_contains_every_builtin_config(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("dltrain-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = sorted((REPO / "configs").rglob("*.yaml"))
    assert configs
    for path in configs:
        assert f"dltrain/configs/{path.relative_to(REPO / 'configs').as_posix()}" in names, path
    assert "dltrain/configs/__init__.py" in names and "dltrain/cli.py" in names
    assert not any(Path(name).parts[0] == "tests" for name in names)
