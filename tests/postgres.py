"""A throw-away PostgreSQL cluster for the suite: Debian's postgresql, initdb in a temporary
folder as the unprivileged `postgres` user (initdb refuses root), listening on loopback
and on a unix socket in that folder. One cluster per test session, one database per test.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ulid import ULID

from tests.conftest import free_port

USER = "postgres"


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Cluster:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="executor-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, USER, USER)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", USER, "--", *args],
            check=True,
            capture_output=True,
            cwd=self.dir,
            env={**os.environ, "LC_ALL": "C"},
        )

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            "-c fsync=off -c max_connections=200"  # throw-away: durability is not tested here
        )
        log = str(self.dir / "server.log")
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def psql(self, sql: str) -> None:
        self._run(
            str(self.bin / "psql"), "-q", "-h", str(self.dir), "-p", str(self.port), "-c", sql
        )

    def create_database(self) -> str:
        name = "t_" + str(ULID()).lower()
        self.psql(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
