"""Random overrides from the real config tree, wrong ones included: every outcome is a
working config or a config error (exit 2) with a message; never anything else."""

import os

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dltrain.config.compose import compose_fit
from dltrain.config.validate import validate
from dltrain.errors import ConfigError, describe
from tests.conftest import REPO

GROUPS = {p.name: sorted(f.stem for f in p.glob("*.yaml")) for p in (REPO / "configs").iterdir()
          if p.is_dir() and p.name not in ("hydra", "sweep", "experiment")}  # fmt: skip
KEYS = [
    "seed", "optim.lr", "optim.weight_decay", "optim.momentum", "data.batch_size", "data.val_fraction",
    "data.test_fraction", "data.sampler", "model.hidden", "model.channels", "model.dropout",
    "model.kernel_size", "model.cell", "model.layers", "sched.interval", "sched.warmup",
    "regularization.l1", "regularization.label_smoothing", "regularization.early_stopping.patience",
    "trainer.max_epochs", "augment.rotation", "augment.hflip", "monitor.mode", "loss.class_weights",
    "speed.threads", "optim.lrr", "modle.hidden", "data.batchsize", "nonsense",
]  # fmt: skip
VALUES = st.sampled_from([
    "0", "1", "-1", "0.5", "1.5", "1e-3", "-3e-2", "1000000", "abc", "null", "true", "[]", "[1,2]",
    "[0]", "[64,32]", "auto", "balanced", "max", "gru", "step", "weighted", "''",
])  # fmt: skip
OVERRIDE = st.one_of(
    st.builds(lambda g, o: f"{g}={o}", st.sampled_from(sorted(GROUPS)),
              st.one_of(st.sampled_from([o for opts in GROUPS.values() for o in opts]), st.just("nope"))),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), VALUES),
)  # fmt: skip


def build_everything(cfg):
    from dltrain.problems import build_problem
    from dltrain.tasks.build import build_data_net, build_datamodule, build_module, build_trainer

    datamodule = build_datamodule(cfg.data, build_problem(cfg))  # data.batch_size=auto too
    module = build_module(cfg, datamodule, build_data_net(cfg.model, datamodule))
    build_trainer(cfg)
    return module


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 200)), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(OVERRIDE, min_size=1, max_size=3))
def test_random_overrides_are_a_working_config_or_exit_2(tmp_path, overrides):
    try:
        cfg = compose_fit([*overrides, f"paths.run_dir={tmp_path}"], [])
        validate(cfg)
        build_everything(cfg)
    except Exception as error:  # noqa: BLE001 - classifying every outcome is the test
        code, message = describe(error)
        assert code == 2, f"{overrides}: exit {code}: {type(error).__name__}: {error}"
        assert message and "Traceback" not in message


@pytest.mark.parametrize("overrides", [["optim.lrr=0.1"], ["model=nope"], ["data.batch_size=0"]])
def test_known_mistakes_are_config_errors(tmp_path, overrides):
    with pytest.raises((ConfigError, ConfigCompositionException, MissingConfigException)) as error:
        cfg = compose_fit([*overrides, f"paths.run_dir={tmp_path}"], [])
        validate(cfg)
    assert describe(error.value)[0] == 2


def test_a_bug_inside_dltrain_is_a_runtime_failure_and_a_bad_target_a_config_error(
    tmp_path, monkeypatch
):
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    # A real fault inside dltrain's CNN constructor: its pooling table lost an entry.
    monkeypatch.setattr("dltrain.models.cnn.POOLS", {})
    with pytest.raises(InstantiationException) as bug:
        instantiate(
            {"_target_": "dltrain.models.cnn.CNN", "input_shape": [1, 8, 8], "num_classes": 3}
        )
    code, message = describe(bug.value)
    assert code == 1 and "KeyError" in message
    for node in ({"_target_": "dltrain.models.nope.Net"},
                 {"_target_": "torch.optim.SGD", "params": [], "lrr": 0.1}):  # fmt: skip
        with pytest.raises(InstantiationException) as mistake:
            instantiate(node)
        assert describe(mistake.value)[0] == 2, node
