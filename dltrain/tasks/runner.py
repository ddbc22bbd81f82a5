"""Runs a subcommand and turns any failure into a short message and an exit code.

Training commands are Hydra apps (one root config each: configs/<command>.yaml, so
`-m`, `--help` and `--cfg` work); `check`, `config` and `report` are plain commands.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

CONFIG_PATH = "pkg://dltrain.configs"
COMPOSING_COMMANDS = {"check", "config", "report"}


def _module_name(command: str) -> str:
    return f"dltrain.tasks.{command.replace('-', '_')}"


def _task_function(command: str, argv: list[str]) -> Any:
    def task(cfg: Any) -> Any:
        # Give the process its real argv back before training: Lightning re-launches
        # extra DDP ranks from sys.argv.
        sys.argv = argv
        return importlib.import_module(_module_name(command)).main(cfg)

    return task


def _run_hydra_app(command: str, args: list[str]) -> int:
    import hydra

    from dltrain.config.search_path import searchpath_override, split_config_dirs, user_config_dirs
    from dltrain.tasks.saved_run import resume_arguments

    args, dirs = split_config_dirs(args)
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


def run(command: str, args: list[str]) -> int:
    """Run `dltrain <command> <args>`; return the exit code."""
    debug = bool(os.environ.get("DLTRAIN_DEBUG") or os.environ.get("HYDRA_FULL_ERROR"))
    # Hydra then re-raises instead of printing its own report; ours is below.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    from dltrain.config.resolvers import register
    from dltrain.errors import ConfigRejected, report

    register()
    # Like `python -m`, let configs name the user's own code in the working directory
    # (model.net._target_=my_pkg.MyNet); appended, so it never shadows installed packages.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    from dltrain.sweep.plugins import make_plugins_discoverable

    make_plugins_discoverable()
    # Hydra logs "Error executing job ..." before re-raising; the report below says it better.
    logging.getLogger("hydra.core.utils").setLevel(logging.CRITICAL)
    try:
        if command in COMPOSING_COMMANDS:
            return importlib.import_module(_module_name(command)).main(args)
        return _run_hydra_app(command, args)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except ConfigRejected as rejected:
        if debug:
            raise rejected.error from None
        return report(rejected.error)
    except KeyboardInterrupt:
        print("dltrain: interrupted.", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        return report(error)
