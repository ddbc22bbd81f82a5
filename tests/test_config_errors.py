"""Config mistakes: exit 2, one short message naming the problem and the fix, nothing created."""

import pytest

from dltrain.errors import ConfigError, describe


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["optim.lrr=0.1"], ["unknown key 'optim.lrr'", "Did you mean 'optim.lr'"]),
        (["modl=cnn"], ["unknown key 'modl'", "Did you mean 'model'"]),
        (
            ["model=cnnn"],
            ["unknown option 'cnnn' for model", "Did you mean 'cnn'", "cnn, custom, mlp"],
        ),
        (["optim.lr=-1"], ["optim.lr=-1", "a number > 0"]),
        (["optim.lr=abc"], ["optim.lr=abc", "a number > 0"]),
        (["data.batch_size=0"], ["data.batch_size=0", "an integer >= 1"]),
        (["data.val_fraction=1.5"], ["data.val_fraction=1.5", "a number in (0, 1)"]),
        (["data.val_fraction=0.5", "data.test_fraction=0.6"], ["leaves no training data"]),
        (["seed=-3"], ["seed=-3", "an integer >= 0"]),
        (["model.channels=[]"], ["model.channels", "non-empty list"]),
        (["monitor.mode=up"], ["monitor.mode=up", "one of min, max"]),
        (["optim.lr=[1"], ["could not parse an override"]),
        (["model.net._target_=no_such_pkg.Net"], ["no_such_pkg.Net"]),
    ],
)
def test_config_error_exits_2_with_a_short_message(dltrain, overrides, expected):
    result = dltrain("fit", *overrides)
    assert result.returncode == 2, result.stderr
    for text in expected:
        assert text in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) <= 3
    if not overrides[0].startswith("model.net"):
        # Rejected before Hydra made a run directory (and so before any data was loaded).
        assert not (dltrain.cwd / "runs").exists()


def test_debug_variable_shows_the_full_traceback(dltrain):
    result = dltrain("fit", "optim.lrr=0.1", env={"DLTRAIN_DEBUG": "1"})
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_runtime_failures_map_to_exit_1_with_a_hint():
    code, message = describe(RuntimeError("boom"))
    assert code == 1 and "boom" in message and "DLTRAIN_DEBUG=1" in message
    assert describe(ConfigError("bad"))[0] == 2


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0: give a whole number >= 1"),
        (["hydra.sweeper.direction=up"], "hydra.sweeper.direction=up: use maximize or minimize"),
        (["hydra.sweeper.sampler._target_=optuna.samplers.Nope"], "optuna.samplers.Nope"),
    ],
)
def test_sweep_config_error_exits_2_before_any_trial(dltrain, overrides, expected):
    result = dltrain("fit", "-m", "sweep=tpe", *overrides, "hydra.sweep.dir=s")
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert "Warning" not in result.stderr  # no report of an empty sweep
    assert not list((dltrain.cwd / "s").glob("*/.hydra"))  # no trial ran
