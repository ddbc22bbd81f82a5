"""`dltrain test run=<run dir>`: evaluate a run's best checkpoint on its held-out test split."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from dltrain.checkpoints import load_checkpoint
from dltrain.console import show_metrics
from dltrain.problems import build_problem
from dltrain.tasks.evaluate import write_json
from dltrain.tasks.fit import quiet_lightning
from dltrain.tasks.saved_run import (
    ANOTHER_CHECKPOINT,
    checkpoint_path,
    find_run,
    run_config,
    test_time_augmentation,
)


def main(cfg: DictConfig) -> float:
    """Evaluate the checkpoint with the run's saved config; return its first test figure
    (accuracy; RMSE for regression)."""
    import lightning as L

    from dltrain.tasks.build import (
        architecture_only,
        build_data_net,
        build_datamodule,
        build_evaluation_trainer,
        build_module,
    )

    quiet_lightning()
    run = find_run(cfg.run)
    config = run_config(run, cfg, list(HydraConfig.get().overrides.task))
    ckpt = checkpoint_path(run, cfg.ckpt_path)
    weights = load_checkpoint(ckpt, hint=ANOTHER_CHECKPOINT)["state_dict"]  # before any data
    L.seed_everything(config.seed, workers=True, verbose=False)
    problem = build_problem(config)
    datamodule = build_datamodule(config.data, problem)
    module = build_module(
        config, datamodule, build_data_net(architecture_only(config.model), datamodule)
    )
    module.load_state_dict(weights)
    module.tta = test_time_augmentation(cfg.tta, config, datamodule.input_shape)
    trainer = build_evaluation_trainer(config)
    test = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    metrics = problem.metrics_json(test, module.test_report, datamodule.class_names)
    out = Path(cfg.paths.run_dir)
    write_json(
        out / "metrics.json",
        {**metrics, "run": str(run), "checkpoint": str(ckpt), "tta": module.tta},
    )
    shown = "" if module.tta == "none" else f" (tta={module.tta})"
    show_metrics(test, title=f"{ckpt} on the held-out test split{shown}")
    return float(test[problem.report_columns[0]])
