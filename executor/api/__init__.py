"""HTTP handlers only: parse the request, call the core, render the answer."""

from __future__ import annotations

from aiohttp import web

from executor.api import admin, auth, calls, errors, health, invoke, live, metrics, openapi, ui

__all__ = ["auth", "errors", "setup_routes"]


def setup_routes(app: web.Application) -> None:
    health.setup(app)
    admin.setup(app)
    calls.setup(app)
    live.setup(app)
    ui.setup(app)
    metrics.setup(app)
    openapi.setup(app)
    invoke.setup(app)
