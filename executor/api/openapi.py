"""`GET /openapi.json`: the OpenAPI 3 document of the whole HTTP API.

Its paths and methods are the router's own table, and payload schemas come from the
pydantic models that validate them, so the document cannot drift from what the server
serves and accepts. What each handler does and answers is written out here, once per
handler (`OPERATIONS`); a route whose handler has none fails the start.
"""

from __future__ import annotations

import re
from typing import Any, get_args

import orjson
from aiohttp import web

from executor import __version__
from executor.api import admin, calls, health, invoke, live, metrics, ui
from executor.calls import CallState
from executor.models import App, AppSpec, Route, RouteSpec

REF = "#/components/schemas/"
CALL_STATES = list(get_args(CallState))


def setup(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi)
    # Built once the router holds every route (and checked then: a start with an
    # undocumented route fails).
    app.on_startup.append(_build_document)


async def _build_document(app: web.Application) -> None:
    app[DOCUMENT] = orjson.dumps(build(app.router))


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[DOCUMENT], content_type="application/json")


DOCUMENT = web.AppKey("openapi", bytes)
# Methods of a route added for any method ("*"): the function call.
ANY_METHOD = ("get", "post", "put", "patch", "delete")


def _model(model: type, *, exclude: tuple[str, ...] = (), optional: bool = False) -> dict:
    schema = model.model_json_schema(mode="validation")
    schema.pop("title", None)
    for name in exclude:
        schema["properties"].pop(name, None)
    required = [r for r in schema.get("required", []) if r not in exclude]
    if optional or not required:
        schema.pop("required", None)
    else:
        schema["required"] = required
    for prop in schema["properties"].values():
        prop.pop("title", None)
    return schema


def _with(schema: dict, **properties: dict) -> dict:
    schema["properties"].update(properties)
    return schema


def _envelope(key: str, schema: str) -> dict:
    # `message` and `error`: what an answer carries, accepted (and ignored) sent back.
    return {
        "type": "object",
        "required": [key],
        "properties": {
            key: {"$ref": REF + schema},
            "message": {"type": "string"},
            "error": {},
        },
        "additionalProperties": False,
    }


def _json(schema: dict | str, description: str = "OK") -> dict:
    if isinstance(schema, str):
        schema = {"$ref": REF + schema}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = {"$ref": "#/components/responses/Error"}


def _errors(*statuses: int) -> dict:
    """401 on every operation (with a token set); 408 where one reads a body whose
    arrival passes the API's body timeout."""
    return {str(s): ERROR for s in sorted({401, *statuses})}


def _op(summary: str, responses: dict, body: dict | None = None, **extra: Any) -> dict:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _param(name: str, where: str = "path", schema: dict | None = None, **extra: Any) -> dict:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema or {"type": "string"},
        **extra,
    }


APP_NAME = _param("app", schema={"type": "string", "pattern": "^[A-Za-z0-9_-]{1,30}$"})
ROUTE_PATH = _param(
    "path",
    schema={"type": "string"},
    description="The route's path without its leading slash (it may hold more slashes).",
)
CALL_ID = _param("call")
UI_NAME = _param("name", description="A file of the dashboard (app.js, style.css).")
PATH_PARAMETERS = {"app": APP_NAME, "path": ROUTE_PATH, "call": CALL_ID, "name": UI_NAME}
PLACEHOLDER = re.compile(r"{(\w+)(?::[^}]*)?}")


