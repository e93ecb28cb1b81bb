"""Apps and routes: validated, written to the store, and served from memory.

The store is written first and memory updated after, under one lock, so memory never
shows what the store does not hold. Lookups on a call's path (`app`, `route`, `image`)
are dict reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from ulid import ULID

from executor.config import Settings
from executor.docker.engine import Engine, ImageInfo
from executor.errors import (
    Conflict,
    EngineDown,
    EngineError,
    EngineUnreachable,
    InvalidInput,
    NotFound,
    StoreUnavailable,
)
from executor.models import (
    APP_READ_ONLY,
    JWT_KEY_SHOWN,
    ROUTE_READ_ONLY,
    App,
    AppSpec,
    Route,
    RouteSpec,
    has_control,
    parse_app,
    parse_route,
    rfc3339,
)
from executor.routing import RouteTree, bind
from executor.store.database import STORE_ERRORS
from executor.store.store import Store

log = logging.getLogger(__name__)


class RouteWatcher(Protocol):
    """Told of every route change once the store holds it (the hot pools)."""

    def sync(self, app: App, route: Route, image: ImageInfo) -> None: ...

    def remove(self, app_name: str, path: str) -> None: ...


# Merged key by key on PATCH; a key set to "" (or null) is removed (as IronFunctions).
MERGED_MAPS = ("config", "headers")


def now() -> str:
    return rfc3339(datetime.now(UTC))


# Calls to routes this node does not know read the shared store's routes again at most
# this often (catch_up).
CATCH_UP_EVERY = 0.1

T = TypeVar("T")


class Registry:
    def __init__(self, store: Store, engine: Engine, settings: Settings) -> None:
        self._store = store
        self._engine = engine
        self._settings = settings
        self._apps: dict[str, App] = {}
        self._routes: dict[tuple[str, str], Route] = {}
        # Each app's routes with `:name` segments, for the calls no exact path serves.
        self._trees: dict[str, RouteTree[Route]] = {}
        self._images: dict[str, ImageInfo] = {}
        self._lock = asyncio.Lock()
        self._watchers: list[RouteWatcher] = []
        # catch_up's read in flight, and when it began.
        self._catching_up: asyncio.Task[None] | None = None
        self._caught_up_at = -CATCH_UP_EVERY

    def watch(self, watcher: RouteWatcher) -> None:
        self._watchers.append(watcher)

    async def announce_all(self) -> None:
        """Tells the watchers of every route (at start-up, once the engine answers)."""
        for route in list(self._routes.values()):
            await self._announce(route)

    async def refresh_images(self) -> None:
        """An image was tagged, built or removed: routes whose image ID changed are told
        (a rebuilt tag drains their pools)."""
        for ref, known in list(self._images.items()):
            try:
                info = await self._engine.image(ref)
            except EngineDown:
                return
            if info is None:
                self._images.pop(ref, None)
            elif info != known:
                self._images[ref] = info
                for route in list(self._routes.values()):
                    if route.image == ref:
                        await self._announce(route)

    async def _announce(self, route: Route) -> None:
        if not self._watchers:
            return
        try:
            image = await self.image(route.image)
        except EngineDown:
            image = None
        if image is None:
            log.warning(
                "route %s%s: image %r not on the engine", route.app_name, route.path, route.image
            )
            return
        app = self._apps[route.app_name]
        for watcher in self._watchers:
            watcher.sync(app, route, image)

    def _announce_removed(self, app_name: str, path: str) -> None:
        for watcher in self._watchers:
            watcher.remove(app_name, path)

    async def load(self) -> None:
        self._apps = {app.name: app for app in await self._store.apps()}
        self._routes = {(r.app_name, r.path): r for r in await self._store.routes()}
        for name in self._apps:
            self._index(name)

    async def resync(self, _notice: str = "") -> None:
        """Takes in what the store holds and memory does not: on a shared store, another
        node's changes (on its notice, and periodically, so a notice missed heals). Routes
        changed are announced (their pools drain where the container changed), routes
        gone are removed. Read under the lock: a change of this node's cannot be undone."""
        async with self._lock:
            apps = {app.name: app for app in await self._store.apps()}
            routes = {(r.app_name, r.path): r for r in await self._store.routes()}
            touched = {
                name
                for name in apps.keys() | self._apps.keys()
                if apps.get(name) != self._apps.get(name)
            }
            self._apps = apps
            gone = [key for key in self._routes if key not in routes]
            changed = [
                r for key, r in routes.items() if self._routes.get(key) != r or key[0] in touched
            ]
            for key in gone:
                del self._routes[key]
                touched.add(key[0])
                self._announce_removed(*key)
            for route in changed:
                self._routes[(route.app_name, route.path)] = route
                touched.add(route.app_name)
            for name in touched:
                self._index(name)
            for route in changed:
                await self._announce(route)
        if touched:
            log.info("routes changed by another node: apps %s", ", ".join(sorted(touched)))

    async def catch_up(self) -> bool:
        """On a shared store, before a call ends 404: the routes read again, by a read that
        began after the call asked. A route made through another node a moment ago may not
        be here yet (its notice takes about 4 ms, and a balancer sends the next request
        wherever its hash says). Reads are shared by every call waiting, one at a time and
        at most one per CATCH_UP_EVERY, so a flood of calls to unknown routes costs the
        store ten reads a second, not one a call. False on a store of this node's own (no
        other node changes it); StoreUnavailable (503) when the read failed."""
        if not self._store.db.shared:
            return False
        asked = time.monotonic()
        while True:
            task = self._catching_up
            if task is None:
                wait = self._caught_up_at + CATCH_UP_EVERY - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                self._caught_up_at = time.monotonic()
                task = self._catching_up = asyncio.create_task(self._catch_up())
            await asyncio.wait([task])  # a waiter cancelled leaves the read to the others
            if task.cancelled():
                raise StoreUnavailable("the routes' read was stopped")
            if task.result() >= asked:  # (its error, if it failed)
                return True

    async def _catch_up(self) -> float:
        """The routes read again; when the read began (it runs after every call that
        asked for it in the same turn of the loop has asked)."""
        began = time.monotonic()
        try:
            await self.resync()
        except StoreUnavailable:
            raise
        except STORE_ERRORS as exc:
            raise StoreUnavailable(f"the routes could not be read: {exc}") from exc
        finally:
            self._catching_up = None
        return began

    def _index(self, app_name: str) -> None:
        routes = [(r.path, r) for (a, _), r in self._routes.items() if a == app_name]
        with_parameters = [(path, r) for path, r in routes if ":" in path]
        if with_parameters:
            self._trees[app_name] = RouteTree(with_parameters)
        else:
            self._trees.pop(app_name, None)

    # -- reads (memory only) ------------------------------------------------------------

    def apps(self) -> list[App]:
        return sorted(self._apps.values(), key=lambda a: a.name)

    def app(self, name: str) -> App:
        app = self._apps.get(name)
        if app is None:
            raise NotFound(f"app {name!r} not found")
        return app

    def all_routes(self) -> list[Route]:
        return sorted(self._routes.values(), key=lambda r: (r.app_name, r.path))

    def routes(self, app: str) -> list[Route]:
        self.app(app)
        return sorted((r for (a, _), r in self._routes.items() if a == app), key=lambda r: r.path)

    def route(self, app: str, path: str) -> Route:
        route = self._routes.get((app, path))
        if route is None:
            self.app(app)
            raise NotFound(f"route {path!r} not found in app {app!r}")
        return route

    async def match_latest(self, app: str, path: str) -> tuple[Route, dict[str, str]]:
        """match, and on a shared store, before NotFound, again after catch_up."""
        return await self._latest(lambda: self.match(app, path))

    async def route_latest(self, app: str, path: str) -> tuple[App, Route]:
        """The app and its route at exactly `path`, as match_latest finds them."""
        return await self._latest(lambda: (self.app(app), self.route(app, path)))

    async def _latest(self, lookup: Callable[[], T]) -> T:
        try:
            return lookup()
        except NotFound:
            if not await self.catch_up():
                raise
        return lookup()

    def match(self, app: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route a call's path names, and its parameters' values (routing.py says
        which route wins). NotFound names the app or the path."""
        route = self._routes.get((app, path))
        if route is not None:
            return route, {}
        tree = self._trees.get(app)
        if tree is not None and (found := tree.match(path)) is not None:
            params = bind(found.path, path)
            for name, value in params.items():
                if has_control(value):
                    raise InvalidInput(f"route parameter {name!r}: control characters")
            return found, params
        self.app(app)
        raise NotFound(f"route {path!r} not found in app {app!r}")

    def current(self, route: Route) -> bool:
        """Whether `route` is still the one served at its path (not deleted or replaced)."""
        return self._routes.get((route.app_name, route.path)) is route

    async def image(self, ref: str) -> ImageInfo | None:
        """The image's ID and USER, from memory once known; None if the engine lacks it."""
        info = self._images.get(ref)
        if info is None:
            info = await self._engine.image(ref)
            if info is not None:
                self._images[ref] = info
        return info

    # -- apps ---------------------------------------------------------------------------

    async def create_app(self, payload: Any) -> App:
        spec = parse_app(payload, self._settings)
        async with self._lock:
            if spec.name in self._apps:
                raise Conflict(f"app {spec.name!r} already exists")
            return await self._insert_app(spec)

    async def _insert_app(self, spec: AppSpec) -> App:
        stamp = now()
        app = App(**spec.model_dump(), id=str(ULID()), created_at=stamp, updated_at=stamp)
        await self._store.save_app(app)
        self._apps[app.name] = app
        return app

    async def update_app(self, name: str, payload: Any) -> App:
        async with self._lock:
            current = self.app(name)
            patch = _patch_body(payload, "app", APP_READ_ONLY)
            if patch.get("name", name) != name:
                raise InvalidInput("app.name: an app cannot be renamed")
            merged = _merge(current.model_dump(include={"name", "config"}), patch)
            return await self._replace_app(current, parse_app(merged, self._settings))

    async def replace_app(self, spec: AppSpec) -> App:
        """Sets the whole of an app's config (the routes file; the API's PATCH merges)."""
        async with self._lock:
            return await self._replace_app(self.app(spec.name), spec)

    async def _replace_app(self, current: App, spec: AppSpec) -> App:
        app = App(
            **spec.model_dump(), id=current.id, created_at=current.created_at, updated_at=now()
        )
        await self._store.save_app(app)
        self._apps[app.name] = app
        for (app_name, _), route in list(self._routes.items()):
            if app_name == app.name:
                await self._announce(route)  # app config is part of a pool's key
        return app

    async def delete_app(self, name: str, force: bool = False) -> None:
        async with self._lock:
            self.app(name)
            routes = [key for key in self._routes if key[0] == name]
            if routes and not force:
                raise Conflict(
                    f"app {name!r} still has {len(routes)} route(s); delete them first "
                    "or use ?force=true"
                )
            await self._store.delete_app(name)
            for key in routes:
                del self._routes[key]
                self._announce_removed(*key)
            del self._apps[name]
            self._index(name)

    # -- routes -------------------------------------------------------------------------

    async def create_route(self, app_name: str, payload: Any) -> Route:
        spec = parse_route(payload, self._settings)
        async with self._lock:
            if (app_name, spec.path) in self._routes:
                raise Conflict(f"route {spec.path!r} already exists in app {app_name!r}")
            return await self._save_route(app_name, spec, None)

    async def put_route(self, app_name: str, path: str, payload: Any) -> tuple[Route, bool]:
        """Creates or replaces the route; says whether it was created."""
        body = _patch_body(payload, "route", ROUTE_READ_ONLY)
        if body.get("path", path) != path:
            raise InvalidInput("route.path: must match the path in the URL")
        async with self._lock:
            current = self._routes.get((app_name, path))
            body = _keep_jwt_key(body, current)
            spec = parse_route({**body, "path": path}, self._settings)
            return await self._save_route(app_name, spec, current), current is None

    async def update_route(self, app_name: str, path: str, payload: Any) -> Route:
        async with self._lock:
            current = self.route(app_name, path)
            patch = _keep_jwt_key(_patch_body(payload, "route", ROUTE_READ_ONLY), current)
            if patch.get("max_concurrency"):
                # IronFunctions' name, merged as the field it is (models.py checks both).
                patch.setdefault("max_containers", patch["max_concurrency"])
            if patch.get("path", path) != path:
                raise InvalidInput("route.path: a route's path cannot be changed")
            merged = _merge(current.spec, patch)
            if "format" in patch and "min_warm" not in patch:
                merged.pop("min_warm", None)  # back to the new format's default
            spec = parse_route(merged, self._settings)
            return await self._save_route(app_name, spec, current)

    async def delete_route(self, app_name: str, path: str) -> None:
        async with self._lock:
            self.route(app_name, path)
            await self._store.delete_route(app_name, path)
            del self._routes[(app_name, path)]
            self._index(app_name)
            self._announce_removed(app_name, path)

    async def _save_route(self, app_name: str, spec: RouteSpec, current: Route | None) -> Route:
        await self._require_image(spec.image)
        if app_name not in self._apps:
            # As IronFunctions: a route saved under a missing app creates the app.
            await self._insert_app(parse_app({"name": app_name}, self._settings))
        stamp = now()
        route = Route(
            **spec.model_dump(),
            app_name=app_name,
            id=current.id if current else str(ULID()),
            created_at=current.created_at if current else stamp,
            updated_at=stamp,
        )
        await self._store.save_route(route)
        self._routes[(app_name, route.path)] = route
        self._index(app_name)
        await self._announce(route)
        return route

    async def _require_image(self, ref: str) -> None:
        self._images.pop(ref, None)  # a save re-reads the image: the tag may be rebuilt
        try:
            info = await self.image(ref)
        except EngineDown as exc:
            raise EngineUnreachable(exc.message) from None
        if info is None and self._settings.pull_timeout > 0:
            # Where a registry answers, the image may just not be pulled yet.
            timeout = self._settings.pull_timeout
            try:
                async with asyncio.timeout(timeout):
                    await self._engine.pull(ref)
            except TimeoutError:
                raise InvalidInput(
                    f"route.image: image {ref!r} is not on the Docker engine, "
                    f"and pulling it took more than {timeout:g} s"
                ) from None
            except EngineDown as exc:
                raise EngineUnreachable(exc.message) from None
            except EngineError as exc:
                raise InvalidInput(
                    f"route.image: image {ref!r} is not on the Docker engine, "
                    f"and pulling it failed: {exc.message}"
                ) from None
            info = await self.image(ref)
        if info is None:
            raise InvalidInput(f"route.image: image {ref!r} is not on the Docker engine")


def _patch_body(payload: Any, what: str, read_only: frozenset[str]) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidInput(f"{what}: expected a JSON object")
    return {k: v for k, v in payload.items() if k not in read_only}


def _keep_jwt_key(body: dict[str, Any], current: Route | None) -> dict[str, Any]:
    """A route's GET shows JWT_KEY_SHOWN for its key: sent back, the key stays."""
    if body.get("jwt_key") != JWT_KEY_SHOWN:
        return body
    kept = dict(body)
    if current is not None and current.jwt_key is not None:
        kept["jwt_key"] = current.jwt_key
    else:
        kept.pop("jwt_key")
    return kept


def _merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif key in MERGED_MAPS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            updated = dict(merged[key])
            for name, item in value.items():
                if item in ("", None, []):
                    updated.pop(name, None)
                else:
                    updated[name] = item
            merged[key] = updated
        else:
            merged[key] = value
    return merged
