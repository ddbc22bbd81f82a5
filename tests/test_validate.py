"""The validation rules and the check of composed configs."""

import pytest
import torch
from omegaconf import OmegaConf

from dltrain.config.validate import RULES, Rule, validate
from dltrain.errors import ConfigError
from tests.conftest import REPO


def test_rules_accept_and_reject_by_type_and_range():
    fraction = Rule(float, 0, 1, low_open=True, high_open=True)
    assert fraction.allows(0.5) and not fraction.allows(0) and not fraction.allows(1)
    assert not fraction.allows("0.5") and not fraction.allows(True) and not fraction.allows(None)
    count = Rule(int, 1)
    assert count.allows(1) and not count.allows(0) and not count.allows(1.0)
    widths = Rule(int, 1, is_list=True)
    assert widths.allows([8, 16]) and not widths.allows([]) and not widths.allows([8, 0])
    assert Rule(float, 0, low_open=True, nullable=True).allows(None)
    assert Rule(str, choices=("min", "max")).allows("max")
    assert not Rule(str, choices=("min", "max")).allows("up")


def test_rule_descriptions_read_as_english():
    assert RULES["data.val_fraction"].describe() == "a number in (0, 1)"
    assert RULES["data.batch_size"].describe() == "an integer >= 1 or 'auto'"
    assert RULES["model.channels"].describe() == "a non-empty list of integers, each >= 1"
    # MLPs take a list of widths, RNNs one width
    assert RULES["model.hidden"].allows(64) and RULES["model.hidden"].allows([64, 32])
    assert not RULES["model.hidden"].allows([]) and not RULES["model.hidden"].allows(0)
    assert RULES["regularization.gradient_clip_val"].describe() == "a number > 0, or null"


OPTIONS = sorted(
    f"{path.parent.name}={path.stem}"
    for path in (REPO / "configs").glob("*/*.yaml")
    if path.parent.name != "hydra"
)
NEEDS_A_VALUE = {
    "data=csv": "data.path",
    "data=image_folder": "data.path",
    "data=timeseries": "data.path",
    "data=text": "data.path",
    "experiment=timeseries_tcn": "data.path",
    "experiment=text_rnn": "data.path",
    "experiment=finetune_image_folder": "data.path",
    "model=custom": "model.net._target_",
}


@pytest.mark.parametrize("option", OPTIONS)
def test_every_builtin_option_composes_and_validates(compose_fit, option):
    cfg = compose_fit(option)
    if option == "trainer=gpu" and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="trainer.accelerator=gpu needs a CUDA GPU"):
            validate(cfg)
    elif option in NEEDS_A_VALUE:
        with pytest.raises(ConfigError, match=f"{NEEDS_A_VALUE[option]} needs a value"):
            validate(cfg)
    else:
        validate(cfg)


def test_interpolated_values_are_checked_after_resolution(compose_fit):
    cfg = compose_fit("regularization.dropout=1.5")
    with pytest.raises(ConfigError, match="model.dropout=1.5"):
        validate(cfg)


def test_rules_that_do_not_apply_are_skipped():
    validate(OmegaConf.create({"optim": {"lr": 0.1}}))  # no data, model... keys: nothing to check


@pytest.mark.parametrize(
    "option", [o for o in OPTIONS if o.startswith("sweep=") and o != "sweep=none"]
)
def test_every_sweep_config_builds_its_sampler_pruner_and_search_space(option):
    from hydra.utils import instantiate

    from dltrain.config.compose import compose_fit
    from dltrain.sweep.optuna_search import search_space

    sweeper = compose_fit([option], [], hydra_node=True).hydra.sweeper
    if not str(sweeper.sampler._target_).endswith("GridSampler"):
        instantiate(sweeper.sampler)
    if sweeper.pruner is not None:
        instantiate(sweeper.pruner)
    space, conditional, fixed = search_space(dict(sweeper.params), [])
    assert space and not fixed
    directions = sweeper.direction if OmegaConf.is_list(sweeper.direction) else [sweeper.direction]
    assert all(d in ("max", "min", "maximize", "minimize") for d in directions)
    if len(directions) > 1:  # several objectives: as many as monitor.metrics, no pruner
        cfg = compose_fit([option], [])
        assert len(cfg.monitor.metrics) == len(directions) and sweeper.pruner is None
        assert conditional  # sweep=pareto shows conditional parameters


def test_an_unknown_objective_is_refused_with_a_suggestion(compose_fit):
    cfg = compose_fit("monitor.metrics=[val/accc,cost/params]")
    with pytest.raises(ConfigError, match="Did you mean 'val/acc'"):
        validate(cfg)
    validate(compose_fit("monitor.metrics=[test/f1,cost/latency_ms,train/loss]"))
