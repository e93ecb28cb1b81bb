"""`/`, `/health/live`, `/health/ready`, and IronFunctions' `/version` and `/stats`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from executor import __version__
from executor.api.errors import error_response, json_response
from executor.docker.engine import EngineError
from executor.state import EXECUTOR

READY_CHECK_TIMEOUT = 2.0


def setup(app: web.Application) -> None:
    app.router.add_get("/", root)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/version", version)
    app.router.add_get("/stats", stats)


async def root(request: web.Request) -> web.Response:
    # The instance is the `Executor-Instance` of this process's calls and the
    # `executor.instance` label of its containers: which node answers, behind a balancer.
    instance = request.app[EXECUTOR].identity.instance
    return json_response({"name": "executor", "version": __version__, "instance": instance})


async def version(request: web.Request) -> web.Response:
    """IronFunctions' `GET /version`."""
    return json_response({"version": __version__})


async def stats(request: web.Request) -> web.Response:
    """IronFunctions' `GET /stats`: calls queued (async), running, complete, failed (the
    API token guards it, auth.py)."""
    executor = request.app[EXECUTOR]
    return json_response(executor.stats.snapshot(executor.async_calls.queued_by_route()))


async def live(request: web.Request) -> web.Response:
    return json_response({"status": "live"})


async def ready(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT):
            await request.app[EXECUTOR].store.ping()
    except Exception as exc:  # any failure of the store means not ready
        return error_response(503, f"store not ready: {exc!r}")
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT):
            await request.app[EXECUTOR].engine.version()
    except TimeoutError:
        return error_response(503, "Docker engine did not answer in time")
    except EngineError as exc:
        return error_response(503, exc.message)
    if not request.app[EXECUTOR].events.connected.is_set():
        return error_response(503, "Docker event stream not connected")
    return json_response({"status": "ready"})