def build(router: web.UrlDispatcher) -> dict[str, Any]:
    record_props: dict[str, Any] = dict(
        id={"type": "string"},
        app={"type": "string"},
        route={"type": "string"},
        method={"type": "string"},
        state={"enum": CALL_STATES},
        http_status={"type": ["integer", "null"]},
        start={"enum": ["cold", "warm", "fresh", None]},
        container_id={"type": ["string", "null"]},
        created_at={"type": "string", "format": "date-time"},
        started_at={"type": ["string", "null"]},
        completed_at={"type": ["string", "null"]},
        wait_ms={"type": ["number", "null"]},
        start_ms={"type": ["number", "null"]},
        exec_ms={"type": ["number", "null"]},
        error={"type": ["string", "null"]},
        node={
            "type": ["string", "null"],
            "description": "The node (executor) that ran the call: its container group.",
        },
    )
    route_out = _model(Route)
    route_out["properties"]["pool"] = {"type": ["object", "null"]}
    route_out["properties"]["max_concurrency"] = {"type": "integer"}
    # IronFunctions' name for max_containers, taken in (0: not set).
    alias = {"type": "integer", "description": "IronFunctions' name for max_containers"}
    message = {"message": {"type": "string"}}
    schemas = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "object", "required": ["message"], "properties": message}
            },
        },
        "AppIn": _model(AppSpec),
        "AppPatch": _model(AppSpec, optional=True),
        "App": _model(App),
        "RouteIn": _with(_model(RouteSpec), max_concurrency=alias),
        "RoutePut": _with(_model(RouteSpec, exclude=("path",)), max_concurrency=alias),
        "RoutePatch": _with(_model(RouteSpec, optional=True), max_concurrency=alias),
        "Route": route_out,
        "Call": {"type": "object", "properties": record_props},
        "LiveStats": _live_stats_schema(),
    }
    with_message = {"type": "object", "properties": message}

    def answer(key: str, schema: str, plural: bool = False) -> dict:
        inner = (
            {"type": "array", "items": {"$ref": REF + schema}} if plural else {"$ref": REF + schema}
        )
        return _json({"type": "object", "properties": {**message, key: inner}, "required": [key]})

    invoke_responses = {
        "200": {"description": "The function's answer, with its status and headers."},
        "202": _json(
            {
                "type": "object",
                "required": ["call_id"],
                "properties": {"call_id": {"type": "string"}},
                "description": "An async call (route `type: async`, or `Fn-Invoke-Type: "
                "detached`), stored; its record is at the `Location` header.",
            }
        ),
        # 408: the body did not arrive by the call's deadline; 429: async calls queued
        # past a bound (with Retry-After).
        **_errors(404, 408, 413, 429, 502, 503, 504),
    }
    calls_query = [
        _param("route", "query"),
        _param("state", "query", {"enum": CALL_STATES}),
        _param("start", "query", {"enum": ["cold", "warm", "fresh", "none"]}),
        _param("since", "query", description="RFC 3339 time or unix seconds"),
        _param("cursor", "query"),
        _param("per_page", "query", {"type": "integer", "minimum": 1, "maximum": 100}),
    ]  # fmt: skip
    calls_list = _json(
        {
            "type": "object",
            "required": ["calls", "next_cursor"],
            "properties": {
                "calls": {"type": "array", "items": {"$ref": REF + "Call"}},
                "next_cursor": {"type": ["string", "null"]},
            },
        }
    )
    log = _json(
        {
            "type": "object",
            "required": ["log"],
            "properties": {
                "log": {
                    "type": "object",
                    "properties": {"call_id": {"type": "string"}, "log": {"type": "string"}},
                }
            },
        }
    )
    kept_response = {
        "description": "The body as the function gave it, with its headers.",
        "content": {"application/octet-stream": {"schema": {"type": "string"}}},
    }
    open_ = {"security": []}
    page = {
        "200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}},
        "404": ERROR,
    }
    call_answer = _json({"type": "object", "properties": {"call": {"$ref": REF + "Call"}}})
    operations = {
        health.root: _op("Name, version and instance.", {"200": _json(with_message)}, **open_),
        health.live: _op("200 while the process runs.", {"200": _json(with_message)}, **open_),
        health.ready: _op(
            "200 when the store and the engine answer, else 503 with the reason.",
            {"200": _json(with_message), "503": ERROR},
            **open_,
        ),
        metrics.metrics: _op(
            "Prometheus text format.",
            {
                "200": {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
            **open_,
        ),
        openapi: _op("This document.", {"200": _json({"type": "object"})}, **open_),
        admin.list_apps: _op(
            "List apps.", {"200": answer("apps", "App", plural=True), **_errors()}
        ),
        admin.create_app: _op(
            "Create an app.",
            {"200": answer("app", "App"), **_errors(400, 408, 409)},
            _envelope("app", "AppIn"),
        ),
        admin.get_app: _op("One app.", {"200": answer("app", "App"), **_errors(404)}),
        admin.update_app: _op(
            "Change an app's config.",
            {"200": answer("app", "App"), **_errors(400, 404, 408)},
            _envelope("app", "AppPatch"),
        ),
        admin.delete_app: _op(
            "Delete an app (409 while it has routes, unless ?force=true).",
            {"200": _json(with_message), **_errors(400, 404, 409)},
            parameters=[_param("force", "query", {"type": "boolean"})],
        ),
        admin.list_routes: _op(
            "List an app's routes (none for an app that does not exist, as IronFunctions).",
            {"200": answer("routes", "Route", plural=True), **_errors()},
        ),
        admin.list_all_routes: _op(
            "Every route of every app; ?image= keeps those of one image.",
            {"200": answer("routes", "Route", plural=True), **_errors()},
            parameters=[_param("image", "query")],
        ),
        health.version: _op(
            "The executor's version (IronFunctions' shape).",
            {"200": _json({"type": "object", "properties": {"version": {"type": "string"}}})},
            **open_,
        ),
        health.stats: _op(
            "Calls queued, running, complete and failed, in all and per route "
            "(IronFunctions' shape; FunctionStatsMap keyed app/path). It names apps and "
            "routes: the API token guards it, when one is set.",
            {"200": _json({"type": "object", "required": ["FunctionStatsMap"]}), **_errors()},
        ),
        admin.create_route: _op(
            "Create a route (the app is created if missing).",
            {"200": answer("route", "Route"), **_errors(400, 408, 409, 503)},
            _envelope("route", "RouteIn"),
        ),
        admin.get_route: _op(
            "One route, with its pool.", {"200": answer("route", "Route"), **_errors(404)}
        ),
        admin.update_route: _op(
            "Change some of a route's fields.",
            {"200": answer("route", "Route"), **_errors(400, 404, 408, 503)},
            _envelope("route", "RoutePatch"),
        ),
        admin.put_route: _op(
            "Create or replace a route.",
            {
                "200": answer("route", "Route"),
                "201": answer("route", "Route"),
                **_errors(400, 408, 503),
            },
            _envelope("route", "RoutePut"),
        ),
        admin.delete_route: _op(
            "Delete a route and its containers.", {"200": _json(with_message), **_errors(404)}
        ),
        calls.list_calls: _op(
            "An app's call records, newest first.",
            {"200": calls_list, **_errors(400, 404)},
            parameters=calls_query,
        ),
        calls.get_call: _op("One call record.", {"200": call_answer, **_errors(404)}),
        calls.cancel_call: _op(
            "Cancel a queued async call (409 once it runs or ran).",
            {"200": call_answer, **_errors(404, 409)},
        ),
        calls.get_log: _op("A call's captured log.", {"200": log, **_errors(404)}),
        calls.get_response: _op(
            "An async call's response, as the function gave it (body up to the kept size); "
            "the call's own status is in Executor-Call-Status.",
            {"200": kept_response, **_errors(404)},
        ),
        live.live_stats: _op(
            "The dashboard's live view of this node: per second over the last window, "
            "every route's totals (or one route's, with ?route=app/path), and every pool's "
            "containers now. Poll with ?after=<the last second you have> to get only newer "
            "ones. Server-Timing: cpu;dur= the CPU this answer cost, in ms.",
            {"200": _json("LiveStats"), **_errors(400)},
            parameters=[
                _param("after", "query", {"type": "integer"}, description="a unix second"),
                _param("route", "query", description="app/path, e.g. demo/hello"),
            ],
        ),
        ui.to_ui: _op("Redirects to /ui/.", {"308": {"description": "To /ui/"}}, **open_),
        ui.ui_asset: _op(
            "The dashboard (its page, script and style; the API it calls needs the token).",
            page,
            **open_,
        ),
        invoke.invoke: _op(
            "Call the route's function: body, query and headers pass through.",
            invoke_responses,
            requestBody={
                "required": False,
                "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            },
        ),
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path")
        if template is None or route.method == "HEAD":
            continue
        # aiohttp's `{path:.+}` is OpenAPI's `{path}`.
        template = PLACEHOLDER.sub(r"{\1}", template)
        item = paths.setdefault(template, {})
        names = PLACEHOLDER.findall(template)
        if names:
            item["parameters"] = [PATH_PARAMETERS[name] for name in names]
        op = operations[route.handler]
        for method in ANY_METHOD if route.method == "*" else (route.method.lower(),):
            item[method] = dict(op)
            if method in ("get", "delete"):
                item[method].pop("requestBody", None)
    return {
        "openapi": "3.1.0",
        "info": {"title": "executor", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "An error, with a message naming its cause.",
                    "content": {"application/json": {"schema": {"$ref": REF + "Error"}}},
                }
            },
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
    }


def _live_stats_schema() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    ms = {"type": "number", "description": "milliseconds"}
    summary = {
        "type": "array",
        "items": {"type": "number"},
        "description": "[calls, p50 ms, p99 ms] of the second",
    }
    second = {
        "type": "object",
        "required": ["t"],
        "properties": {
            "t": {"type": "integer", "description": "the second (unix time) it covers"},
            "calls": {"type": "object", "additionalProperties": count, "description": "by status"},
            "latency": {
                "type": "object",
                "properties": {kind: summary for kind in ("cold", "warm", "fresh", "none")},
                "description": "by start kind",
            },
            "wait": {"type": "array", "items": ms, "description": "container wait [p50, p99]"},
            "starts": count,
            "events": {"type": "object", "additionalProperties": count},
            "reserved": {"type": "integer", "description": "MiB reserved (all, or the route's)"},
            "budget": {"type": "integer", "description": "MiB of the memory budget"},
            "pool": {
                "type": "array",
                "items": count,
                "description": "the route's [idle, busy, starting, waiting] at its end",
            },
        },
    }
    container = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "state": {"enum": ["idle", "busy", "starting"]},
            "age": {"type": "number", "description": "seconds"},
            "calls": count,
        },
    }
    pool = {
        "type": "object",
        "properties": {
            "app": {"type": "string"},
            "path": {"type": "string"},
            "format": {"type": "string"},
            "memory": count,
            "idle": count,
            "busy": count,
            "starting": count,
            "waiting": count,
            "containers": {"type": "array", "items": container},
        },
    }
    return {
        "type": "object",
        "required": ["node", "window", "seconds", "pools", "budget_mib", "reserved_mib"],
        "properties": {
            "node": {"type": "string", "description": "this executor's instance"},
            "now": {"type": ["integer", "null"], "description": "the last second closed"},
            "window": {"type": "integer", "description": "seconds kept"},
            "budget_mib": count,
            "reserved_mib": count,
            "seconds": {"type": "array", "items": second},
            "pools": {"type": "array", "items": pool},
        },
    }
