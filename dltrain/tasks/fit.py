"""`dltrain fit`: train, keep the best checkpoint on validation data, test it on held-out data."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from dltrain import plots, trackers
from dltrain.console import (
    console,
    show_config,
    show_diagnosis,
    show_metrics,
    show_profile,
    show_summary,
)
from dltrain.diagnosis import Thresholds, diagnose
from dltrain.objectives import best_epoch_row, measure_costs, objective_values, parameter_count
from dltrain.profile import profile
from dltrain.profile import warnings_for as profile_warnings
from dltrain.tasks.evaluate import write_json


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (device lines, tips) out of the terminal."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    trackers.quiet()
    # speed.compile on a CPU-only machine: a warning that no CUDA toolkit was found.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
    # Under DDP the epoch figures are synced already (torchmetrics, the reduced training sums).
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*when logging on epoch level.*")
    # Figures go to metrics.csv and the console whether or not a tracker is configured.
    warnings.filterwarnings("ignore", message=".*but have no logger configured.*")
    # The module's on_after_batch_transfer (augmentation) is meant to be the one used.
    warnings.filterwarnings(
        "ignore", message=".*overridden `on_after_batch_transfer` in `LightningModule`.*"
    )
    warnings.filterwarnings(
        "ignore", message=".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*"
    )


def is_rank_zero() -> bool:
    """Whether this process is rank 0 (Lightning reads the rank from the environment)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def epoch_history(trainer: Any) -> list[dict]:
    """The rows of metrics.csv, as the EpochHistory callback holds them."""
    from dltrain.callbacks import EpochHistory

    history = next((c for c in trainer.callbacks if isinstance(c, EpochHistory)), None)
    return list(history.rows) if history is not None else []


def data_summary(datamodule: Any, data_profile: dict) -> dict:
    """data.json: what the data was: class names (label ids in order), shapes, split sizes,
    the training targets (class counts; a continuous target's statistics)."""
    summary = {
        "class_names": datamodule.class_names,
        "input_shape": list(datamodule.input_shape),
        "split_sizes": data_profile["samples"],
    }
    if "class_counts" in data_profile:
        summary["train_class_counts"] = list(data_profile["class_counts"]["train"].values())
    else:
        summary["train_target"] = data_profile["targets"]["train"]
    return summary


def record_choice(cfg: DictConfig, run_dir: Path, key: str, value: Any) -> None:
    """Put a value chosen at run time (optim.lr=auto) into the config and the run's saved
    config and overrides, so the run re-runs and resumes with the same value."""
    import yaml

    with open_dict(cfg):
        OmegaConf.update(cfg, key, value)
    saved = run_dir / ".hydra"
    if (saved / "config.yaml").is_file():
        config = OmegaConf.load(saved / "config.yaml")
        OmegaConf.update(config, key, value)
        OmegaConf.save(config, saved / "config.yaml")
        overrides = yaml.safe_load((saved / "overrides.yaml").read_text()) or []
        overrides = [o for o in overrides if o.split("=", 1)[0] != key] + [f"{key}={value}"]
        (saved / "overrides.yaml").write_text(yaml.safe_dump(overrides))


def build_model(cfg: DictConfig, datamodule: Any, resumed: bool = False) -> Any:
    """The LightningModule, seeded, so every build starts from the same weights (a resumed
    run's come from its checkpoint: no weights file or download then)."""
    import lightning as L

    from dltrain.tasks.build import architecture_only, build_data_net, build_module

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model_cfg = architecture_only(cfg.model) if resumed else cfg.model
    return build_module(cfg, datamodule, build_data_net(model_cfg, datamodule))


def choose_auto_values(cfg: DictConfig, datamodule: Any, run_dir: Path) -> None:
    """Resolve data.batch_size=auto and optim.lr=auto (in that order) and record them."""
    from dltrain.tasks.finders import find_batch_size, find_lr

    if cfg.data.batch_size == "auto":
        found = find_batch_size(cfg, build_model(cfg, datamodule), datamodule)
        datamodule.batch_size = found["batch_size"]
        record_choice(cfg, run_dir, "data.batch_size", found["batch_size"])
        console.print(f"data.batch_size=auto → {found['batch_size']} ({found['limit']})")
    if cfg.optim.lr == "auto":
        with open_dict(cfg):
            cfg.optim.lr = 1e-3  # replaced by the range test's suggestion
        lr = find_lr(
            cfg, build_model(cfg, datamodule), datamodule, plot=run_dir / "plots" / "lr_finder.png"
        )
        record_choice(cfg, run_dir, "optim.lr", float(f"{lr:.4g}"))
        console.print(f"optim.lr=auto → {cfg.optim.lr} (plot: plots/lr_finder.png)")


