"""Checks a composed config before anything is created or loaded: types, ranges, choices.

The rules are keyed by the dotted path users type (`optim.lr`); a rule whose key is
absent from the config (say `optim.momentum` with Adam) does not apply. Unknown keys
never get this far: Hydra's struct mode rejects them during composition.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dltrain.errors import CarriedError, ConfigError, did_you_mean


@dataclass(frozen=True)
class Rule:
    """The type and allowed values of one config key."""

    kind: type  # int, float, bool or str; float also accepts integers
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the value must be > low (else >= low)
    high_open: bool = False  # True: the value must be < high (else <= high)
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    is_list: bool = False  # a list whose every element follows the rule

    def describe(self) -> str:
        """The allowed values in words, e.g. 'a number in (0, 1)'."""
        kinds = {int: "integer", float: "number", bool: "boolean", str: "string"}
        if self.choices:
            bound = (
                f"'{self.choices[0]}'"
                if len(self.choices) == 1
                else "one of " + ", ".join(self.choices)
            )
        elif self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            bound = f"in {left}{self.low:g}, {self.high:g}{right}"
        elif self.low is not None:
            bound = f"{'>' if self.low_open else '>='} {self.low:g}"
        elif self.high is not None:
            bound = f"{'<' if self.high_open else '<='} {self.high:g}"
        else:
            bound = ""
        if self.is_list:
            text = f"a non-empty list of {kinds[self.kind]}s" + (f", each {bound}" if bound else "")
        elif self.choices:
            text = bound
        else:
            article = "an" if kinds[self.kind][0] in "aeiou" else "a"
            text = f"{article} {kinds[self.kind]}" + (f" {bound}" if bound else "")
        return text + (", or null" if self.nullable else "")

    def allows(self, value: Any) -> bool:
        """Whether `value` satisfies the rule."""
        if value is None:
            return self.nullable
        if self.is_list:
            return isinstance(value, list) and len(value) > 0 and all(map(self._allows_one, value))
        return self._allows_one(value)

    def _allows_one(self, value: Any) -> bool:
        if isinstance(value, bool) and self.kind is not bool:
            return False
        if self.kind is float:
            if not isinstance(value, (int, float)):
                return False
        elif not isinstance(value, self.kind):
            return False
        if self.choices is not None and value not in self.choices:
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or not (
            value >= self.high if self.high_open else value > self.high
        )


@dataclass(frozen=True)
class AnyOf:
    """A key that takes one of several forms (model.hidden: an int for RNNs, a list for MLPs)."""

    rules: tuple[Rule, ...]

    def describe(self) -> str:
        return " or ".join(rule.describe() for rule in self.rules)

    def allows(self, value: Any) -> bool:
        return any(rule.allows(value) for rule in self.rules)


_FRACTION = Rule(float, 0, 1, low_open=True, high_open=True)
_PROBABILITY = Rule(float, 0, 1, high_open=True)
_POSITIVE = Rule(float, 0, low_open=True)
_NON_NEGATIVE = Rule(float, 0)
_COUNT = Rule(int, 1)

RULES: dict[str, Rule | AnyOf] = {
    "seed": Rule(int, 0),
    "monitor.metric": Rule(str),
    "monitor.mode": Rule(str, choices=("min", "max")),
    "data.batch_size": AnyOf((_COUNT, Rule(str, choices=("auto",)))),
    "data.val_fraction": _FRACTION,
    "data.test_fraction": _FRACTION,
    "data.num_workers": Rule(int, 0),
    "data.sampler": Rule(str, choices=("none", "weighted")),
    "data.download": Rule(bool),
    "data.hflip": Rule(float, 0, 1),
    "data.imbalance.classes": Rule(int, 0, is_list=True),
    "data.imbalance.keep": Rule(float, 0, 1, low_open=True),
    "data.num_samples": _COUNT,
    "data.num_classes": Rule(int, 2),
    "data.shape": Rule(int, 1, is_list=True),
    "data.noise": _NON_NEGATIVE,
    "data.label_column": Rule(str),
    "data.min_batches_per_epoch": _COUNT,
    "data.on_device": AnyOf((Rule(bool), Rule(str, choices=("auto",)))),
    "data.device_memory_share": Rule(float, 0, 1, low_open=True),
    "speed.compile": Rule(bool),
    "speed.compile_mode": Rule(
        str, choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
    ),
    "baseline.kind": Rule(str, choices=("auto", "linear", "nearest_neighbour", "none")),
    "baseline.max_seconds": _POSITIVE,
    "baseline.max_values": _COUNT,
    "diagnosis.baseline_gap": _NON_NEGATIVE,
    "diagnosis.min_steps": Rule(int, 0),
    "loss.name": Rule(str, choices=("cross_entropy", "mse", "huber", "l1")),
    "model.hidden": AnyOf((Rule(int, 1), Rule(int, 1, is_list=True))),
    "model.channels": Rule(int, 1, is_list=True),
    "model.kernel_size": _COUNT,
    "model.dropout": _PROBABILITY,
    "model.batchnorm": Rule(bool),
    "model.activation": Rule(str, choices=("relu", "gelu", "silu", "tanh")),
    "model.pool": Rule(str, choices=("max", "avg")),
    "model.cell": Rule(str, choices=("lstm", "gru")),
    "model.layers": _COUNT,
    "model.bidirectional": Rule(bool),
    "model.linear_skip": Rule(bool),
    "model.embedding_dim": _COUNT,
    "model.depth": Rule(int, 8),
    "model.width": _COUNT,
    "model.name": Rule(str),
    "model.pretrained": Rule(bool),
    "model.weights": Rule(str, nullable=True),
    "model.image_size": AnyOf((Rule(int, 1, nullable=True), Rule(int, 1, is_list=True))),
    "model.normalization": Rule(str, choices=("auto", "pretrained", "data")),
    "model.drop_rate": _PROBABILITY,
    "model.drop_path_rate": Rule(float, 0, 1, high_open=True, nullable=True),
    "model.freeze_epochs": Rule(int, 0),
    "model.backbone_lr_scale": _POSITIVE,
    "regularization.ema": Rule(float, 0, 1, low_open=True, high_open=True, nullable=True),
    "regularization.swa": Rule(float, 0, 1, high_open=True, nullable=True),
    "tta": Rule(str, choices=("none", "flip")),
    "augment.rotation": Rule(float, 0, 180),
    "augment.translate": Rule(float, 0, 1, high_open=True),
    "augment.scale": Rule(float, 0, low_open=True, is_list=True, nullable=True),
    "augment.hflip": Rule(float, 0, 1),
    "augment.vflip": Rule(float, 0, 1),
    "augment.jitter": _NON_NEGATIVE,
    "augment.scaling": _NON_NEGATIVE,
    "augment.window": AnyOf((Rule(float, 0, 0), Rule(float, 0.1, 1))),
    "data.max_length": Rule(int, 2, nullable=True),
    "optim.lr": AnyOf((_POSITIVE, Rule(str, choices=("auto",)))),
    "lr_finder.min_lr": _POSITIVE,
    "lr_finder.max_lr": _POSITIVE,
    "lr_finder.num_training": _COUNT,
    "batch_size_finder.memory_budget_mb": _POSITIVE,
    "batch_size_finder.max_batch_size": _COUNT,
    "optim.weight_decay": _NON_NEGATIVE,
    "optim.momentum": Rule(float, 0, 1, high_open=True),
    "optim.nesterov": Rule(bool),
    "sched.interval": Rule(str, choices=("epoch", "step")),
    "sched.warmup": Rule(int, 0),
    "sched.warmup_start_factor": Rule(float, 0, 1, low_open=True),
    "regularization.dropout": _PROBABILITY,
    "regularization.weight_decay": _NON_NEGATIVE,
    "regularization.l1": _NON_NEGATIVE,
    "regularization.label_smoothing": _PROBABILITY,
    "regularization.gradient_clip_val": Rule(float, 0, low_open=True, nullable=True),
    "regularization.early_stopping.patience": Rule(int, 0),
    "regularization.early_stopping.min_delta": _NON_NEGATIVE,
    "regularization.early_stopping.mode": Rule(str, choices=("min", "max")),
    "trainer.max_epochs": _COUNT,
    "speed.channels_last": Rule(bool),
    "speed.threads": Rule(int, 1, nullable=True),
    "format": Rule(str, choices=("onnx", "torchscript")),
    "tolerance": _POSITIVE,
}


def _select(cfg: DictConfig, key: str) -> tuple[bool, Any]:
    """(present, value) of a dotted key, resolving interpolations."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig) or leaf not in parent:
        return False, None
    try:
        node = parent[leaf]
    except OmegaConfBaseException as error:
        raise ConfigError(f"{key}: {str(error).splitlines()[0]}") from error
    if isinstance(node, DictConfig):
        return True, node
    return True, OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _check_cross_field(cfg: DictConfig) -> None:
    """Rules that involve more than one key."""
    data = cfg.get("data")
    if isinstance(data, DictConfig) and "val_fraction" in data and "test_fraction" in data:
        held_out = data.val_fraction + data.test_fraction
        if held_out >= 1:
            raise ConfigError(
                f"data.val_fraction + data.test_fraction = {held_out:g} leaves no training data:"
                " their sum must be below 1."
            )
    sched = cfg.get("sched")
    if isinstance(sched, DictConfig) and sched.get("monitor") and sched.get("warmup"):
        raise ConfigError(
            f"sched.warmup={sched.warmup} cannot precede a schedule driven by a monitored"
            " metric (sched=plateau): set sched.warmup=0."
        )
    _check_problem(cfg)
    _check_imbalance(cfg.get("data"))
    _check_timm(cfg.get("model"))
    _check_accelerator(cfg.get("trainer"))
    loss = cfg.get("loss")
    weights = loss.get("class_weights") if isinstance(loss, DictConfig) else None
    if weights is not None and weights != "balanced":
        values = OmegaConf.to_container(weights) if OmegaConf.is_config(weights) else weights
        if not Rule(float, 0, low_open=True, is_list=True).allows(values):
            raise ConfigError(
                f"loss.class_weights={values} is not allowed: use null, balanced, or a list"
                " of positive numbers, one per class."
            )


