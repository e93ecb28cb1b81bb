"""The `default` format: request body on stdin, response on stdout, log on stderr.

Protocol logic only (no sockets, no Docker): the function's environment, and the
collection of its output against the response and log limits. The environment holds
Fn's variables (FN_*) and IronFunctions' (REQUEST_URL, ROUTE, METHOD, APP_NAME, CALL_ID,
HEADER_*, PARAM_*), so functions written for either read what they expect.
"""

from __future__ import annotations

from executor.calls import Call
from executor.formats.environment import add_headers, call_variables, env_name, with_config
from executor.models import rfc3339

# Docker's attach stream numbers, as DockerEngine's Stdio.read returns them.
STDOUT = 1
STDERR = 2


def header_env_name(header: str) -> str:
    return "FN_HEADER_" + env_name(header)


def environment(call: Call) -> dict[str, str]:
    """FN_* variables and IronFunctions' per-call ones, then the app's config, then the
    route's (later ones win)."""
    route = call.route
    env = {
        "FN_APP_NAME": call.app.name,
        "FN_PATH": route.path,
        "FN_FORMAT": "default",
        "FN_MEMORY": str(route.memory),
        "FN_TYPE": route.type,
        "FN_CALL_ID": call.id,
        "FN_DEADLINE": rfc3339(call.deadline_utc),
        "FN_METHOD": call.method,
        "FN_REQUEST_URL": call.url,
    }
    add_headers(env, "FN_HEADER_", call.headers)
    env.update(call_variables(call))
    return with_config(env, call.app, route)


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
