"""`ANY /r/{app}/{path}`: a call of a route, answered with the function's response."""

from __future__ import annotations

import asyncio

from aiohttp import web

from executor.api.errors import error_response
from executor.calls import Call
from executor.errors import ExecutorError, PayloadTooLarge
from executor.state import IDENTITY, INVOKER, REGISTRY, SETTINGS

# Not passed to a function: they describe this hop only, or carry credentials.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "authorization",
    }
)
DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"


def setup(app: web.Application) -> None:
    app.router.add_route("*", "/r/{app}/{path:.+}", invoke)


async def invoke(request: web.Request) -> web.Response:
    arrived = asyncio.get_running_loop().time()  # the deadline counts from here
    registry = request.app[REGISTRY]
    route = registry.route(request.match_info["app"], "/" + request.match_info["path"])
    body = await _read_body(request, request.app[SETTINGS].max_request_bytes)
    call = Call(
        app=registry.app(route.app_name),
        route=route,
        method=request.method,
        url=str(request.url),
        headers=[(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP],
        body=body,
        arrived=arrived,
    )
    try:
        result = await request.app[INVOKER].invoke(call)
    except ExecutorError as exc:
        return error_response(exc.status, exc.message, _call_headers(request, call))
    response = web.Response(status=result.status, body=result.body)
    for name, value in result.headers:
        response.headers.add(name, value)
    if "Content-Type" not in response.headers:
        response.headers["Content-Type"] = DEFAULT_CONTENT_TYPE
    for name, value in _call_headers(request, call):
        response.headers[name] = value
    return response


def _call_headers(request: web.Request, call: Call) -> list[tuple[str, str]]:
    return [
        ("Fn-Call-Id", call.id),
        ("Executor-Start", call.start or "cold"),
        ("Executor-Instance", request.app[IDENTITY].instance),
        ("Executor-Wait-Ms", f"{call.wait_ms:.3f}"),
    ]


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass the limit."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)  # the one copy of the body
