"""The `dltrain` command: subcommand dispatch.

Only the standard library is imported until a subcommand runs, so `dltrain --help`
answers at once; Hydra, torch and Lightning load inside the subcommand.
"""

from __future__ import annotations

import gc
import sys

from dltrain import __version__
from dltrain.errors import did_you_mean

SUBCOMMANDS = {
    "fit": "train a model, keep the best checkpoint on validation data, test it on held-out data",
    "test": "evaluate a run's best checkpoint on its held-out test split (run=<run dir>)",
    "predict": "predict classes for new inputs with a run's model (run=<run dir> input=<path>)",
    "export": "export a run's model to ONNX or TorchScript and check its outputs",
    "find-lr": "run the learning-rate range test; print and plot the suggested optim.lr",
    "find-batch-size": "find the largest batch size that fits the memory budget",
    "check": "smoke-run experiment configs (yours with --config-dir; --builtin, --all): a CI check",
    "config": "print the resolved, validated config without training (--groups: the options)",
    "report": "rebuild a sweep's results table, best config and plots (<sweep dir>)",
    "compare": "the settings that differ between runs and their figures (<run dir> <run dir> ...)",
}

USAGE = """\
usage: dltrain <command> [overrides ...] [-m|--multirun] [--help]

Declarative training of deep-learning models from composable YAML configs.

commands:
{commands}

examples:
  dltrain fit                                   train the default (digits, small CNN, Adam)
  dltrain fit model=mlp optim=sgd optim.lr=0.05 pick options, override values
  dltrain fit trainer=smoke                     one quick epoch over a few batches (CI smoke run)
  dltrain fit -m optim.lr=1e-3,1e-2 model=mlp,cnn   a grid sweep, one run directory per job
  dltrain fit --help                            the config groups, their options and the config
  dltrain fit resume=runs/fit/<timestamp>       continue a run from its last checkpoint
  dltrain test run=runs/fit/<timestamp>         evaluate a run again
  dltrain predict run=runs/fit/<timestamp> input=images/
  dltrain check --config-dir my_configs         smoke-run your experiments (CI)
  dltrain compare runs/fit/<a> runs/fit/<b>      what differs between two runs (--csv)

Your own configs: --config-dir DIR (or a dltrain/ folder in the working directory).
Runs land in runs/<command>/<timestamp>/. Set DLTRAIN_DEBUG=1 for full tracebacks.
exit codes: 0 success, 1 runtime failure, 2 usage or config error, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM).
"""


def usage() -> str:
    """The top-level help text."""
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, text in SUBCOMMANDS.items()]
    return USAGE.format(commands="\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dltrain` console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(f"dltrain {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in SUBCOMMANDS:
        hint = did_you_mean(command, list(SUBCOMMANDS))
        print(
            f"dltrain: unknown command '{command}'.{hint} Commands: {', '.join(SUBCOMMANDS)}."
            " See 'dltrain --help'.",
            file=sys.stderr,
        )
        return 2
    from dltrain.tasks.runner import run

    # The cyclic garbage collector rescans every object imports create: off while torch,
    # Lightning and friends load (their imports then take 2.1 s instead of 2.7 s); the
    # runner turns it on again once the job's libraries are in (`enable_collection`).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return run(command, rest)
    finally:
        if collecting:
            gc.enable()
