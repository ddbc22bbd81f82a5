"""A real PostgreSQL server for tests, started on a free loopback port from the Debian
`postgresql` binaries (as pytest-postgresql does; PostgreSQL refuses to run as root, so
under root the server runs as the `postgres` user)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

PASSWORD = "s3cret-Pw-42"


def binaries() -> Path | None:
    """The newest installed PostgreSQL server's bin directory, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url(tmp_path):
    """postgresql://dl:<password>@127.0.0.1:<port>/optuna on a fresh, empty database."""
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries are absent (apt-get install postgresql): .ci/run installs them"
        )
    pytest.importorskip(
        "psycopg", reason="psycopg is not installed (pip install 'dltrain[postgres]')"
    )
    as_postgres = []
    # Outside tmp_path: pytest's folders are private to root, the server runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="dltrain-pg-"))
    (home / "pw").write_text(PASSWORD)
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
        for path in (home, home / "pw"):
            shutil.chown(path, "postgres")
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_postgres, *args], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(home / "data"), "-U", "dl", f"--pwfile={home / 'pw'}",
        "-A", "scram-sha-256")  # fmt: skip
    run(str(bin_dir / "pg_ctl"), "-D", str(home / "data"), "-w", "-l", str(home / "log"), "-o",
        f"-p {port} -k {home} -c listen_addresses=127.0.0.1", "start")  # fmt: skip
    try:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "dl",
                        "optuna"], check=True, env=env, capture_output=True, timeout=60)  # fmt: skip
        yield f"postgresql://dl:{PASSWORD}@127.0.0.1:{port}/optuna"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(home / "data"), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)
