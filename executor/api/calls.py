"""Call records: `/v1/apps/{app}/calls[/{id}[/log]]`, and `/v1/calls/{id}[/log]` for a call
known by its id alone (`executor logs CALL_ID`)."""

from __future__ import annotations

from typing import Any, get_args

from aiohttp import web

from executor.api.errors import json_response
from executor.calls import NO_START, CallState, StartKind
from executor.errors import Conflict, InvalidInput, NotFound
from executor.state import EXECUTOR
from executor.store.calls import Records, parse_since

PER_PAGE_DEFAULT = 30
PER_PAGE_MAX = 100
FILTERS = frozenset({"route", "state", "start", "since", "cursor", "per_page"})
STATES = frozenset(get_args(CallState))
STARTS = frozenset({*get_args(StartKind), NO_START})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/apps/{app}/calls", list_calls)
    r.add_get("/v1/apps/{app}/calls/{call}", get_call)
    r.add_delete("/v1/apps/{app}/calls/{call}", cancel_call)
    r.add_get("/v1/apps/{app}/calls/{call}/log", get_log)
    r.add_get("/v1/apps/{app}/calls/{call}/response", get_response)
    r.add_get("/v1/calls/{call}", get_call)
    r.add_get("/v1/calls/{call}/log", get_log)
    r.add_get("/v1/calls/{call}/response", get_response)


async def list_calls(request: web.Request) -> web.Response:
    app = request.app[EXECUTOR].registry.app(request.match_info["app"]).name
    query = request.query
    unknown = sorted(set(query) - FILTERS)
    if unknown:
        raise InvalidInput(f"unknown query parameter(s): {', '.join(unknown)}")
    route = query.get("route")
    if route is not None and not route.startswith("/"):
        route = "/" + route
    calls, next_cursor = await _records(request).list(
        app,
        route=route,
        state=_one_of(query, "state", STATES),
        start=_one_of(query, "start", STARTS),
        since=_since(query.get("since")),
        cursor=query.get("cursor") or None,
        limit=_per_page(query.get("per_page")),
    )
    return json_response({"calls": calls, "next_cursor": next_cursor})


async def get_call(request: web.Request) -> web.Response:
    return json_response({"call": await _call(request)})


async def cancel_call(request: web.Request) -> web.Response:
    call = await _call(request)
    if await request.app[EXECUTOR].async_calls.cancel(call["id"]):
        return json_response({"call": await _call(request)})
    raise Conflict(f"call {call['id']} is {call['state']}: only a queued call can be cancelled")


async def get_response(request: web.Request) -> web.Response:
    """An async call's response as the function gave it (its body up to the kept size).
    The call's own status is in `Executor-Call-Status`: this answer is 200."""
    call = await _call(request)
    kept = await _records(request).response(call["id"])
    if kept is None:
        raise NotFound(f"call {call['id']} has no response kept (it is {call['state']})")
    headers = [*kept.headers, ("Executor-Call-Status", str(kept.status))]
    if kept.truncated:
        headers.append(("Executor-Response-Truncated", "true"))
    return web.Response(body=kept.body, headers=headers)


async def get_log(request: web.Request) -> web.StreamResponse:
    call = await _call(request)
    text = await _records(request).log(call["id"])
    if "text/plain" in request.headers.get("Accept", ""):
        return web.Response(text=text, content_type="text/plain")
    return json_response({"log": {"call_id": call["id"], "log": text}})


async def _call(request: web.Request) -> dict[str, Any]:
    app = request.match_info.get("app")
    if app is not None:
        request.app[EXECUTOR].registry.app(app)  # 404 for an unknown app
    call_id = request.match_info["call"]
    call = await _records(request).get(call_id, app)
    if call is None:
        raise NotFound(f"call {call_id!r} not found")
    return call


def _records(request: web.Request) -> Records:
    return request.app[EXECUTOR].records


def _one_of(query: Any, name: str, allowed: frozenset[str]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise InvalidInput(f"{name}: expected one of {', '.join(sorted(allowed))}")
    return value


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _per_page(value: str | None) -> int:
    if value is None:
        return PER_PAGE_DEFAULT
    # isdigit() alone takes '²' and other digits int() refuses.
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= PER_PAGE_MAX:
        raise InvalidInput(f"per_page: expected a whole number from 1 to {PER_PAGE_MAX}")
    return int(value)
