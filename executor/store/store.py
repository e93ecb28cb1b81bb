"""Apps, routes and the routes' rhythms in the store, on either backend.

Apps and routes are read at start-up (and, on a shared store, again when another node
changes them) and then served from memory by the registry, so no call waits on the store.
Each change is one transaction; on a shared store it carries a notice (ROUTES_CHANGED)
that the other nodes hear once it commits.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from executor.models import App, Route
from executor.store.database import Database, open_database, upsert_sql

log = logging.getLogger(__name__)

# The channel of the notices of route and app changes (the payload names the app).
ROUTES_CHANGED = "executor_routes"

Rhythms = dict[tuple[str, str], tuple[list[int], int]]
APP_COLUMNS = ("name", "id", "config", "created_at", "updated_at")
ROUTE_COLUMNS = ("app", "path", "id", "spec", "created_at", "updated_at")


class Store:
    def __init__(self, db: Database, group_id: str) -> None:
        self.db = db
        # This executor's container group: every container it runs carries it.
        self.group_id = group_id

    @classmethod
    async def open(cls, db: str, data_dir: Path) -> Store:
        return cls(*await open_database(db, data_dir))

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.ping()

    async def apps(self) -> list[App]:
        rows = await self.db.fetch(
            "SELECT name, id, config, created_at, updated_at FROM apps ORDER BY name"
        )
        apps = []
        for n, i, c, ca, ua in rows:
            try:
                apps.append(App(name=n, id=i, config=orjson.loads(c), created_at=ca, updated_at=ua))
            except (ValueError, TypeError) as exc:  # pydantic's and orjson's errors are these
                log.error("database: app %r skipped, its row is damaged: %s", n, _first_line(exc))
        return apps

    async def routes(self) -> list[Route]:
        rows = await self.db.fetch(
            "SELECT app, id, spec, created_at, updated_at FROM routes ORDER BY app, path"
        )
        routes = []
        for a, i, s, ca, ua in rows:
            try:
                routes.append(
                    Route(**orjson.loads(s), app_name=a, id=i, created_at=ca, updated_at=ua)
                )
            except (ValueError, TypeError) as exc:
                log.error(
                    "database: route %s of app %r skipped, its row is damaged: %s",
                    i,
                    a,
                    _first_line(exc),
                )
        return routes

    async def save_app(self, app: App) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                upsert_sql("apps", APP_COLUMNS, ("name",), updated=("config", "updated_at")),
                (app.name, app.id, _json(app.config), app.created_at, app.updated_at),
            )
            tx.notify(ROUTES_CHANGED, app.name)

    async def delete_app(self, name: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM apps WHERE name = ?", (name,))
            tx.notify(ROUTES_CHANGED, name)

    async def save_route(self, route: Route) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                upsert_sql("routes", ROUTE_COLUMNS, ("app", "path")),
                (
                    route.app_name,
                    route.path,
                    route.id,
                    _json(route.spec),
                    route.created_at,
                    route.updated_at,
                ),
            )
            tx.notify(ROUTES_CHANGED, route.app_name)

    async def delete_route(self, app: str, path: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM routes WHERE app = ? AND path = ?", (app, path))
            await tx.execute("DELETE FROM rhythms WHERE app = ? AND path = ?", (app, path))
            tx.notify(ROUTES_CHANGED, app)

    async def rhythms(self) -> Rhythms:
        """Each route's idle-time histogram: (app, path) -> (counts, beyond)."""
        rows = await self.db.fetch("SELECT app, path, counts, beyond FROM rhythms")
        found = {}
        for app, path, counts, beyond in rows:
            try:
                found[(app, path)] = (list(orjson.loads(counts)), int(beyond))
            except (ValueError, TypeError):
                log.error("database: the rhythm of %s%s is damaged: forgotten", app, path)
        return found

    async def save_rhythms(self, rhythms: Rhythms) -> None:
        async with self.db.transaction() as tx:
            await tx.executemany(
                upsert_sql("rhythms", ("app", "path", "counts", "beyond"), ("app", "path")),
                [(a, p, _json(c), b) for (a, p), (c, b) in rhythms.items()],
            )


def _json(value: object) -> str:
    """JSON as text: both backends keep it in TEXT columns."""
    return orjson.dumps(value).decode()


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
