"""The `default` format: request body on stdin, response on stdout, log on stderr.

Protocol logic only (no sockets, no Docker): the function's environment, and the
collection of its output against the response and log limits. The environment holds
Fn's variables (FN_*) and IronFunctions' (REQUEST_URL, ROUTE, METHOD, APP_NAME, CALL_ID,
HEADER_*, PARAM_*), so functions written for either read what they expect.
"""

from __future__ import annotations

import struct

from executor.calls import Call
from executor.formats.environment import add_headers, call_variables, env_name, with_config
from executor.models import App, Route, rfc3339

# Docker's attach stream numbers, as DockerEngine's Stdio.read returns them.
STDOUT = 1
STDERR = 2


def header_env_name(header: str) -> str:
    return "FN_HEADER_" + env_name(header)


# Where a pre-started container finds the launcher (images/launcher/launch.c), its
# entrypoint, bind-mounted read-only; the header's magic; the nonce's size, and that of
# the trailer the launcher ends stdout and stderr with (the nonce, the exit status).
LAUNCHER_PATH = "/.executor/launch"
LAUNCHER_MAGIC = b"EXR1"
NONCE_SIZE = 16
TRAILER_SIZE = NONCE_SIZE + 4


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


def static_environment(app: App, route: Route) -> dict[str, str]:
    """What a pre-started container is created with: the variables the same for every
    call of the route. The launcher header brings the whole `environment(call)` over them,
    so the function sees exactly what a cold container of the call would."""
    env = {
        "FN_APP_NAME": app.name,
        "FN_PATH": route.path,
        "FN_FORMAT": "default",
        "FN_MEMORY": str(route.memory),
        "FN_TYPE": route.type,
        "APP_NAME": app.name,
        "ROUTE": route.path,
    }
    return with_config(env, app, route)


def launcher_header(env: dict[str, str], nonce: bytes) -> bytes:
    """The frame a pre-started container's launcher reads before the body: the magic, the
    nonce its trailers will carry, a 4-byte big-endian length, then NUL-terminated
    KEY=VALUE entries."""
    assert len(nonce) == NONCE_SIZE
    entries = b"".join(f"{key}={value}".encode() + b"\0" for key, value in env.items())
    return LAUNCHER_MAGIC + nonce + struct.pack(">I", len(entries)) + entries


class Output:
    """Collects a container's stdout (the response) and stderr (the log), each capped.

    `add` returns False once stdout has passed its limit: the caller kills the container
    and answers 502. stderr past its limit is dropped and counted, never an error.

    With a launcher's `nonce` (a pre-started container), each stream ends with the
    launcher's trailer once the program has exited: `exit_status` is then known (both
    trailers in, so neither stream has more of the program's output to come), and the
    trailers are not part of the body or the log.
    """

    def __init__(self, max_body: int, max_log: int, nonce: bytes | None = None) -> None:
        self._max_body = max_body
        self._max_log = max_log
        self._nonce = nonce
        self._body = bytearray()
        self._log = bytearray()
        self._log_tail = b""  # stderr's last TRAILER_SIZE bytes, kept or not
        self._dropped = 0
        self._ended: dict[int, int] = {}  # stream -> exit status of its trailer

    def add(self, stream: int, data: bytes) -> bool:
        if stream == STDERR:
            room = self._max_log - len(self._log)
            self._log += data[: max(room, 0)]
            self._dropped += max(len(data) - max(room, 0), 0)
            if self._nonce is not None:
                self._log_tail = (self._log_tail + data)[-TRAILER_SIZE:]
                self._check_trailer(STDERR, self._log_tail)
            return True
        allowed = self._max_body + (TRAILER_SIZE if self._nonce is not None else 0)
        if len(self._body) + len(data) > allowed:
            return False
        self._body += data
        if self._nonce is not None:
            self._check_trailer(STDOUT, self._body[-TRAILER_SIZE:])
        return True

    def _check_trailer(self, stream: int, tail: bytes) -> None:
        if len(tail) == TRAILER_SIZE and tail[:NONCE_SIZE] == self._nonce:
            self._ended[stream] = int.from_bytes(tail[NONCE_SIZE:], "big")
        else:
            self._ended.pop(stream, None)  # more came after what looked like one

    @property
    def exit_status(self) -> int | None:
        """The program's exit status from the launcher's trailers; None until both are in
        (or without a launcher)."""
        if len(self._ended) == 2 and self._ended[STDOUT] == self._ended[STDERR]:
            return self._ended[STDOUT]
        return None

    @property
    def too_large(self) -> bool:
        return len(self.body) > self._max_body

    @property
    def body(self) -> bytes:
        if STDOUT in self._ended:
            return bytes(self._body[:-TRAILER_SIZE])
        return bytes(self._body)

    @property
    def log_dropped(self) -> int:
        if STDERR in self._ended and self._dropped:
            return max(self._dropped - TRAILER_SIZE, 0)
        return self._dropped

    @property
    def log(self) -> bytes:
        log = bytes(self._log)
        if STDERR in self._ended and not self._dropped:
            log = log[:-TRAILER_SIZE]
        elif STDERR in self._ended:
            # The trailer was (partly) dropped past the cap: cut what of it was kept.
            kept = TRAILER_SIZE - min(self._dropped, TRAILER_SIZE)
            log = log[: len(log) - kept]
        if self.log_dropped:
            return log + f"\n[{self.log_dropped} bytes dropped]\n".encode()
        return log