def _check_problem(cfg: DictConfig) -> None:
    """The problem kind's own rules, and monitor.metric one of the metrics it logs (else the
    run would fail only after its first epoch)."""
    from dltrain.problems import problem_class

    kind = problem_class(cfg)
    kind.check_config(cfg)
    logged = kind.logged_metrics
    monitor = cfg.get("monitor")
    metric = monitor.get("metric") if isinstance(monitor, DictConfig) else None
    if isinstance(metric, str) and metric not in logged:
        raise ConfigError(
            f"monitor.metric={metric} is not a metric this run logs.{did_you_mean(metric, list(logged))}"
            f" Logged metrics: {', '.join(logged)}."
        )
    objectives = monitor.get("metrics") if isinstance(monitor, DictConfig) else None
    if objectives is not None:
        from dltrain.objectives import check_objectives

        names = (
            OmegaConf.to_container(objectives) if OmegaConf.is_config(objectives) else objectives
        )
        problem = (
            check_objectives([str(n) for n in names], tuple(logged))
            if isinstance(names, list) and names
            else "monitor.metrics: give a list such as [val/acc, cost/latency_ms], or null."
        )
        if problem:
            raise ConfigError(problem)


def _check_accelerator(trainer: Any) -> None:
    """trainer.accelerator=gpu (trainer=gpu) on a machine where torch sees no CUDA GPU."""
    if not isinstance(trainer, DictConfig) or trainer.get("accelerator") not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
        raise ConfigError(
            f"trainer.accelerator={trainer.accelerator} needs a CUDA GPU, and torch"
            f" {torch.__version__} ({build}) sees none. Train on the CPU with trainer=default,"
            " or run where a GPU is visible (nvidia-smi)."
        )


