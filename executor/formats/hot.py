"""Which protocol module a hot format speaks (both give `environment`, `call_head` and
`interpret`): chosen once per pool, not per call."""

from __future__ import annotations

from types import ModuleType

from executor.formats import http, http_stream


def protocol(format: str) -> ModuleType:
    return http if format == "http" else http_stream
