"""Hot-container readiness: the moment `lsnr.sock` appears in its iofs directory.

One inotify instance serves the whole process, read by the event loop. A watch is added
before the container starts and the socket's existence is checked right after, so a
socket created in between is not missed; no polling of Docker or of the file system.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from inotify_simple import INotify, flags

WATCHED = flags.CREATE | flags.MOVED_TO


class SocketWatcher:
    def __init__(self) -> None:
        self._inotify = INotify(nonblocking=True)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._inotify.fileno(), self._read)
        self._waiting: dict[int, tuple[str, asyncio.Future[None]]] = {}

    def ready(self, directory: Path, name: str) -> asyncio.Future[None]:
        """A future set once `directory/name` exists; cancel it to stop watching."""
        future: asyncio.Future[None] = self._loop.create_future()
        wd = self._inotify.add_watch(directory, WATCHED)
        stale = self._waiting.get(wd)
        self._waiting[wd] = (name, future)
        if stale is not None:
            stale[1].cancel()  # the kernel reused the number of a watch that went away
        future.add_done_callback(lambda f: self._unwatch(wd, f))
        if os.path.lexists(directory / name):
            future.set_result(None)
        return future

    def close(self) -> None:
        self._loop.remove_reader(self._inotify.fileno())
        for _, future in list(self._waiting.values()):
            future.cancel()
        self._inotify.close()

    def _read(self) -> None:
        for event in self._inotify.read(timeout=0):
            waiting = self._waiting.get(event.wd)
            if waiting is not None and event.name == waiting[0] and not waiting[1].done():
                waiting[1].set_result(None)

    def _unwatch(self, wd: int, future: asyncio.Future[None]) -> None:
        waiting = self._waiting.get(wd)
        if waiting is not None and waiting[1] is future:
            del self._waiting[wd]
            # The directory may already be gone (its watch went with it).
            with contextlib.suppress(OSError):
                self._inotify.rm_watch(wd)
