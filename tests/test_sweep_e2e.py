"""Sweeps through dltrain's optuna sweeper and Hydra's launchers, via the real command."""

import csv
import json
import os

import optuna
import pytest
import yaml


def trials(sweep, study):
    from dltrain.sweep.storage import default_storage, open_storage

    storage = open_storage(default_storage(sweep))  # the file the sweep made
    return optuna.load_study(study_name=study, storage=storage).trials


def statuses(sweep):
    with (sweep / "sweep_results.csv").open() as file:
        return [row["status"] for row in csv.DictReader(file)]


def test_random_search_resumes_its_study(dltrain):
    first = dltrain(
        "fit",
        "-m",
        "sweep=random",
        "hydra.sweeper.n_trials=3",
        "trainer=smoke",
        "hydra.sweep.dir=s",
    )
    assert first.returncode == 0, first.stderr[-3000:]
    sweep = dltrain.cwd / "s"
    before = {t.number: t.params for t in trials(sweep, "random")}
    again = dltrain(
        "fit",
        "-m",
        "sweep=random",
        "hydra.sweeper.n_trials=5",
        "trainer=smoke",
        "hydra.sweep.dir=s",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 trials done, running up to 2 more" in again.stdout
    after = trials(sweep, "random")
    assert (
        len(after) == 5 and {t.number: t.params for t in after[:3]} == before
    )  # first 3 not re-run
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0", "1", "2", "3", "4"]
    assert statuses(sweep) == ["complete"] * 5
    params = after[0].params
    assert {"optim", "optim.lr", "data.batch_size", "regularization.dropout"} <= set(params)


def test_a_trial_left_running_is_failed_only_in_the_sweeps_own_storage(dltrain):
    sweep = dltrain.cwd / "s"
    sweep.mkdir()
    url = f"sqlite:///{sweep / 'optuna.db'}"
    optuna.create_study(study_name="random", storage=url, direction="maximize").ask()  # killed
    run = ("fit", "-m", "sweep=random", "trainer=smoke", "hydra.sweep.dir=s")
    own = dltrain(*run, "hydra.sweeper.n_trials=2")
    assert own.returncode == 0, own.stderr[-3000:]
    assert [t.state.name for t in trials(sweep, "random")] == ["FAIL", "COMPLETE"]
    optuna.load_study(study_name="random", storage=url).ask()  # a live trial of another machine
    # n_trials counts the whole study, the other machine's running trial too
    shared = dltrain(*run, "hydra.sweeper.n_trials=4", f"hydra.sweeper.storage='{url}'")
    assert shared.returncode == 0, shared.stderr[-3000:]
    states = [t.state.name for t in trials(sweep, "random")]
    assert states == ["FAIL", "COMPLETE", "RUNNING", "COMPLETE"]


@pytest.mark.slow
def test_tpe_prunes_hopeless_trials(dltrain):
    result = dltrain("fit", "-m", "sweep=tpe", "hydra.sweeper.n_trials=8", "optim.lr=choice(1e-2,1e-7)",
                     "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner.n_warmup_steps=1",
                     "trainer.max_epochs=4", "trainer.limit_train_batches=10", "regularization=none",
                     "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    states = [t.state for t in trials(dltrain.cwd / "s", "tpe")]
    assert optuna.trial.TrialState.PRUNED in states
    assert "pruned" in statuses(dltrain.cwd / "s")
    assert all(t.intermediate_values for t in trials(dltrain.cwd / "s", "tpe"))


def test_cmaes_searches_the_continuous_space(dltrain):
    result = dltrain("fit", "-m", "sweep=cmaes", "hydra.sweeper.n_trials=3", "trainer=smoke",
                     "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    done = trials(dltrain.cwd / "s", "cmaes")
    assert [t.state for t in done] == [optuna.trial.TrialState.COMPLETE] * 3
    # After its one start-up trial, every trial comes from a CMA-ES generation.
    assert all(any(k.endswith("generation") for k in t.system_attrs) for t in done[1:])
    assert set(done[0].params) == {"optim.lr", "regularization.weight_decay",
                                   "regularization.dropout", "regularization.label_smoothing"}  # fmt: skip


def test_grid_through_optuna_visits_every_combination_once(dltrain):
    result = dltrain(
        "fit",
        "-m",
        "sweep=grid",
        "optim.lr=choice(1e-3,1e-2)",
        "trainer=smoke",
        "hydra.sweep.dir=s",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    combos = [tuple(sorted(t.params.items())) for t in trials(dltrain.cwd / "s", "grid")]
    assert len(combos) == 8 and len(set(combos)) == 8  # optim x lr x batch size: 2 x 2 x 2


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(dltrain):
    result = dltrain("fit", "-m", "sweep=random", "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=0.9",
                     "model=mlp", "model.net._target_=choice(dltrain.models.mlp.MLP,no.such.Net)",
                     "trainer=smoke", "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 1 and "trials failed" in result.stderr
    sweep = dltrain.cwd / "s"
    found = [t.state.name for t in trials(sweep, "random")]
    assert len(found) == 4 and "FAIL" in found and "COMPLETE" in found
    failed = [
        p for p in sweep.glob("*/trial.json") if json.loads(p.read_text())["status"] == "failed"
    ]
    assert failed and "no.such.Net" in failed[0].read_text()


THREADS_PROBE = """
import torch
from pathlib import Path
from lightning.pytorch.callbacks import Callback

class Threads(Callback):
    def __init__(self, path):
        self.path = Path(path)
    def on_train_start(self, trainer, pl_module):
        self.path.write_text(str(torch.get_num_threads()))
"""


def test_parallel_trials_share_the_cores(dltrain):
    """n_jobs trials at once get cores // n_jobs torch threads each, on any machine."""
    (dltrain.cwd / "threads_probe.py").write_text(THREADS_PROBE)
    result = dltrain("fit", "-m", "sweep=random", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2",
                     "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer=smoke", "hydra.sweep.dir=s",
                     "+callbacks.threads._target_=threads_probe.Threads",
                     "+callbacks.threads.path=${paths.run_dir}/threads.txt")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = dltrain.cwd / "s"
    assert statuses(sweep) == ["complete", "complete"]
    used = [int(p.read_text()) for p in sorted(sweep.glob("*/threads.txt"))]
    assert used == [max(1, (os.cpu_count() or 1) // 2)] * 2


def test_submitit_local_launcher_runs_a_grid(dltrain):
    result = dltrain("fit", "-m", "hydra/launcher=submitit_local", "trainer=smoke", "model=mlp,cnn",
                     "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert statuses(dltrain.cwd / "s") == ["complete", "complete"]


@pytest.mark.slow
def test_ddp_inside_a_multirun_runs_each_job_once(dltrain):
    result = dltrain("fit", "-m", "trainer=ddp", "model=mlp,cnn", "trainer.max_epochs=1",
                     "trainer.limit_train_batches=3", "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = dltrain.cwd / "s"
    jobs = sorted(p.name for p in sweep.iterdir() if p.name.isdigit())
    assert jobs == ["0", "1"]  # the extra ranks re-ran their own job, not the sweep
    assert statuses(sweep) == ["complete", "complete"]
    assert all((sweep / job / "train_ddp_process_1.log").is_file() for job in jobs)
    assert not (dltrain.cwd / "runs").exists()  # no run directory outside the sweep


@pytest.mark.slow
def test_a_pruned_ddp_trial_is_recorded_as_pruned(dltrain):
    # lr 1e-7 never gets near the threshold: each trial is pruned after its first epoch.
    result = dltrain("fit", "-m", "sweep=random", "hydra.sweeper.n_trials=2", "trainer=ddp", "model=mlp",
                     "optim=sgd", "optim.lr=1e-7", "data.batch_size=64", "trainer.max_epochs=3",
                     "trainer.limit_train_batches=3", "regularization.early_stopping=null",
                     "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:0.5}",
                     "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = dltrain.cwd / "s"
    assert [t.state for t in trials(sweep, "random")] == [optuna.trial.TrialState.PRUNED] * 2
    assert statuses(sweep) == ["pruned", "pruned"]
    for job in ("0", "1"):
        with (sweep / job / "metrics.csv").open() as file:
            assert len(list(csv.DictReader(file))) == 1  # stopped after the first epoch


@pytest.mark.parametrize("sweep", ["asha", "hyperband"])
def test_successive_halving_sweeps_prune_hopeless_trials(dltrain, sweep):
    result = dltrain("fit", "-m", f"sweep={sweep}", "hydra.sweeper.n_trials=6", "optim.lr=choice(1e-2,1e-7)",
                     "hydra.sweeper.sampler.n_startup_trials=6", "trainer.max_epochs=4",
                     "trainer.limit_train_batches=4", "regularization=none", "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    done = trials(dltrain.cwd / "s", sweep)
    assert len(done) == 6 and optuna.trial.TrialState.PRUNED in [t.state for t in done]
    assert all(t.intermediate_values for t in done)  # every epoch reported to the pruner
    assert "pruned" in statuses(dltrain.cwd / "s")


def test_gp_sampler_and_a_minimized_monitor(dltrain):
    """sweep=gp runs end to end; monitor.mode=min makes a MINIMIZE study whose best trial
    is the one with the lowest value."""
    result = dltrain("fit", "-m", "sweep=gp", "hydra.sweeper.n_trials=4", "trainer=smoke",
                     "monitor.metric=val/loss", "monitor.mode=min", "hydra.sweep.dir=s")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="gp", storage=default_storage_of(dltrain.cwd / "s"))
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    assert study.best_value == min(t.value for t in study.trials)
    with (dltrain.cwd / "s" / "sweep_results.csv").open() as file:
        rows = list(csv.DictReader(file))
    best = yaml.safe_load((dltrain.cwd / "s" / "best_config.yaml").read_text())
    lowest = min(rows, key=lambda r: float(r["value"]))
    [lr] = [o.split("=")[1] for o in lowest["overrides"].split() if o.startswith("optim.lr=")]
    assert best["optim"]["lr"] == pytest.approx(float(lr))  # the lowest trial's, not the highest


def default_storage_of(sweep):
    from dltrain.sweep.storage import default_storage, open_storage

    return open_storage(default_storage(sweep))
