"""Structured logs (structlog): console or JSON lines on stderr, the call id on every line
a call causes, and the access log.

The code logs through the standard library's loggers; structlog renders their records
(`ProcessorFormatter`), merging what the current context has bound: the invoker binds
`call_id` for the length of a call, and the tasks a call starts inherit it.
"""

from __future__ import annotations

import logging
from typing import Literal

import orjson
import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(level: str, format: Literal["console", "json"]) -> None:
    if format == "json":
        renderer: structlog.typing.Processor = structlog.processors.JSONRenderer(
            serializer=lambda data, **_: orjson.dumps(data, default=str).decode()
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_SHARED,
            structlog.stdlib.ExtraAdder(),  # `extra=` fields (the access log's)
            structlog.processors.format_exc_info,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# Logged at debug level when answered 200.
QUIET_PATH = "/v1/stats"


class AccessLogger(AbstractAccessLogger):
    """One line per request, with the call id of invocations (`Fn-Call-Id`)."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)  # else aiohttp skips the call

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {
            "method": request.method,
            "path": request.path_qs,
            "status": response.status,
            "duration_ms": round(time * 1000, 3),
            "remote": request.remote,
        }
        call_id = response.headers.get("Fn-Call-Id")
        if call_id is not None:
            fields["call_id"] = call_id
        if response.status == 200 and request.path == QUIET_PATH:
            # An open dashboard polls its live view every second: 86,400 lines a day.
            self.logger.debug("request", extra=fields)
            return
        self.logger.info("request", extra=fields)
