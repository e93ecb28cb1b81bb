"""`GET /openapi.json`: the OpenAPI 3 document of the whole HTTP API.

Payload schemas come from the pydantic models that validate them, so the document cannot
drift from what the server accepts; the rest is written out here, operation by operation.
"""

from __future__ import annotations

from typing import Any, get_args

import orjson
from aiohttp import web

from executor import __version__
from executor.calls import CallState
from executor.models import App, AppSpec, Route, RouteSpec

REF = "#/components/schemas/"
CALL_STATES = list(get_args(CallState))


def setup(app: web.Application) -> None:
    document = orjson.dumps(build())

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    app.router.add_get("/openapi.json", openapi)


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


def _envelope(key: str, schema: str) -> dict:
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"$ref": REF + schema}},
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


def build() -> dict[str, Any]:
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
    )
    route_out = _model(Route)
    route_out["properties"]["pool"] = {"type": ["object", "null"]}
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
        "RouteIn": _model(RouteSpec),
        "RoutePut": _model(RouteSpec, exclude=("path",)),
        "RoutePatch": _model(RouteSpec, optional=True),
        "Route": route_out,
        "Call": {"type": "object", "properties": record_props},
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
    invoke = {
        method: _op(
            "Call the route's function: body, query and headers pass through.",
            invoke_responses,
            parameters=[APP_NAME, ROUTE_PATH],
        )
        for method in ("get", "post", "put", "patch", "delete")
    }
    for op in invoke.values():
        op["requestBody"] = {
            "required": False,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    invoke["get"].pop("requestBody")
    invoke["delete"].pop("requestBody")

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
    paths = {
        "/": {"get": _op("Name, version and instance.", {"200": _json(with_message)}, **open_)},
        "/health/live": {
            "get": _op("200 while the process runs.", {"200": _json(with_message)}, **open_)
        },
        "/health/ready": {
            "get": _op(
                "200 when the store and the engine answer, else 503 with the reason.",
                {"200": _json(with_message), "503": ERROR},
                **open_,
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus text format.",
                {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                **open_,
            )
        },
        "/openapi.json": {
            "get": _op("This document.", {"200": _json({"type": "object"})}, **open_)
        },
        "/v1/apps": {
            "get": _op("List apps.", {"200": answer("apps", "App", plural=True), **_errors()}),
            "post": _op(
                "Create an app.",
                {"201": answer("app", "App"), **_errors(400, 408, 409)},
                _envelope("app", "AppIn"),
            ),
        },
        "/v1/apps/{app}": {
            "parameters": [APP_NAME],
            "get": _op("One app.", {"200": answer("app", "App"), **_errors(404)}),
            "patch": _op(
                "Change an app's config.",
                {"200": answer("app", "App"), **_errors(400, 404, 408)},
                _envelope("app", "AppPatch"),
            ),
            "delete": _op(
                "Delete an app (409 while it has routes, unless ?force=true).",
                {"200": _json(with_message), **_errors(400, 404, 409)},
                parameters=[_param("force", "query", {"type": "boolean"})],
            ),
        },
        "/v1/apps/{app}/routes": {
            "parameters": [APP_NAME],
            "get": _op(
                "List an app's routes.",
                {"200": answer("routes", "Route", plural=True), **_errors(404)},
            ),
            "post": _op(
                "Create a route (the app is created if missing).",
                {"201": answer("route", "Route"), **_errors(400, 408, 409, 503)},
                _envelope("route", "RouteIn"),
            ),
        },
        "/v1/apps/{app}/routes/{path}": {
            "parameters": [APP_NAME, ROUTE_PATH],
            "get": _op(
                "One route, with its pool.", {"200": answer("route", "Route"), **_errors(404)}
            ),
            "patch": _op(
                "Change some of a route's fields.",
                {"200": answer("route", "Route"), **_errors(400, 404, 408, 503)},
                _envelope("route", "RoutePatch"),
            ),
            "put": _op(
                "Create or replace a route.",
                {
                    "200": answer("route", "Route"),
                    "201": answer("route", "Route"),
                    **_errors(400, 408, 503),
                },
                _envelope("route", "RoutePut"),
            ),
            "delete": _op(
                "Delete a route and its containers.", {"200": _json(with_message), **_errors(404)}
            ),
        },
        "/v1/apps/{app}/calls": {
            "parameters": [APP_NAME],
            "get": _op(
                "An app's call records, newest first.",
                {"200": calls_list, **_errors(400, 404)},
                parameters=calls_query,
            ),
        },
        "/v1/apps/{app}/calls/{call}": {
            "parameters": [APP_NAME, CALL_ID],
            "get": _op(
                "One call record.",
                {
                    "200": _json(
                        {"type": "object", "properties": {"call": {"$ref": REF + "Call"}}}
                    ),
                    **_errors(404),
                },
            ),
            "delete": _op(
                "Cancel a queued async call (409 once it runs or ran).",
                {
                    "200": _json(
                        {"type": "object", "properties": {"call": {"$ref": REF + "Call"}}}
                    ),
                    **_errors(404, 409),
                },
            ),
        },
        "/v1/apps/{app}/calls/{call}/log": {
            "parameters": [APP_NAME, CALL_ID],
            "get": _op("A call's captured log.", {"200": log, **_errors(404)}),
        },
        "/v1/apps/{app}/calls/{call}/response": {
            "parameters": [APP_NAME, CALL_ID],
            "get": _op(
                "An async call's response, as the function gave it (body up to the kept size); "
                "the call's own status is in Executor-Call-Status.",
                {"200": kept_response, **_errors(404)},
            ),
        },
        "/v1/calls/{call}": {
            "parameters": [CALL_ID],
            "get": _op(
                "One call record, by id alone.",
                {
                    "200": _json(
                        {"type": "object", "properties": {"call": {"$ref": REF + "Call"}}}
                    ),
                    **_errors(404),
                },
            ),
        },
        "/v1/calls/{call}/log": {
            "parameters": [CALL_ID],
            "get": _op("A call's captured log, by id alone.", {"200": log, **_errors(404)}),
        },
        "/v1/calls/{call}/response": {
            "parameters": [CALL_ID],
            "get": _op(
                "An async call's response, by id alone.", {"200": kept_response, **_errors(404)}
            ),
        },
        "/r/{app}/{path}": invoke,
    }
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
