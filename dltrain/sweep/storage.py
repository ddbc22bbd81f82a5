"""Where an optuna study lives, opened safely: secrets masked, drivers named, races locked.

- The default storage is a SQLite file in the sweep directory (`optuna.db`); with
  parallel trials (n_jobs > 1) it is optuna's JournalStorage in `optuna.journal`,
  optuna's recommendation for several processes on one machine (parallel trials report
  intermediate values at once, and SQLite can refuse a write with "database is
  locked"). A sweep directory keeps the kind it started with. optuna-dashboard opens
  both (`optuna-dashboard sqlite:///<dir>/optuna.db`, `optuna-dashboard <dir>/optuna.journal`).
  Trials under DDP need the SQLite one: optuna-integration's pruning callback only
  supports database storages there.
- A database URL (PostgreSQL for many machines) is masked wherever it is shown or written.
- Creating the study and claiming the next trials happen under a lock shared by every
  process of the study: a PostgreSQL advisory lock, or a file lock beside a file storage.
"""

from __future__ import annotations

import fcntl
import re
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dltrain.errors import ConfigError

JOURNAL_FILE = "optuna.journal"
SQLITE_FILE = "optuna.db"
_PASSWORD = re.compile(r"^([a-zA-Z][\w+.-]*://[^:/@]*):([^@]*)@")
DRIVERS = {"postgresql": "pip install 'dltrain[postgres]' (psycopg 3)",
           "mysql": "pip install pymysql, then use mysql+pymysql://..."}  # fmt: skip


def mask(url: str) -> str:
    """The storage URL with its password replaced by ***."""
    return _PASSWORD.sub(r"\1:***@", str(url))


def default_storage(sweep_dir: Path, parallel: bool = False) -> str:
    """The sweep directory's own study file: the one it holds, else by `parallel` trials."""
    journal, sqlite = sweep_dir.resolve() / JOURNAL_FILE, sweep_dir.resolve() / SQLITE_FILE
    if journal.is_file() or (parallel and not sqlite.is_file()):
        return str(journal)
    return f"sqlite:///{sqlite}"


def is_journal(storage: str) -> bool:
    """Whether `storage` names a journal file rather than a database URL."""
    return "://" not in storage or storage.startswith("journal://")


def _journal_path(storage: str) -> str:
    return storage.removeprefix("journal://")


def _scheme(storage: str) -> str:
    return storage.split("://", 1)[0].split("+", 1)[0]


def missing_driver(storage: str, error: ImportError) -> ConfigError:
    """The exit-2 error for a database URL whose driver package is not installed."""
    scheme = storage.split("://", 1)[0]
    fix = (
        f"pip install {scheme.split('+', 1)[1]}" if "+" in scheme else DRIVERS.get(_scheme(storage))
    )
    return ConfigError(
        f"hydra.sweeper.storage={mask(storage)}: its database driver is not installed"
        f" ({error.name or error}). Install it: {fix or 'the SQLAlchemy driver for that database'}."
    )


def open_storage(storage: str) -> Any:
    """The optuna storage object for a journal file path or a database URL."""
    import optuna

    if is_journal(storage):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(_journal_path(storage)))
    try:
        return optuna.storages.RDBStorage(storage)
    except ImportError as error:
        raise missing_driver(storage, error) from None


@contextmanager
def _postgres_lock(storage: str) -> Iterator[None]:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
    except ImportError as error:
        raise missing_driver(storage, error) from None
    key = zlib.crc32(b"dltrain-optuna-study")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def study_lock(storage: str) -> Iterator[None]:
    """Exclusive access to the study for every process that shares its storage."""
    scheme = _scheme(storage)
    if scheme == "postgresql":
        with _postgres_lock(storage):
            yield
    elif is_journal(storage):
        with _file_lock(Path(_journal_path(storage) + ".lock")):
            yield
    elif scheme == "sqlite" and storage.startswith("sqlite:///"):
        with _file_lock(Path(storage.removeprefix("sqlite:///") + ".lock")):
            yield
    else:  # other databases: optuna's own transactions only
        yield


def create_study(storage: str, attempts: int = 5, **kwargs: Any) -> Any:
    """optuna.create_study(load_if_exists=True) under the study lock, retried on a lost race."""
    import optuna
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            with study_lock(storage):
                return optuna.create_study(
                    storage=open_storage(storage), load_if_exists=True, **kwargs
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Another machine created the tables or the study between our check and write.
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
