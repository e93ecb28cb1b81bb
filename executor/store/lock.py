"""One executor process per database (or, with a shared database, per data folder): an
exclusive flock on `<db>.lock` (`<data dir>/node.lock`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from executor.errors import StoreLocked


class DatabaseLock:
    def __init__(self, db: Path, what: str = "database") -> None:
        self.path = db.with_name(db.name + ".lock")
        self._what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # flock conflicts between open files even within one process, so a second
            # executor in the same test process is refused just like another process.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"{self._what} {self.path.with_suffix('')} is in use by another executor "
                f"(pid {holder}); run one executor per {self._what}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