def resume_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint `fit resume=` continues from (ckpt_path=, else last.ckpt), checked first."""
    if not cfg.get("resume"):
        return None
    from dltrain.checkpoints import check_local, load_checkpoint
    from dltrain.config.targets import check_targets

    run = Path(cfg.resume)
    check_targets(cfg, f"resume={run}")  # its overrides came from the run directory
    path = check_local(cfg.ckpt_path) if cfg.get("ckpt_path") else run / "checkpoints" / "last.ckpt"
    other = "best.ckpt" if path.name == "last.ckpt" else "last.ckpt"
    load_checkpoint(
        path, hint=f" Resume from another one: ckpt_path={run / 'checkpoints' / other}."
    )
    return path


def group_choices() -> dict[str, str]:
    """The option picked in each config group (model=cnn), where Hydra runs the job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():  # dltrain check composes without a Hydra job
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items()}


def run_summary(
    cfg: DictConfig, datamodule: Any, module: Any, run_dir: Path, trainer: Any
) -> dict[str, str]:
    """The start of a fit in a few lines: data, net, optimizer, schedule, length, device,
    config."""
    choices = group_choices()
    sizes = [len(datamodule.splits[s][1]) for s in ("train", "val", "test")]
    target = (f"{datamodule.num_classes} classes" if datamodule.problem.has_classes
              else "a continuous target")  # fmt: skip
    parameters = parameter_count(module)
    optimizer = cfg.optim._target_.rsplit(".", 1)[-1]
    sched = cfg.sched
    schedule = f"{choices.get('sched', 'custom')} per {sched.interval}"
    if sched.get("warmup"):
        schedule += f" after {sched.warmup} {sched.interval}s of warmup"
    stopping = cfg.regularization.early_stopping
    epochs = f"{cfg.trainer.max_epochs} epochs at most" + (
        f", early stopping on {stopping.monitor} (patience {stopping.patience})" if stopping else ""
    )
    lines = {
        "data": f"{choices.get('data', type(datamodule).__name__)}: {sizes[0]} / {sizes[1]} /"
        f" {sizes[2]} samples (train / val / test), input {list(datamodule.input_shape)}, {target}",
        "model": f"{choices.get('model', 'custom')} ({type(module.net).__name__}),"
        f" {parameters:,} parameters",
        "optimizer": f"{optimizer}, lr {cfg.optim.lr:g}, weight decay"
        f" {cfg.optim.get('weight_decay', 0.0):g}; schedule {schedule}",
        "training": epochs,
        "device": device_summary(trainer, datamodule),
        "config": f"{run_dir / 'config.yaml'} (dltrain fit --verbose prints it)",
    }
    for i, note in enumerate(module.notes):
        lines[f"note {i + 1}" if len(module.notes) > 1 else "note"] = note
    return lines


def device_summary(trainer: Any, datamodule: Any) -> str:
    """Where training runs: the device, its precision, and where the batches are cut."""
    device = trainer.strategy.root_device
    processes = f" x {trainer.world_size} processes" if trainer.world_size > 1 else ""
    _, data = datamodule.placement(device)
    if datamodule.prepares(device):
        data += ", inputs normalized once"
    return f"{device}{processes}, precision {trainer.precision}; data: {data}"


def measure_baseline(cfg: DictConfig, datamodule: Any, data_profile: dict) -> dict:
    """Fit the classical baseline (`baseline` config; absent in older runs: auto) and put
    its summary in the data profile."""
    from dltrain.baselines import fit_baseline, summary

    settings = dict(cfg.get("baseline") or {})
    figures = fit_baseline(datamodule, **settings) if is_rank_zero() else {}
    if figures:
        data_profile["baseline"] = summary(figures, datamodule.problem.headline)
    return figures


