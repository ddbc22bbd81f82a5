"""A finished run directory as input: its saved config, its checkpoints, its model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from dltrain.errors import ConfigError

# Keys of the test/predict/export roots that are not part of the run's own config.
TASK_KEYS = {"run", "ckpt_path", "input", "format", "task", "resume", "tta"}


def test_time_augmentation(tta: str, config: DictConfig, input_shape: tuple[int, ...]) -> str:
    """tta=flip, checked against the run: images whose data allows horizontal flips."""
    if tta == "none":
        return tta
    hflip = float(OmegaConf.select(config, "data.hflip", default=0.0) or 0.0)
    if len(input_shape) != 3 or hflip <= 0:
        raise ConfigError(
            f"tta={tta} averages over horizontal flips, which this run's data does not allow"
            f" (data.hflip={hflip:g}{'' if len(input_shape) == 3 else ', not images'}): use"
            " tta=none, or train with data.hflip > 0 where mirror images mean the same class."
        )
    return tta


def find_run(path: str) -> Path:
    """The run directory `run=` names, checked."""
    run = Path(path).expanduser()
    if not (run / ".hydra" / "config.yaml").is_file():
        raise ConfigError(
            f"run={path} is not a run directory (no .hydra/config.yaml there): pass a"
            " directory that `dltrain fit` wrote, e.g. run=runs/fit/2026-01-01_12-00-00."
        )
    return run


def run_config(run: Path, composed: DictConfig, overrides: list[str]) -> DictConfig:
    """The run's saved config, with the values the user changed on this command line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    saved = OmegaConf.load(run / ".hydra" / "config.yaml")
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key.split(".")[0] in TASK_KEYS:
            continue
        # A group choice (data=...) replaces the whole node; a key just its value.
        OmegaConf.update(saved, key, OmegaConf.select(composed, key), merge=False, force_add=True)
    saved.paths = composed.paths  # outputs go to this command's own run directory
    from dltrain.config.targets import check_targets

    check_targets(saved, f"run={run}")
    return saved


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def resume_arguments(args: list[str]) -> list[str]:
    """For `fit resume=<run dir>`: the run's own overrides, then the new ones, in its directory.

    Composing the same overrides again gives the run's config; a new value (say
    trainer.max_epochs=50) replaces the old one.
    """
    import yaml

    given = [a for a in args if a.startswith("resume=")]
    if not given:
        return args
    run = find_run(given[-1].split("=", 1)[1])
    own_checkpoint = any(a.startswith("ckpt_path=") for a in args)
    if not own_checkpoint and not (run / "checkpoints" / "last.ckpt").is_file():
        raise ConfigError(
            f"resume={run}: no checkpoints/last.ckpt there to resume from; pass"
            " ckpt_path=<file> to resume from another checkpoint."
        )
    new_keys = {_override_key(a) for a in args}
    saved = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()) or []
    # Hydra's own settings (callbacks, launchers, searchpath) never come from a run directory:
    # Hydra would build them before dltrain could check anything.
    kept = [
        o for o in saved
        if isinstance(o, str)
        and _override_key(o) not in new_keys | {"resume"}
        and not _override_key(o).startswith("hydra")
    ]  # fmt: skip
    return [*kept, *args, f"hydra.run.dir={run}"]


ANOTHER_CHECKPOINT = " Pass ckpt_path=<file> to use another checkpoint of the run."


def checkpoint_path(run: Path, ckpt_path: str | None) -> Path:
    """ckpt_path= if given (a local file), else the run's best checkpoint."""
    from dltrain.checkpoints import check_local

    path = check_local(ckpt_path) if ckpt_path else run / "checkpoints" / "best.ckpt"
    if not path.is_file():
        raise ConfigError(
            f"no checkpoint at {path}: the run may not have finished an epoch;"
            " pass ckpt_path=<file> to use another one (e.g. checkpoints/last.ckpt)."
        )
    return path


def rebuild_inputs(info: dict, state: dict) -> tuple[Any, dict[str, Any]]:
    """(the preprocessing module, the net's inputs) described by a checkpoint, to fill from its state."""
    from dltrain.module import Normalize

    data = info.get("data") or {"kind": "tensor"}
    if data["kind"] == "table":
        from dltrain.data.table import TablePreprocess, TableSchema

        schema = TableSchema.from_state(data["schema"])
        return TablePreprocess.empty(schema), schema.net_inputs()
    if data["kind"] == "text":
        from tokenizers import Tokenizer

        vocab_size = Tokenizer.from_str(data["tokenizer"]).get_vocab_size()
        return torch.nn.Identity(), {"input_shape": tuple(info["input_shape"]),
                                     "vocab_size": vocab_size}  # fmt: skip
    if data["kind"] == "timeseries":
        from dltrain.data.timeseries import SeriesPreprocess

        channels = data["channels"]
        preprocess = SeriesPreprocess(torch.zeros(channels), torch.ones(channels))
        return preprocess, {"input_shape": tuple(info["input_shape"]), "masked": True}
    normalize = Normalize(
        torch.zeros_like(state["normalize.mean"]), torch.ones_like(state["normalize.std"])
    )
    return normalize, {"input_shape": tuple(info["input_shape"])}


def load_model(config: DictConfig, ckpt: Path):
    """The trained model of a checkpoint, in eval mode: raw inputs in, the problem's outputs
    out (logits; numbers in the target's unit)."""
    from dltrain.checkpoints import load_checkpoint
    from dltrain.module import Learner
    from dltrain.problems import build_problem
    from dltrain.tasks.build import architecture_only, build_net

    checkpoint = load_checkpoint(ckpt, hint=ANOTHER_CHECKPOINT)
    info = checkpoint.get("dltrain")
    if not info or info.get("input_shape") is None:
        raise ConfigError(
            f"{ckpt} was not written by dltrain fit (it lacks the model's input shape)."
        )
    state = checkpoint["state_dict"]
    class_names = info["class_names"]
    preprocess, net_inputs = rebuild_inputs(info, state)
    problem = build_problem(config)
    net = build_net(
        architecture_only(config.model), num_classes=problem.outputs(len(class_names)), **net_inputs
    )
    model = Learner(
        net,
        num_classes=len(class_names),
        optimizer=None,
        normalize=preprocess,
        input_shape=tuple(info["input_shape"]),
        class_names=class_names,
        data_description=info.get("data"),
        problem=problem,
    )
    model.load_state_dict(state)
    return model.eval()
