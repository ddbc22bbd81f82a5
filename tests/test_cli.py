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


def test_compare_shows_the_settings_that_differ_and_the_figures(tmp_path):
    import json

    from tests.conftest import run_dltrain

    for name, lr, acc in (("a", 0.001, 0.9), ("b", 0.01, 0.95)):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "config.yaml").write_text(
            f"seed: 0\noptim:\n  lr: {lr}\n  fused: true\npaths:\n  run_dir: {name}\n"
        )
        (tmp_path / name / "metrics.json").write_text(json.dumps({"val/acc": acc, "test/acc": acc}))
    result = run_dltrain("compare", "a", "b", "--csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "key,a,b", "optim.lr,0.001,0.01", "val/acc,0.9000,0.9500", "test/acc,0.9000,0.9500"
    ]  # fmt: skip
    table = run_dltrain("compare", "a", "b", cwd=tmp_path)
    assert table.returncode == 0 and "optim.lr" in table.stdout and "seed" not in table.stdout
    one = run_dltrain("compare", "a", cwd=tmp_path)
    assert one.returncode == 2 and "two or more run directories" in one.stderr
    missing = run_dltrain("compare", "a", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "nope is not a run directory" in missing.stderr
