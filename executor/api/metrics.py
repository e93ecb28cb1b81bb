"""`GET /metrics`: the Prometheus text format."""

from __future__ import annotations

from aiohttp import web

from executor.metrics import CONTENT_TYPE
from executor.state import EXECUTOR


def setup(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[EXECUTOR].metrics.render(), headers={"Content-Type": CONTENT_TYPE}
    )