def main(cfg: DictConfig) -> float | list[float]:
    """Run the fit task; return the best value of `monitor.metric` for Hydra sweepers (with
    `monitor.metrics`, the value of each objective)."""
    from dltrain.problems import build_problem
    from dltrain.sweep.pruning import pruned_under_ddp
    from dltrain.tasks.build import build_datamodule, build_trainer

    quiet_lightning()
    if cfg.speed.get("threads"):
        import torch

        torch.set_num_threads(int(cfg.speed.threads))
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)  # Hydra made it already, `dltrain check` did not
    resume_from = resume_checkpoint(cfg)
    datamodule = build_datamodule(cfg.data, build_problem(cfg))
    thresholds = Thresholds(**OmegaConf.to_container(cfg.diagnosis))
    data_profile = profile(datamodule)
    choose_auto_values(cfg, datamodule, run_dir)
    data_profile["notes"] = datamodule.notes + datamodule.epoch_notes()
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if is_rank_zero():  # the other ranks of a DDP run share this directory
        OmegaConf.save(OmegaConf.create(resolved), run_dir / "config.yaml")
        if cfg.get("verbose"):
            show_config(resolved, title=f"dltrain fit → {run_dir}")
        else:
            console.print(f"[bold magenta]dltrain fit → {run_dir}[/bold magenta]")
        data_profile["warnings"] = profile_warnings(data_profile, thresholds.imbalance_ratio)
        show_profile(data_profile, data_profile["warnings"])
        write_json(run_dir / "data_profile.json", data_profile)

    module = build_model(cfg, datamodule, resumed=resume_from is not None)
    datamodule.prepare_inputs(module.preparation_ahead())
    if cfg.speed.get("compile"):
        module.compile_net(cfg.speed.get("compile_mode", "default"))
    trainer = build_trainer(cfg)
    if is_rank_zero():
        show_summary(run_summary(cfg, datamodule, module, run_dir, trainer))
    trackers.start(trainer, resolved, resumed=resume_from is not None)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except BaseException as error:  # pruned, failed or interrupted: the tracker run says so
        trackers.finish(trainer, run_dir, {}, status=trackers.status_of(error))
        raise
    if pruned_under_ddp(trainer):
        return float("nan")  # another rank of a pruned trial: rank 0 reports it to the study
    # After training, so it never delays the first step (up to baseline.max_seconds) and
    # pruned trials skip it.
    baseline = measure_baseline(cfg, datamodule, data_profile)
    if trainer.is_global_zero and "baseline" in data_profile:
        console.print(f"baseline: {data_profile['baseline']}", highlight=False)
        write_json(run_dir / "data_profile.json", data_profile)
    # Taken before evaluating: loading the best checkpoint restores the callbacks' older state.
    history = epoch_history(trainer)
    if trainer.is_global_zero and history:
        plots.learning_curves(
            history,
            run_dir / "plots" / "learning_curves.png",
            datamodule.problem.curves,
            baseline,
        )

    checkpoint = trainer.checkpoint_callback
    best = "best" if checkpoint is not None and checkpoint.best_model_path else None
    val = trainer.validate(
        module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True
    )[0]
    test = trainer.test(
        module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True
    )[0]
    problem = datamodule.problem
    metrics = problem.metrics_json({**val, **test}, module.test_report, datamodule.class_names)
    # Its seconds stay in the data profile: metrics.json is identical for identical runs.
    metrics.update({k: v for k, v in baseline.items() if k != "baseline/seconds"})
    metrics["diagnosis"] = diagnose(history, metrics, thresholds, data_profile["imbalance_ratio"],
                                    problem.chance_loss(datamodule.num_classes), problem.headline)  # fmt: skip
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
        write_json(run_dir / "data.json", data_summary(datamodule, data_profile))
        problem.plots(module.test_report, datamodule.class_names, run_dir / "plots")
        show_metrics(
            {**val, **test},
            title=f"best checkpoint ({cfg.monitor.metric}) on held-out data",
            baseline=baseline,
        )
        show_diagnosis(metrics["diagnosis"])
        console.print(
            f"results in {run_dir}: metrics.json, plots/, checkpoints/best.ckpt", highlight=False
        )
    costs = measure_costs(module, datamodule, history) if trainer.is_global_zero else {}
    if costs:
        write_json(run_dir / "costs.json", costs)
    trackers.finish(trainer, run_dir, metrics)
    score = float(val[cfg.monitor.metric])
    if best is not None and checkpoint.best_model_score is not None:
        score = float(checkpoint.best_model_score)
    objectives = cfg.monitor.get("metrics")
    if not objectives:
        return score
    # A multi-objective sweep: one value per objective, the training figures at the best epoch.
    row = best_epoch_row(history, cfg.monitor.metric, cfg.monitor.mode, score)
    return objective_values(list(objectives), {cfg.monitor.metric: score, **metrics}, costs, row)
