"""Every error leaves as `{"error": {"message": ...}}` with its status, never a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import orjson
from aiohttp import web

from executor.errors import ExecutorError, RequestTimeout, TooManyRequests

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The API's own answers are data, never a page: a browser that opens one runs nothing
# in it and frames it nowhere (the dashboard's policy is in ui.py). A function's own
# response passes as the function gave it.
API_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
)


def json_response(
    data: object, status: int = 200, headers: Iterable[tuple[str, str]] = ()
) -> web.Response:
    response = web.Response(body=orjson.dumps(data), status=status, content_type="application/json")
    for name, value in (*API_HEADERS, *headers):
        response.headers.add(name, value)
    return response


def error_response(
    status: int, message: str, headers: Iterable[tuple[str, str]] = ()
) -> web.Response:
    return json_response({"error": {"message": message}}, status, headers)


def exception_response(exc: ExecutorError, headers: Iterable[tuple[str, str]] = ()) -> web.Response:
    """The error's answer, with the headers its status calls for."""
    response = error_response(exc.status, exc.message, headers)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="executor"'
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def read_within(request: web.Request, seconds: float) -> bytes:
    """The request body, or 408 if it has not all arrived within `seconds`: a body that
    never finishes must not hold a handler (and its memory) for ever."""
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout(f"request body not received within {seconds:g} s") from None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ExecutorError as exc:
        return exception_response(exc)
    except ConnectionResetError:
        # The client went away mid-request (its body cut short): nobody reads this answer.
        log.info("client disconnected during %s %s", request.method, request.path)
        return error_response(400, "client disconnected before the request was complete")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {
            404: "not found",
            405: f"method {request.method} not allowed on {request.path}",
            413: "request body too large",
        }.get(exc.status, exc.reason)
        response = error_response(exc.status, message)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error")
