"""`dltrain fit`: train, keep the best checkpoint on validation data, test it on held-out data."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dltrain.console import show_config, show_metrics


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (device lines, tips) out of the terminal."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
    warnings.filterwarnings(
        "ignore", message=".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*"
    )


def test_report(metrics: dict[str, float], report: dict[str, Any], class_names: list[str]) -> dict:
    """metrics.json: the flat val/test metrics, the confusion matrix and per-class figures."""
    confusion = report["confusion_matrix"]
    per_class = {
        name: {
            "precision": report["per_class"]["precision"][i],
            "recall": report["per_class"]["recall"][i],
            "f1": report["per_class"]["f1"][i],
            "support": int(sum(confusion[i])),
        }
        for i, name in enumerate(class_names)
    }
    return {
        **metrics,
        "test/confusion_matrix": confusion,
        "test/per_class": per_class,
        "class_names": class_names,
    }


def data_summary(datamodule: Any) -> dict:
    """data.json: what the data was: class names (label ids in order), shapes, split sizes."""
    return {
        "class_names": datamodule.class_names,
        "input_shape": list(datamodule.input_shape),
        "split_sizes": {name: len(labels) for name, (_, labels) in datamodule.splits.items()},
        "train_class_counts": datamodule.class_counts().tolist(),
    }


def main(cfg: DictConfig) -> float:
    """Run the fit task; return the best value of `monitor.metric` for Hydra sweepers."""
    import lightning as L

    from dltrain.tasks.build import build_datamodule, build_module, build_net, build_trainer

    quiet_lightning()
    run_dir = Path(cfg.paths.run_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    OmegaConf.save(OmegaConf.create(resolved), run_dir / "config.yaml")
    show_config(resolved, title=f"dltrain fit → {run_dir}")

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg.data)
    net = build_net(cfg.model, datamodule.input_shape, datamodule.num_classes)
    module = build_module(cfg, datamodule, net)
    trainer = build_trainer(cfg)
    trainer.fit(module, datamodule=datamodule)

    checkpoint = trainer.checkpoint_callback
    best = "best" if checkpoint is not None and checkpoint.best_model_path else None
    val = trainer.validate(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
    test = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
    metrics = test_report({**val, **test}, module.test_report, datamodule.class_names)
    if trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (run_dir / "data.json").write_text(json.dumps(data_summary(datamodule), indent=2) + "\n")
    show_metrics({**val, **test}, title=f"best checkpoint ({cfg.monitor.metric}) on held-out data")
    if best is not None and checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    return float(val[cfg.monitor.metric])
