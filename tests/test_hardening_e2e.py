"""Hardening: checkpoints are data, secrets stay unwritten, grid and optuna sweeps survive
failing, concurrent, killed and parallel trials, a real PostgreSQL study shared by two
sweep processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from dltrain.sweep.storage import default_storage, mask, open_storage
from tests.conftest import dltrain_command, run_dltrain
from tests.postgres import PASSWORD, postgres_url  # noqa: F401 - a fixture

GRID = ("fit", "-m", "trainer.max_epochs=1", "model=mlp", "optim=sgd")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One finished smoke run shared by the checkpoint tests: (working dir, run dir)."""
    cwd = tmp_path_factory.mktemp("hardening")
    result = run_dltrain("fit", "trainer=smoke", "model=mlp", "hydra.run.dir=run", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    np.save(cwd / "x.npy", np.zeros((2, 1, 8, 8), dtype=np.float32))
    return cwd, cwd / "run"


class Payload:
    """A pickle that runs code when loaded: it creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_checkpoint(run: Path, marker: Path) -> Path:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["callbacks"]["payload"] = Payload(marker)
    path = run.parent / "evil.ckpt"
    torch.save(checkpoint, path)
    return path


COMMANDS = {
    "test": ("test", "run=run"),
    "predict": ("predict", "run=run", "input=x.npy"),
    "export": ("export", "run=run"),
    "resume": ("fit", "resume=run", "trainer.max_epochs=2"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_checkpoint_that_runs_code_is_refused_by_every_command(fitted, command):
    cwd, run = fitted
    marker = cwd / f"pwned-{command}"
    evil = malicious_checkpoint(run, marker)
    env = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # must not switch the safe loader off
    result = run_dltrain(*COMMANDS[command], f"ckpt_path={evil}", cwd=cwd, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert not marker.exists()
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and str(evil) in message[0] and "posix.system" in message[0]
    assert "never loads code" in message[0]


def test_truncated_and_remote_checkpoints_exit_2_naming_the_file(fitted):
    cwd, run = fitted
    truncated = cwd / "truncated.ckpt"
    truncated.write_bytes((run / "checkpoints" / "best.ckpt").read_bytes()[:2000])
    result = run_dltrain("test", "run=run", f"ckpt_path={truncated}", cwd=cwd)
    assert result.returncode == 2 and str(truncated) in result.stderr and "corrupt" in result.stderr
    resume = run_dltrain("fit", "resume=run", f"ckpt_path={truncated}", cwd=cwd)
    assert resume.returncode == 2 and "Resume from another one: ckpt_path=" in resume.stderr
    remote = run_dltrain(
        "predict", "run=run", "input=x.npy", "ckpt_path=https://example.org/m.ckpt", cwd=cwd
    )
    assert remote.returncode == 2 and "local files only" in remote.stderr


def test_a_grid_from_the_shell_survives_a_diverging_job(dltrain):
    result = dltrain(*GRID, "optim.lr=1e9,0.01", "hydra.sweep.dir=s")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "1 of 2 trials failed" in result.stderr
    rows = (dltrain.cwd / "s" / "sweep_results.csv").read_text().splitlines()
    assert rows[1].split(",")[1] == "failed" and rows[2].split(",")[1] == "complete"
    assert "DivergenceError" in (dltrain.cwd / "s" / "0" / "trial.json").read_text()


def test_the_grid_stops_past_its_failure_budget(dltrain):
    result = dltrain(*GRID, "optim.lr=1e9,1e10,0.01",
                     "hydra.sweeper.max_failure_rate=0.3", "hydra.sweeper.max_batch_size=1", "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 1 and "stopped early" in result.stderr
    assert not (dltrain.cwd / "s" / "2").exists()  # 2 of 3 failed > 0.3 x 3: the third never ran


def start(cwd: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DLTRAIN_DEBUG", None)
    return subprocess.Popen([*dltrain_command(), *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def study_trials(sweep: Path, name: str = "random") -> list:
    return optuna.load_study(study_name=name, storage=open_storage(default_storage(sweep))).trials


SLOW_SWEEP = ("fit", "-m", "sweep=random", "model=mlp", "trainer.max_epochs=4",
              "hydra.sweeper.pruner=null", "hydra.sweep.dir=s")  # fmt: skip


def test_a_second_sweep_on_a_running_sweeps_directory_exits_2(dltrain):
    # CNN trials of 30 epochs: the first sweep is still running when the second starts.
    first = start(dltrain.cwd, "fit", "-m", "sweep=random", "model=cnn", "trainer.max_epochs=30",
                  "regularization.early_stopping=null", "hydra.sweeper.pruner=null",
                  "hydra.sweep.dir=s", "hydra.sweeper.n_trials=2")  # fmt: skip
    wait_for(dltrain.cwd / "s" / "0" / ".hydra", first)
    second = dltrain(*SLOW_SWEEP, "hydra.sweeper.n_trials=2")
    assert second.returncode == 2
    assert f"a sweep is running in s, pid {first.pid}" in second.stderr
    assert first.wait(timeout=300) == 0, first.communicate()[1][-2000:]
    assert [t.state.name for t in study_trials(dltrain.cwd / "s")] == ["COMPLETE"] * 2


def test_a_killed_sweep_continues_with_the_same_command(dltrain):
    first = start(dltrain.cwd, *SLOW_SWEEP, "hydra.sweeper.n_trials=3")
    wait_for(dltrain.cwd / "s" / "1" / ".hydra", first)  # the second trial is running
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    again = dltrain(*SLOW_SWEEP, "hydra.sweeper.n_trials=3")
    assert again.returncode == 0, again.stderr[-2000:]
    states = [t.state.name for t in study_trials(dltrain.cwd / "s")]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]  # the killed trial is failed and counted


@pytest.mark.slow
def test_parallel_trials_with_pruning_keep_every_intermediate_value(dltrain):
    result = dltrain("fit", "-m", "sweep=tpe", "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2",
                     "hydra.launcher.n_jobs=2", "hydra.sweeper.n_trials=4", "model=mlp",
                     "trainer.max_epochs=3", "trainer.limit_train_batches=4",
                     "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.pruner.n_warmup_steps=0",
                     "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = dltrain.cwd / "s"
    assert (sweep / "optuna.journal").is_file()  # optuna's storage for several processes
    trials = study_trials(sweep, "tpe")
    assert len(trials) == 4
    for trial in trials:
        history = sweep / str(trial.number) / "metrics.csv"  # absent when pruned in epoch 0
        epochs = len(history.read_text().splitlines()) - 1 if history.is_file() else 1
        assert set(range(epochs)) <= set(trial.intermediate_values), trial.number


def test_storage_urls_are_masked():
    assert mask("postgresql://dl:pw@host:5432/db") == "postgresql://dl:***@host:5432/db"
    assert mask("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:***@h/db"
    assert mask("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_a_database_without_its_driver_exits_2_naming_the_package(dltrain):
    url = "postgresql+pg8000://dl:topsecret@127.0.0.1:1/optuna"
    result = dltrain("fit", "-m", "sweep=random", "trainer=smoke", f"hydra.sweeper.storage='{url}'")
    assert result.returncode == 2 and "pip install pg8000" in result.stderr
    assert "topsecret" not in result.stderr + result.stdout


@pytest.mark.slow
def test_two_machines_share_one_postgres_study_and_write_no_secret(tmp_path, postgres_url):  # noqa: F811
    sweep = ("fit", "-m", "sweep=random", "trainer=smoke", "model=mlp", "hydra.sweeper.n_trials=5",
             "hydra.sweeper.study_name=shared", f"hydra.sweeper.storage='{postgres_url}'")  # fmt: skip
    machines = [start(tmp_path, *sweep, f"hydra.sweep.dir={name}") for name in ("a", "b")]
    outputs = [machine.communicate(timeout=400) for machine in machines]
    for machine, (out, err) in zip(machines, outputs, strict=True):
        assert machine.returncode == 0, err[-3000:]
        assert PASSWORD not in out + err and "dl:***@" in out
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5  # exactly n_trials, together
    assert sorted(t.number for t in study.trials) == list(range(5))
    written = [
        p for p in tmp_path.rglob("*") if p.is_file() and "pg" not in p.relative_to(tmp_path).parts
    ]
    assert any(p.name == "hydra.yaml" for p in written)
    assert not [p for p in written if PASSWORD.encode() in p.read_bytes()]


def bad_files(cwd: Path) -> dict[str, Path]:
    """Missing, empty, wrong-format files and a folder where a file belongs."""
    files = {"missing": cwd / "nope.ckpt", "empty": cwd / "empty.ckpt", "text": cwd / "text.ckpt",
             "folder": cwd / "folder.ckpt"}  # fmt: skip
    files["empty"].write_bytes(b"")
    files["text"].write_text("not a checkpoint\n")
    files["folder"].mkdir(exist_ok=True)
    return files


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "folder"])
@pytest.mark.parametrize("key", ["run", "ckpt_path", "input"])
def test_commands_that_take_files_refuse_bad_ones_with_exit_2(fitted, key, kind):
    cwd, _ = fitted
    path = bad_files(cwd)[kind]
    if key == "input":
        path = path.rename(path.with_suffix(".npy")) if path.exists() else path.with_suffix(".npy")
    args = {"run": "run=run", "ckpt_path": None, "input": "input=x.npy", key: f"{key}={path}"}
    result = run_dltrain("predict", *(a for a in args.values() if a), cwd=cwd)
    if path.suffix == ".npy" and path.exists():
        path.rename(path.with_suffix(".ckpt"))  # leave the shared folder as it was
    assert result.returncode == 2, (key, kind, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("dltrain: error:")
        and "Traceback" not in result.stderr
    )


def shared_run(cwd: Path, run: Path, marker: Path) -> Path:
    """A copy of a finished run whose saved config and overrides name code to run."""
    import shutil

    import yaml
    from omegaconf import OmegaConf

    copy = cwd / f"shared-{marker.name}"
    shutil.copytree(run, copy)
    config = OmegaConf.load(copy / ".hydra" / "config.yaml")
    # open(marker, "w") writes where the run directory says (Hydra's own blocklist allows
    # it); Hydra instantiates nested _target_ nodes first, so it runs whatever the outer is.
    payload = {"_target_": "builtins.open", "_args_": [str(marker), "w"]}
    config.data = {"_target_": "builtins.dict", "batch_size": 8, "payload": payload}
    config.model.net = {"_target_": "builtins.dict", "payload": payload}
    OmegaConf.save(config, copy / ".hydra" / "config.yaml")
    overrides = yaml.safe_load((copy / ".hydra" / "overrides.yaml").read_text()) or []
    overrides += [
        "+data.payload._target_=builtins.open",
        f"+data.payload._args_=[{marker},w]",
        "+hydra.callbacks.evil._target_=builtins.open",
    ]
    (copy / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return copy


@pytest.mark.parametrize("command", ["test", "predict", "export", "resume"])
def test_a_run_directory_that_names_code_is_refused(fitted, command):
    cwd, run = fitted
    marker = cwd / f"ran-{command}"
    copy = shared_run(cwd, run, marker)
    args = {"test": ("test", f"run={copy}"), "predict": ("predict", f"run={copy}", "input=x.npy"),
            "export": ("export", f"run={copy}"), "resume": ("fit", f"resume={copy}")}[command]  # fmt: skip
    result = run_dltrain(*args, cwd=cwd)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "never runs code named by a run directory" in result.stderr
    assert not marker.exists()
