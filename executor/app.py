"""The aiohttp wiring: middlewares, routes, and the executor's lifecycle (runtime.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from executor import api
from executor.config import Settings
from executor.docker.engine import Engine
from executor.runtime import Executor
from executor.state import EXECUTOR


def create_app(settings: Settings, engine: Engine | None = None) -> web.Application:
    app = web.Application(
        middlewares=[api.errors.error_middleware, api.auth.token_middleware],
        client_max_size=settings.max_request_bytes,
    )
    app[EXECUTOR] = Executor(settings, engine)
    app.cleanup_ctx.append(_run)
    app.on_shutdown.append(_drain)
    api.setup_routes(app)
    return app


async def _run(app: web.Application) -> AsyncIterator[None]:
    async with app[EXECUTOR]:
        yield


async def _drain(app: web.Application) -> None:
    # Runs once the listening socket is closed and before aiohttp waits for handlers,
    # so every call in flight is answered (its own result, or 503) before it stops.
    executor = app[EXECUTOR]
    await executor.drain(executor.settings.shutdown_grace)
