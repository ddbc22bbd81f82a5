"""Learning-rate and batch-size finders, shared by `find-lr`, `find-batch-size` and `fit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn


def find_lr(cfg: DictConfig, module: Any, datamodule: Any, plot: Path | None = None) -> float:
    """Lightning's learning-rate range test: the suggested rate (and its loss-vs-rate plot)."""
    import lightning as L
    from lightning.pytorch.tuner import Tuner

    from dltrain.callbacks import AtomicCheckpointIO

    settings = cfg.lr_finder
    trainer = L.Trainer(
        # The range test saves and restores the model through a checkpoint: read as data only.
        plugins=[AtomicCheckpointIO()],
        accelerator=cfg.trainer.get("accelerator", "auto"),
        devices=1,
        # The range test stops itself after num_training steps, however many epochs they span.
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        default_root_dir=cfg.paths.run_dir,
    )
    result = Tuner(trainer).lr_find(
        module,
        datamodule=datamodule,
        min_lr=settings.min_lr,
        max_lr=settings.max_lr,
        num_training=settings.num_training,
        update_attr=False,
    )
    suggestion = result.suggestion() if result is not None else None
    if suggestion is None:
        raise RuntimeError(
            "the learning-rate finder found no suggestion; try more lr_finder.num_training steps"
        )
    if plot is not None:
        from dltrain.plots import pyplot

        plt = pyplot()
        figure = result.plot(suggest=True)
        figure.axes[0].set_title(f"learning-rate range test: suggested optim.lr={suggestion:.3g}")
        plot.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(plot, dpi=110)
        plt.close(figure)
    return float(suggestion)


def _activation_bytes_per_sample(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Bytes of every layer's output for one sample: what backpropagation keeps in memory."""
    total = 0

    def count(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal total
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        total += sum(o.numel() * o.element_size() for o in outputs if isinstance(o, torch.Tensor))

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        was_training = net.training
        net.train()
        with torch.no_grad():
            net(torch.zeros(2, *input_shape))
        net.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return total // 2


def find_batch_size(cfg: DictConfig, module: Any, datamodule: Any) -> dict[str, Any]:
    """The largest power of two whose estimated training memory fits the budget.

    Estimate: weights, gradients and two optimizer moments (4 x the parameters), plus
    every layer's activations and their gradients (2 x) per sample. On a GPU, Lightning's
    own search tries real steps until memory runs out instead.
    """
    settings = cfg.batch_size_finder
    train_size = len(datamodule.splits["train"][1])
    limit = min(settings.max_batch_size, train_size)
    if torch.cuda.is_available() and cfg.trainer.get("accelerator", "auto") in (
        "auto",
        "gpu",
        "cuda",
    ):
        return _lightning_batch_size_search(cfg, module, datamodule, limit)
    fixed = 4 * sum(p.numel() * p.element_size() for p in module.parameters())
    per_sample = 2 * _activation_bytes_per_sample(module.net, datamodule.input_shape)
    budget = settings.memory_budget_mb * 2**20
    size = 1
    while size * 2 <= limit and fixed + per_sample * size * 2 <= budget:
        size *= 2
    _trial_step(module, datamodule.input_shape, size)
    return {
        "batch_size": size,
        "estimated_mb": round((fixed + per_sample * size) / 2**20, 2),
        "memory_budget_mb": settings.memory_budget_mb,
        "limit": "training split size"
        if size * 2 > train_size
        else "memory budget or max_batch_size",
    }


def _trial_step(module: Any, input_shape: tuple[int, ...], size: int) -> None:
    """One real forward and backward pass at `size`, so a batch size that cannot run fails here."""
    module.train()
    logits = module(torch.zeros(size, *input_shape))
    logits.sum().backward()
    module.zero_grad(set_to_none=True)


def _lightning_batch_size_search(cfg: DictConfig, module: Any, datamodule: Any, limit: int) -> dict:
    import lightning as L
    from lightning.pytorch.tuner import Tuner

    from dltrain.callbacks import AtomicCheckpointIO

    # The search saves and restores the model through a checkpoint: read as data only.
    trainer = L.Trainer(accelerator="auto", devices=1, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        plugins=[AtomicCheckpointIO()], default_root_dir=cfg.paths.run_dir)  # fmt: skip
    size = Tuner(trainer).scale_batch_size(
        module, datamodule=datamodule, mode="power", max_trials=25
    )
    return {"batch_size": min(int(size), limit), "limit": "GPU memory (Lightning's search)"}
