"""The `default` format: request body on stdin, response on stdout, log on stderr.

Protocol logic only (no sockets, no Docker): the function's environment, and the
collection of its output against the response and log limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from executor.models import App, Route, rfc3339

# Docker's attach stream numbers, as DockerEngine's Stdio.read returns them.
STDOUT = 1
STDERR = 2

_NOT_ENV = re.compile(r"[^A-Z0-9_]")


def header_env_name(header: str) -> str:
    return "FN_HEADER_" + _NOT_ENV.sub("_", header.upper())


def environment(
    *,
    app: App,
    route: Route,
    call_id: str,
    deadline: datetime,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
) -> dict[str, str]:
    """FN_* variables, then the app's config, then the route's (later ones win)."""
    env = {
        "FN_APP_NAME": app.name,
        "FN_PATH": route.path,
        "FN_FORMAT": "default",
        "FN_MEMORY": str(route.memory),
        "FN_TYPE": route.type,
        "FN_CALL_ID": call_id,
        "FN_DEADLINE": rfc3339(deadline),
        "FN_METHOD": method,
        "FN_REQUEST_URL": url,
    }
    for name, value in headers:
        key = header_env_name(name)
        # A repeated header becomes one comma-separated value, as HTTP allows.
        env[key] = f"{env[key]}, {value}" if key in env else value
    env.update(app.config)
    env.update(route.config)
    return env


class Output:
    """Collects a container's stdout (the response) and stderr (the log), each capped.

    `add` returns False once stdout has passed its limit: the caller kills the container
    and answers 502. stderr past its limit is dropped and counted, never an error.
    """

    def __init__(self, max_body: int, max_log: int) -> None:
        self._max_body = max_body
        self._max_log = max_log
        self._body = bytearray()
        self._log = bytearray()
        self.log_dropped = 0

    def add(self, stream: int, data: bytes) -> bool:
        if stream == STDERR:
            room = self._max_log - len(self._log)
            self._log += data[: max(room, 0)]
            self.log_dropped += max(len(data) - max(room, 0), 0)
            return True
        if len(self._body) + len(data) > self._max_body:
            return False
        self._body += data
        return True

    @property
    def body(self) -> bytes:
        return bytes(self._body)

    @property
    def log(self) -> bytes:
        if self.log_dropped:
            return bytes(self._log) + f"\n[{self.log_dropped} bytes dropped]\n".encode()
        return bytes(self._log)
