"""`/v1/apps`, `/v1/apps/{app}/routes` and `/v1/routes`: IronFunctions' admin API.

As IronFunctions answers: creates are 200 with its envelope (`message` and the object),
an envelope's own `message` or `error` sent back is ignored, route paths in URLs are
cleaned (`//hello` and `%2Fhello` are `/hello`), and an app with no routes, or none at
all, lists an empty list. A route shows `max_concurrency` (IronFunctions' name for
`max_containers`) and never its `jwt_key` (JWT_KEY_SHOWN, which a PATCH or PUT may send
back to leave the key as it is).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from executor.api.errors import json_response, read_within
from executor.errors import InvalidInput, NotFound
from executor.models import JWT_KEY_SHOWN, App, Route
from executor.routing import clean_path
from executor.state import EXECUTOR

ROUTE_URL = "/v1/apps/{app}/routes/{path:.+}"


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/apps", list_apps)
    r.add_post("/v1/apps", create_app)
    r.add_get("/v1/apps/{app}", get_app)
    r.add_patch("/v1/apps/{app}", update_app)
    r.add_delete("/v1/apps/{app}", delete_app)
    r.add_get("/v1/routes", list_all_routes)
    r.add_get("/v1/apps/{app}/routes", list_routes)
    r.add_post("/v1/apps/{app}/routes", create_route)
    r.add_get(ROUTE_URL, get_route)
    r.add_patch(ROUTE_URL, update_route)
    r.add_put(ROUTE_URL, put_route)
    r.add_delete(ROUTE_URL, delete_route)


async def list_apps(request: web.Request) -> web.Response:
    apps = [_app(a) for a in request.app[EXECUTOR].registry.apps()]
    return _answer("Successfully listed applications", apps=apps)


async def create_app(request: web.Request) -> web.Response:
    app = await request.app[EXECUTOR].registry.create_app(await _envelope(request, "app"))
    return _answer("App successfully created", app=_app(app))


async def get_app(request: web.Request) -> web.Response:
    app = request.app[EXECUTOR].registry.app(request.match_info["app"])
    return _answer("App successfully loaded", app=_app(app))


async def update_app(request: web.Request) -> web.Response:
    payload = await _envelope(request, "app")
    app = await request.app[EXECUTOR].registry.update_app(request.match_info["app"], payload)
    return _answer("App successfully updated", app=_app(app))


async def delete_app(request: web.Request) -> web.Response:
    await request.app[EXECUTOR].registry.delete_app(
        request.match_info["app"], _flag(request, "force")
    )
    return _answer("App deleted")


async def list_routes(request: web.Request) -> web.Response:
    registry = request.app[EXECUTOR].registry
    app = request.match_info["app"]
    try:
        found = registry.routes(app)
    except NotFound:
        found = []  # IronFunctions lists the routes of an app that does not exist as none
    return _answer("Successfully listed routes", routes=_routes(request, found))


async def list_all_routes(request: web.Request) -> web.Response:
    """Every route of every app (IronFunctions' `GET /v1/routes`), `?image=` filtering."""
    routes = request.app[EXECUTOR].registry.all_routes()
    if (image := request.query.get("image")) is not None:
        routes = [r for r in routes if r.image == image]
    return _answer("Successfully listed routes", routes=_routes(request, routes))


async def create_route(request: web.Request) -> web.Response:
    payload = await _envelope(request, "route")
    route = await request.app[EXECUTOR].registry.create_route(request.match_info["app"], payload)
    return _answer("Route successfully created", route=_route(request, route))


async def get_route(request: web.Request) -> web.Response:
    route = request.app[EXECUTOR].registry.route(request.match_info["app"], _path(request))
    return _answer("Route successfully loaded", route=_route(request, route))


async def update_route(request: web.Request) -> web.Response:
    payload = await _envelope(request, "route")
    app, path = request.match_info["app"], _path(request)
    route = await request.app[EXECUTOR].registry.update_route(app, path, payload)
    return _answer("Route successfully updated", route=_route(request, route))


async def put_route(request: web.Request) -> web.Response:
    payload = await _envelope(request, "route")
    app, path = request.match_info["app"], _path(request)
    route, created = await request.app[EXECUTOR].registry.put_route(app, path, payload)
    if created:
        return _answer("Route successfully created", 201, route=_route(request, route))
    return _answer("Route successfully replaced", route=_route(request, route))


async def delete_route(request: web.Request) -> web.Response:
    await request.app[EXECUTOR].registry.delete_route(request.match_info["app"], _path(request))
    return _answer("Route deleted")


# -- parsing and rendering ------------------------------------------------------------


async def _envelope(request: web.Request, key: str) -> Any:
    """The object under `key` in a `{"<key>": {...}}` body."""
    raw = await read_within(request, request.app[EXECUTOR].settings.body_timeout)
    if not raw.strip():
        raise InvalidInput(f"request body: expected {{{key!r}: {{...}}}}, got nothing")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body: invalid JSON: {exc}") from None
    if not isinstance(body, dict) or key not in body:
        raise InvalidInput(f'request body: expected an object with a "{key}" field')
    # A GET's answer sent back (what IronFunctions' fn does) carries these: ignored.
    unknown = sorted(set(body) - {key, "message", "error"})
    if unknown:
        raise InvalidInput(f"request body: unknown field(s): {', '.join(unknown)}")
    return body[key]


def _path(request: web.Request) -> str:
    return clean_path(request.match_info["path"])


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", ""):
        raise InvalidInput(f"{name}: expected true or false")
    return value in ("true", "1", "")


def _answer(message: str, status: int = 200, **items: Any) -> web.Response:
    """IronFunctions' envelope: a message and the objects it speaks of."""
    return json_response({"message": message, **items}, status)


def _app(app: App) -> dict[str, Any]:
    return app.model_dump()


def _routes(request: web.Request, routes: list[Route]) -> list[dict[str, Any]]:
    return [_route(request, r) for r in routes]


def _route(request: web.Request, route: Route) -> dict[str, Any]:
    data = route.model_dump()
    data["max_concurrency"] = route.max_containers
    if route.jwt_key is not None:
        data["jwt_key"] = JWT_KEY_SHOWN
    # Read-only: the hot pool's containers (null for `default` routes, which have none).
    data["pool"] = request.app[EXECUTOR].pools.state(route.app_name, route.path)
    return data
