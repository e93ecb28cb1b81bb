"""`ANY /r/{app}/{path}`: a call of a route, answered with the function's response."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from executor.api.auth import require_token_for
from executor.api.errors import exception_response, json_response
from executor.calls import HOP_BY_HOP, Call
from executor.errors import ExecutorError, PayloadTooLarge, RequestTimeout
from executor.routing import clean_path
from executor.state import EXECUTOR

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "text/plain; charset=utf-8"
# A body up to this size goes to the transport in one piece; a larger one is written in
# pieces of PIECE bytes as the caller takes them.
SEND_AT_ONCE = 256 * 1024
PIECE = 64 * 1024


def setup(app: web.Application) -> None:
    app.router.add_route("*", "/r/{app}/{path:.+}", invoke)


async def invoke(request: web.Request) -> web.StreamResponse:
    # The deadline counts from here. time.monotonic() is the loop's clock (uvloop's only
    # rounds it to the millisecond), without get_running_loop()'s getpid() system call.
    arrived = time.monotonic()
    received = time.perf_counter()
    executor = request.app[EXECUTOR]
    registry = executor.registry
    app_name, path = request.match_info["app"], clean_path(request.match_info["path"])
    route, params = await registry.match_latest(app_name, path)
    require_token_for(request, route)
    body = await _read_body(request, executor.settings.max_request_bytes, arrived + route.timeout)
    if not body and "payload" in request.query:
        body = request.query["payload"].encode()  # IronFunctions' runner does this
    # The route may have changed or gone while the body arrived: a deleted route stays
    # deleted (its pool is not brought back), a changed one serves with its new fields.
    route, params = registry.match(app_name, path)
    call = Call(
        app=registry.app(route.app_name),
        route=route,
        method=request.method,
        # As the caller sent it (raw path and query), without building a yarl URL.
        url=f"{request.scheme}://{request.host}{request.raw_path}",
        headers=[(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP],
        body=body,
        arrived=arrived,
        received=received,
        params=params,
    )
    # Fn's `Fn-Invoke-Type: detached` makes one call of a sync route async.
    if route.type == "async" or request.headers.get("Fn-Invoke-Type", "").lower() == "detached":
        return await _submit(request, call)
    try:
        result = await executor.invoker.invoke(call)
    except ExecutorError as exc:
        return exception_response(exc, _call_headers(request, call))
    headers = [*result.headers, *_call_headers(request, call)]
    if not any(name.lower() == "content-type" for name, _ in result.headers):
        headers.append(("Content-Type", DEFAULT_CONTENT_TYPE))
    if result.rest is None:
        if len(result.body) <= SEND_AT_ONCE:
            return web.Response(status=result.status, body=result.body, headers=headers)
        # The container is free already: the caller gets send_timeout to read the body.
        response = web.StreamResponse(status=result.status, headers=headers)
        response.content_length = len(result.body)
        await _stream(request, response, result.body, None, executor.settings.send_timeout)
        return response
    # The rest still comes from the function's container, which is held until it is
    # read: the caller has until the call's deadline.
    response = web.StreamResponse(status=result.status, headers=headers)
    await _stream(request, response, result.body, result.rest, call.deadline - time.monotonic())
    return response


async def _submit(request: web.Request, call: Call) -> web.Response:
    """An async call: 202 once the store holds it, with where its record will be."""
    try:
        await request.app[EXECUTOR].async_calls.submit(call)
    except ExecutorError as exc:
        return exception_response(exc, _call_headers(request, call))
    location = f"/v1/apps/{call.app.name}/calls/{call.id}"
    return json_response(
        {"call_id": call.id},
        status=202,
        headers=[("Location", location), *_call_headers(request, call)],
    )


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    start: bytes,
    rest: AsyncIterator[bytes] | None,
    within: float,
) -> None:
    """A large response, written in pieces as the caller reads them (so a slow caller
    holds one copy of the body, not a second in the transport's buffer), for at most
    `within` seconds. Once the head is sent a failure cannot change the status: the
    connection is cut, so the caller sees a truncated body rather than a complete-looking
    one."""
    try:
        async with asyncio.timeout(max(within, 0.0)):
            await response.prepare(request)
            view = memoryview(start)
            for i in range(0, len(view), PIECE):
                await response.write(view[i : i + PIECE])
            if rest is not None:
                async with contextlib.aclosing(rest):
                    async for part in rest:
                        await response.write(part)
            await response.write_eof()
    except ExecutorError as exc:
        log.warning("response of call cut off: %s", exc.message)
        _cut(request)
    except TimeoutError:
        log.info("caller did not read the response within %.1f s: cut off", within)
        _cut(request)


def _cut(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


def _call_headers(request: web.Request, call: Call) -> list[tuple[str, str]]:
    return [
        ("Fn-Call-Id", call.id),
        ("Executor-Start", call.start or "cold"),
        ("Executor-Instance", request.app[EXECUTOR].identity.instance),
        ("Executor-Wait-Ms", f"{call.wait_ms:.3f}"),
    ]


async def _read_body(request: web.Request, limit: int, deadline: float) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass the limit, and
    with 408 when it has not all arrived by the call's deadline (loop time)."""
    if request.content.is_eof():  # all in already (most calls): no timer to set
        return await _read_limited(request, limit)
    try:
        async with asyncio.timeout_at(deadline):
            return await _read_limited(request, limit)
    except TimeoutError:
        raise RequestTimeout("request body not received before the call's deadline") from None


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None:
        if request.content_length > limit:
            raise PayloadTooLarge(f"request body over the limit of {limit} bytes")
        return await request.read()  # within the limit, read in one piece
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)  # the one copy of the body
