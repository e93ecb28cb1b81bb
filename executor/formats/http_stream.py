"""The `http-stream` format (the Fn Project's): HTTP/1.1 over a unix socket in /tmp/iofs.

Protocol logic only (no sockets, no Docker): the container's environment, the bytes of a
`POST /call` request head, and what a container's response head means for the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from executor.calls import HOP_BY_HOP, Call
from executor.formats.environment import with_config
from executor.models import App, Route, rfc3339

IOFS_MOUNT = "/tmp/iofs"
# The log frame an FDK prints when a call starts (formats/logframe.py).
LOGFRAME_NAME = "FN_CALL_ID"
SOCKET_NAME = "lsnr.sock"
LISTENER = f"unix:{IOFS_MOUNT}/{SOCKET_NAME}"

# Not taken from a function's `Fn-Http-H-*`: the executor frames the response itself.
NOT_FROM_FUNCTION = HOP_BY_HOP | {"content-length"}

_HEAD_START = b"POST /call HTTP/1.1\r\nHost: localhost\r\nFn-Intent: httprequest\r\n"


def environment(app: App, route: Route) -> dict[str, str]:
    """FN_* variables of a hot container, then the app's config, then the route's."""
    env = {
        "FN_FORMAT": "http-stream",
        "FN_LISTENER": LISTENER,
        "FN_APP_NAME": app.name,
        "FN_FN_NAME": route.path,
        "FN_APP_ID": app.id,
        "FN_FN_ID": route.id,
        "FN_MEMORY": str(route.memory),
        "FN_TYPE": route.type,
        "FN_LOGFRAME_NAME": LOGFRAME_NAME,
        "FN_LOGFRAME_HDR": "Fn-Call-Id",
    }
    return with_config(env, app, route)


def request_head(
    *,
    call_id: str,
    deadline: datetime,
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    content_length: int,
    params: dict[str, str] | None = None,
) -> bytes:
    """The head of one `POST /call`: always a Content-Length, never chunked (a function
    built on Python's http.server reads nothing from a chunked body)."""
    lines = [
        f"Fn-Call-Id: {call_id}",
        f"Fn-Deadline: {rfc3339(deadline)}",
        f"Fn-Http-Method: {method}",
        f"Fn-Http-Request-Url: {url}",
        f"Content-Length: {content_length}",
    ]
    # The route's `:name` segments: Fn-Param-<name> (no caller's header can look alike,
    # theirs all come as Fn-Http-H-*).
    lines += [f"Fn-Param-{name}: {value}" for name, value in (params or {}).items()]
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower == "content-length":
            continue
        if lower == "content-type":
            lines.append(f"Content-Type: {value}")
        lines.append(f"Fn-Http-H-{name}: {value}")
    lines.append("\r\n")
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: this gives them back.
    return _HEAD_START + "\r\n".join(lines).encode("utf-8", "surrogateescape")


def call_head(call: Call) -> bytes:
    """`request_head` for one call (the hot pool's way in, as `http.call_head`)."""
    return request_head(
        call_id=call.id,
        deadline=call.deadline_utc,
        method=call.method,
        url=call.url,
        headers=call.headers,
        content_length=len(call.body),
        params=call.params,
    )


class ProtocolError(Exception):
    """The container's answer breaks the format: the container is replaced, 502."""


def _status(raw: bytes) -> int:
    try:
        status = int(raw)
    except ValueError:
        status = 0
    check_status(status, f"Fn-Http-Status {raw.decode('latin-1')!r}")
    return status


def check_status(status: int, what: str) -> None:
    # 1xx is no final answer (101 would leave the caller waiting for a protocol switch).
    if not 200 <= status <= 599:
        raise ProtocolError(f"invalid {what}")


@dataclass(frozen=True, slots=True)
class Answer:
    """What a container's response head means for the caller."""

    status: int  # the caller's status
    headers: list[tuple[str, str]]
    # "ok": the function's answer; "error": the function reported an error (502, the
    # container stays); "timeout": the function gave up on its deadline (504).
    outcome: str


def interpret(status: int, headers: list[tuple[bytes, bytes]]) -> Answer:
    """Maps a container's response status and headers to the caller's answer.

    200 carries the function's status in `Fn-Http-Status` and its headers as
    `Fn-Http-H-<Name>`; `Content-Type` passes as it came. 502 and 504 are the function's
    own error and timeout. Anything else breaks the protocol.
    """
    if status == 502:
        return Answer(502, [], "error")
    if status == 504:
        return Answer(504, [], "timeout")
    if status != 200:
        raise ProtocolError(f"container answered HTTP {status}")
    out: list[tuple[str, str]] = []
    content_type: bytes | None = None
    caller_status = 200
    # Names compared as bytes: only the headers passed on are decoded.
    for raw_name, raw_value in headers:
        lower = raw_name.lower()
        if lower == b"fn-http-status":
            caller_status = _status(raw_value)
        elif lower.startswith(b"fn-http-h-"):
            real = lower[10:]
            if real == b"content-type":
                content_type = content_type or raw_value
            elif real and real.decode("latin-1") not in NOT_FROM_FUNCTION:
                out.append((raw_name[10:].decode("latin-1"), raw_value.decode("latin-1")))
        elif lower == b"content-type":
            content_type = raw_value  # as it came, over any Fn-Http-H-Content-Type
    if content_type is not None:
        out.append(("Content-Type", content_type.decode("latin-1")))
    return Answer(caller_status, out, "ok")
