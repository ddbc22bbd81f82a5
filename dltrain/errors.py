"""dltrain's error types and the one place that turns an exception into a message and exit code."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

CONFIG_ERROR = 2
RUNTIME_ERROR = 1


class DltrainError(Exception):
    """A failure with a message written for the user."""

    exit_code = RUNTIME_ERROR


class ConfigError(DltrainError):
    """A usage or config mistake: exit 2."""

    exit_code = CONFIG_ERROR


class DataError(DltrainError):
    """Data that cannot be used as configured (missing path, bad file): exit 2."""

    exit_code = CONFIG_ERROR


class CarriedError(BaseException):
    """Carries an error past Hydra's own handling, to the runner that reports it.

    Hydra turns an Exception raised in a callback into a warning and carries on, and
    prints its own line for a failed job; the config check and a failed single run
    raise this BaseException instead, so the user sees one message and the right code.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class DivergenceError(DltrainError):
    """The training loss became NaN or infinite: exit 1, the last good checkpoint kept."""


class MissingDataError(DataError):
    """Dataset files that are not there yet (and could not be downloaded)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so that training stops the way Ctrl-C stops it."""


class Interrupted(BaseException):
    """Training was stopped by a signal after saving a resumable checkpoint."""

    def __init__(self, exit_code: int, run_dir: str) -> None:
        super().__init__(f"interrupted; resume with: dltrain fit resume={run_dir}")
        self.exit_code, self.run_dir = exit_code, run_dir


def did_you_mean(word: str, candidates: list[str], prefix: str = "") -> str:
    """' Did you mean 'x'?' for the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.5)
    return f" Did you mean '{prefix}{close[0]}'?" if close else ""


def _unknown_key_message(error: Exception) -> str | None:
    """For "Could not override 'optim.lrr'": name the key and the closest existing one."""
    cause = error.__cause__
    full_key = getattr(cause, "full_key", None)
    parent = getattr(cause, "parent_node", None)
    if not full_key or parent is None or "not in struct" not in str(cause):
        return None
    prefix, _, leaf = str(full_key).rpartition(".")
    siblings = [str(k) for k in parent.keys()]
    hint = did_you_mean(leaf, siblings, prefix=f"{prefix}." if prefix else "")
    where = f"'{prefix}'" if prefix else "the top level"
    return (
        f"unknown key '{full_key}'.{hint} Keys at {where}: {', '.join(sorted(siblings))}."
        f" (To add a new key on purpose, prefix it with '+': +{full_key}=...)"
    )


def _raised_in_dltrain(error: BaseException) -> bool:
    """Whether the innermost frame of the error's traceback is dltrain's own code."""
    traceback, last = error.__traceback__, None
    while traceback is not None:
        last, traceback = traceback, traceback.tb_next
    package = Path(__file__).resolve().parent
    return last is not None and package in Path(last.tb_frame.f_code.co_filename).resolve().parents


def _instantiation(error: Exception) -> tuple[int, str]:
    """Hydra could not build a configured object: the user's fault (a `_target_` that does
    not exist, an argument name or value its class refuses) is a config error; a crash
    inside dltrain's own constructors is a bug, reported as a runtime failure."""
    cause = error.__cause__
    if isinstance(cause, DltrainError):
        return cause.exit_code, str(cause)
    target = str(error).split("'")[1] if "'" in str(error) else "a configured object"
    reason = " ".join(str(cause or str(error).splitlines()[0]).split())
    if cause is not None and _raised_in_dltrain(cause):
        return RUNTIME_ERROR, (
            f"building {target} failed with {type(cause).__name__}: {reason}."
            " Set DLTRAIN_DEBUG=1 for the full traceback."
        )
    return CONFIG_ERROR, f"could not build {target}: {reason}"


def describe(error: BaseException) -> tuple[int, str]:
    """(exit code, one-paragraph message) for any exception raised by a subcommand."""
    from hydra.errors import (
        ConfigCompositionException,
        InstantiationException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, DltrainError):
        return error.exit_code, str(error)
    if isinstance(error, MissingConfigException):
        options = list(error.options or [])
        missing = str(error.missing_cfg_file or "")
        group, _, option = missing.rpartition("/")
        if group and options:
            return CONFIG_ERROR, (
                f"unknown option '{option}' for {group}.{did_you_mean(option, options)}"
                f" Valid options for {group}: {', '.join(options)}."
            )
        return CONFIG_ERROR, str(error).split("\nConfig search path", 1)[0].strip()
    if isinstance(error, ConfigCompositionException):
        message = _unknown_key_message(error)
        if message:
            return CONFIG_ERROR, message
        detail = f" ({str(error.__cause__).splitlines()[0]})" if error.__cause__ else ""
        return CONFIG_ERROR, f"{str(error).splitlines()[0]}{detail}"
    if isinstance(error, OverrideParseException):
        return CONFIG_ERROR, (
            f"could not parse an override: {str(error).splitlines()[0]}."
            " Overrides look like key=value or group=option."
        )
    if isinstance(error, InstantiationException):
        return _instantiation(error)
    if isinstance(error, OmegaConfBaseException):
        message = str(error).splitlines()[0]
        # One of dltrain's resolvers refused a value: OmegaConf keeps only its text.
        for name in ("ConfigError", "DataError"):
            message = message.removeprefix(f"{name} raised while resolving interpolation: ")
        return CONFIG_ERROR, message
    return RUNTIME_ERROR, (
        f"the run failed with {type(error).__name__}: {error}."
        " Set DLTRAIN_DEBUG=1 for the full traceback."
    )


def report(error: BaseException) -> int:
    """Print the short message for `error` on stderr and return its exit code."""
    code, message = describe(error)
    print(f"dltrain: error: {message}", file=sys.stderr)
    return code
