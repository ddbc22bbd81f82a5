"""Hydra's sweep syntax mapped to optuna distributions."""

import warnings

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from dltrain.errors import ConfigError
from dltrain.sweep.optuna_search import search_space


def test_sweep_syntax_maps_to_optuna_distributions():
    space, _, fixed = search_space(
        {"optim": "choice(adam, sgd)", "optim.lr": "tag(log, interval(1e-4, 1e-1))"},
        ["data.batch_size=range(32, 129, 32)", "model.depth=int(interval(1, 4))", "seed=3",
         "optim=choice(adamw)", "regularization.dropout=interval(0, 0.5)"],
    )  # fmt: skip
    d = optuna.distributions
    assert space == {
        "optim": d.CategoricalDistribution(["adamw"]),  # the command line wins
        "optim.lr": d.FloatDistribution(1e-4, 1e-1, log=True),
        "data.batch_size": d.IntDistribution(32, 128, step=32),
        "model.depth": d.IntDistribution(1, 4),
        "regularization.dropout": d.FloatDistribution(0.0, 0.5),
    }
    assert fixed == ["seed=3"]


def test_list_choices_become_override_text_that_hydra_reads_back():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # optuna warns about lists it cannot store
        space, _, _ = search_space({"model.channels": "choice([16, 32], [32, 64, 128])"}, [])
    choices = space["model.channels"].choices
    assert choices == ("[16,32]", "[32,64,128]")
    parsed = OverridesParser.create().parse_override(f"model.channels={choices[1]}")
    assert parsed.value() == [32, 64, 128]


def test_a_plain_value_in_params_is_fixed_and_a_glob_is_refused():
    space, _, fixed = search_space({"optim.lr": "0.1"}, [])
    assert not space and fixed == ["optim.lr=0.1"]
    with pytest.raises(ConfigError, match="choice"):
        search_space({"optim": "glob(*)"}, [])