def _check_timm(model: Any) -> None:
    """model=timm: the name is one of timm's and the weights file exists (imports timm)."""
    net = model.get("net") if isinstance(model, DictConfig) else None
    if not isinstance(net, DictConfig) or net.get("_target_") != "dltrain.models.timm_net.TimmNet":
        return
    from dltrain.models.timm_net import check_config

    check_config(model.name, model.get("weights"))


def _check_imbalance(data: Any) -> None:
    """data.imbalance is null or {classes: [class ids], keep: fraction}."""
    if not isinstance(data, DictConfig) or data.get("imbalance") is None:
        return
    imbalance = data.imbalance
    keys = set(imbalance.keys()) if isinstance(imbalance, DictConfig) else None
    if keys != {"classes", "keep"}:
        raise ConfigError(
            f"data.imbalance={OmegaConf.to_container(imbalance) if OmegaConf.is_config(imbalance) else imbalance}"
            " is not allowed: give {classes: [class ids], keep: fraction}, e.g."
            " data.imbalance='{classes: [0, 1], keep: 0.1}', or null."
        )


def _missing_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Keys whose value is literally ??? (nothing is resolved, so ${hydra:...} is safe)."""
    missing = []
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            missing += _missing_keys(child, f"{prefix}{key}.")
        elif child is not None and not child._is_interpolation() and child._is_missing():
            missing.append(f"{prefix}{key}")
    return missing


def _check_missing(cfg: DictConfig) -> None:
    """Values left as ??? that the user must supply (data.path for data=csv, say)."""
    missing = [key for key in _missing_keys(cfg) if not key.startswith("hydra.")]
    if missing:
        key = missing[0]
        raise ConfigError(f"{key} needs a value: add {key}=... to the command line.")


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first key whose value breaks its rule."""
    _check_missing(cfg)
    for key, rule in RULES.items():
        present, value = _select(cfg, key)
        if present and not rule.allows(value):
            shown = "null" if value is None else value
            raise ConfigError(f"{key}={shown} is not allowed: {key} must be {rule.describe()}.")
    _check_cross_field(cfg)
    from dltrain.trackers import check_installed

    check_installed(cfg.get("logger"))


