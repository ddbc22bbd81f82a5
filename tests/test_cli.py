"""The command line: help, dispatch, exit codes for usage mistakes."""

import subprocess
import sys

from tests.conftest import REPO, run_dltrain


def test_help_lists_subcommands_and_exits_0(tmp_path):
    result = run_dltrain("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "fit" in result.stdout and "usage: dltrain" in result.stdout


def test_help_imports_neither_torch_nor_lightning_nor_hydra():
    code = (
        "import sys, contextlib, io\n"
        "from dltrain.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
        "heavy = [m for m in ('torch', 'lightning', 'hydra', 'omegaconf') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_python_dash_m_works_like_the_script(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dltrain", "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0 and "fit" in result.stdout


def test_unknown_command_suggests_the_closest_and_exits_2(tmp_path):
    result = run_dltrain("fitt", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown command 'fitt'" in result.stderr and "Did you mean 'fit'" in result.stderr


def test_fit_help_shows_groups_and_their_options(tmp_path):
    result = run_dltrain("fit", "--help", cwd=tmp_path)
    assert result.returncode == 0
    out = result.stdout
    for group in (
        "data",
        "model",
        "optim",
        "sched",
        "regularization",
        "augment",
        "trainer",
        "callbacks",
        "logger",
        "experiment",
        "sweep",
        "paths",
    ):
        assert f"\n{group}: " in out, group
    assert "model: cnn, custom, mlp, resnet, rnn" in out
    assert "optim: adam, adamw, rmsprop, sgd" in out
    assert not (tmp_path / "runs").exists()
