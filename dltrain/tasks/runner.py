"""Runs a subcommand and turns any failure into a short message and an exit code.

Training commands are Hydra apps (one root config each: configs/<command>.yaml, so
`-m`, `--help` and `--cfg` work); `check`, `config`, `report` and `compare` are plain
commands.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import traceback
from typing import Any

CONFIG_PATH = "pkg://dltrain.configs"
COMPOSING_COMMANDS = {"check", "config", "report", "compare"}


def enable_collection(command: str) -> None:
    """Turn the garbage collector back on (cli.main turned it off for the imports), once
    the libraries a job needs are imported; freezing them first keeps collections from
    rescanning them."""
    if gc.isenabled():
        return
    if command not in COMPOSING_COMMANDS:
        import lightning.pytorch  # noqa: F401 - every training or evaluating command uses it
    gc.freeze()
    gc.enable()


def _module_name(command: str) -> str:
    return f"dltrain.tasks.{command.replace('-', '_')}"


def point_run_dir_at_job() -> None:
    """Make HydraConfig's run.dir this job's output directory.

    Lightning starts extra DDP ranks with hydra.run.dir=<HydraConfig run.dir> appended;
    in a multirun that field names a fresh run directory, not the job's own.
    """
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    hydra_cfg = HydraConfig.get()
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def job_argv(command: str, argv: list[str]) -> list[str]:
    """The command line that re-runs just this Hydra job.

    Lightning starts the extra ranks of a DDP run by executing sys.argv again: inside a
    multirun that would start the whole sweep once more, so each job gets this instead.
    """
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    flags = []
    for flag in ("--config-dir", "--config-name", "-cd", "-cn"):
        if flag in argv[:-1]:
            flags += [flag, argv[argv.index(flag) + 1]]
    searchpath = [o for o in hydra_cfg.overrides.hydra if o.startswith("hydra.searchpath=")]
    return [argv[0], command, *flags, *hydra_cfg.overrides.task, *searchpath]


def _end_process_group() -> None:
    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _task_function(command: str, argv: list[str]) -> Any:
    def task(cfg: Any) -> Any:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from dltrain.errors import CarriedError

        environment = dict(os.environ)
        point_run_dir_at_job()
        sys.argv = job_argv(command, argv)
        try:
            module = importlib.import_module(_module_name(command))
            enable_collection(command)
            return module.main(cfg)
        except Exception as error:
            # A single run reports its failure itself; sweepers must see each job's error.
            if HydraConfig.get().mode == RunMode.RUN:
                raise CarriedError(error) from error
            raise
        finally:
            # A DDP run leaves its process group and MASTER_ADDR, WORLD_SIZE, LOCAL_RANK...
            # behind; the next job of a multirun must start as this one started.
            _end_process_group()
            os.environ.clear()
            os.environ.update(environment)
            # A job's trainer, model and data sit in reference cycles. Some stay reachable
            # until the next job replaces them (Hydra's and Lightning's per-job state), so
            # the previous freeze holds them: unfreeze first, or every job's model leaks.
            gc.unfreeze()
            gc.collect()
            # What is left is long-lived (modules, caches): freezing it keeps the job's own
            # automatic collections from rescanning it (0.2 s each with torch loaded).
            gc.freeze()

    return task


def _run_hydra_app(command: str, args: list[str]) -> int:
    import hydra

    from dltrain.config.search_path import searchpath_override, split_config_dirs, user_config_dirs
    from dltrain.tasks.saved_run import resume_arguments

    args, dirs = split_config_dirs(args)
    # `dltrain fit --verbose` prints the whole resolved config, not only the summary.
    args = ["verbose=true" if a in ("--verbose", "-v") else a for a in args]
    found = user_config_dirs(dirs)
    # Hydra's own --config-dir also finds primary configs (--config-name best_config);
    # further directories join through hydra.searchpath.
    native = ["--config-dir", str(found[0])] if dirs else []
    args = [*native, *args, *searchpath_override(found[1:] if dirs else found)]
    if command == "fit":
        args = resume_arguments(args)
    real_argv = list(sys.argv)
    sys.argv = [f"dltrain {command}", *args]
    app = hydra.main(
        version_base="1.3", config_path=CONFIG_PATH, config_name=command.replace("-", "_")
    )(_task_function(command, real_argv))
    try:
        app()
    finally:
        sys.argv = real_argv
    return 0


def _is_lightning_sigterm(exit_: SystemExit) -> bool:
    # Lightning stops on SIGTERM with a SystemExit of its own, whose exit code would be 0.
    if "lightning.pytorch" not in sys.modules:
        return False
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    return isinstance(exit_, SIGTERMException)


def run(command: str, args: list[str]) -> int:
    """Run `dltrain <command> <args>`; return the exit code."""
    debug = bool(os.environ.get("DLTRAIN_DEBUG") or os.environ.get("HYDRA_FULL_ERROR"))
    # Hydra then re-raises instead of printing its own report; ours is below.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from dltrain.config.resolvers import register
    from dltrain.errors import CarriedError, Interrupted, report

    register()
    # Like `python -m`, let configs name the user's own code in the working directory
    # (model.net._target_=my_pkg.MyNet); appended, so it never shadows installed packages.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    from dltrain.sweep.plugins import make_plugins_discoverable

    make_plugins_discoverable()
    # Hydra logs "Error executing job ..." before re-raising; the report below says it better.
    logging.getLogger("hydra.core.utils").setLevel(logging.CRITICAL)
    # matplotlib announces its font cache on a machine's first plot ("generated new fontManager").
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        if command in COMPOSING_COMMANDS:
            module = importlib.import_module(_module_name(command))
            enable_collection(command)
            return module.main(args)
        return _run_hydra_app(command, args)
    except SystemExit as exit_:
        if _is_lightning_sigterm(exit_):  # SIGTERM while evaluating: no checkpoint to save
            print("dltrain: terminated.", file=sys.stderr)
            return 143
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except CarriedError as carried:
        if debug:  # the full traceback, then the usual message and exit code
            traceback.print_exception(carried.error)
        return report(carried.error)
    except Interrupted as interrupted:
        print(f"dltrain: {interrupted}", file=sys.stderr)
        return interrupted.exit_code
    except KeyboardInterrupt:
        print("dltrain: interrupted.", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            traceback.print_exception(error)
        return report(error)