MIN_FREE_MB = 50


def check_writable(directory: str, key: str) -> None:
    """Refuse an output directory that cannot be made or written, before anything starts."""
    target = Path(directory).expanduser().resolve()
    existing = next(p for p in (target, *target.parents) if p.exists())
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is a file, not a directory"
    else:
        try:
            with tempfile.TemporaryFile(dir=existing):
                pass
        except OSError as error:
            problem = f"{existing} is not writable ({error.strerror})"
        else:
            free_mb = shutil.disk_usage(existing).free / 2**20
            if free_mb < MIN_FREE_MB:
                problem = f"only {free_mb:.0f} MB are free there"
    if problem:
        raise ConfigError(
            f"cannot write the run directory {target}: {problem}. Choose another place with {key}=... (or paths.root=...)."
        )


@contextmanager
def _stop_on_error() -> Iterator[None]:
    # Any failure must stop the run: Hydra would turn an Exception into a warning and
    # carry on unchecked.
    try:
        yield
    except Exception as error:
        raise CarriedError(error) from error


class ValidateConfig(Callback):
    """Hydra callback: validate the config before a run directory or any data exist.

    A single run is checked before its directory is made; each multirun job before it runs.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _stop_on_error():
            validate(config)
            check_writable(str(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _stop_on_error():
            validate(config)
            check_writable(str(config.hydra.sweep.dir), "hydra.sweep.dir")

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _stop_on_error():
            validate(config)
