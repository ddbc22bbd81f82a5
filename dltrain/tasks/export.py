"""`dltrain export run=<run dir> format=onnx|torchscript`: a portable model that is checked."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from dltrain.console import console
from dltrain.errors import RUNTIME_ERROR, ConfigError, DataError
from dltrain.tasks.evaluate import write_json
from dltrain.tasks.saved_run import checkpoint_path, find_run, load_model, run_config

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}


def sample_batch(config: DictConfig, input_shape: tuple[int, ...], size: int = 32) -> torch.Tensor:
    """A batch of the run's test inputs (random ones of the right shape if the data is gone)."""
    from dltrain.tasks.build import build_datamodule

    try:
        from dltrain.problems import build_problem

        datamodule = build_datamodule(config.data, build_problem(config))
        return next(iter(datamodule.test_dataloader()))[0][:size]
    except DataError:
        return torch.randn(size, *input_shape)


def export_onnx(model: torch.nn.Module, x: torch.Tensor, path: Path) -> torch.Tensor:
    """Write ONNX with a dynamic batch axis (and time axis for series); return
    onnxruntime's outputs on `x`."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ConfigError(
            "format=onnx needs onnx and onnxruntime: pip install 'dltrain[export]'"
        ) from error
    steps = {1: "steps"} if model.data_description["kind"] == "timeseries" else {}
    try:
        model.to_onnx(
            str(path),
            x,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch", **steps}, "logits": {0: "batch"}},
            dynamo=False,
        )
    except RuntimeError as error:  # e.g. an RNN's packed sequences: ONNX has no such operator
        raise ConfigError(
            f"ONNX cannot express this model ({str(error).splitlines()[0][:120]}): use"
            " format=torchscript."
        ) from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def export_torchscript(model: torch.nn.Module, x: torch.Tensor, path: Path) -> torch.Tensor:
    """Write a traced TorchScript module; return the reloaded module's outputs on `x`."""
    model.to_torchscript(str(path), method="trace", example_inputs=x)
    with torch.no_grad():
        return torch.jit.load(str(path))(x)


def main(cfg: DictConfig) -> float:
    """Export, reload, compare on a real batch; return the largest output difference."""
    if cfg.format not in FORMATS:
        raise ConfigError(f"format={cfg.format} is not allowed: use one of {', '.join(FORMATS)}.")
    run = find_run(cfg.run)
    config = run_config(run, cfg, list(HydraConfig.get().overrides.task))
    model = load_model(config, checkpoint_path(run, cfg.ckpt_path))
    x = sample_batch(config, model.input_shape)
    with torch.no_grad():
        expected = model(x)
    path = Path(cfg.paths.run_dir) / FORMATS[cfg.format]
    exported = (export_onnx if cfg.format == "onnx" else export_torchscript)(model, x, path)
    difference = float((exported - expected).abs().max())
    # float32 keeps ~7 digits: outputs in a target's own unit (prices) are compared relatively.
    scale = max(1.0, float(expected.abs().max()))
    write_json(path.with_name("export.json"), {
        "format": cfg.format, "path": str(path), "run": str(run),
        "input_shape": list(model.input_shape), "class_names": model.class_names,
        "max_abs_difference": difference, "batch": len(x),
    })  # fmt: skip
    console.print(f"{cfg.format} model → {path}")
    console.print(f"max |exported - PyTorch| on a batch of {len(x)}: {difference:.2e}")
    if difference > cfg.tolerance * scale:
        console.print(
            f"[red]above the tolerance {cfg.tolerance} x {scale:.3g}: the export does not match[/red]"
        )
        raise SystemExit(RUNTIME_ERROR)
    return difference
