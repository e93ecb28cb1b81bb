"""The embedded store: aiosqlite in WAL mode, one connection (its thread is the one writer).

Apps and routes are read once at start-up and then served from memory by the registry,
so no call waits on SQLite.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import orjson
from ulid import ULID

from executor.models import App, Route, RouteSpec
from executor.store.lock import DatabaseLock
from executor.store.migrations import MIGRATIONS


class Store:
    def __init__(self, db: aiosqlite.Connection, lock: DatabaseLock, group_id: str) -> None:
        self._db = db
        self._lock = lock
        self.group_id = group_id

    @classmethod
    async def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = DatabaseLock(path)
        lock.acquire()
        try:
            db = await aiosqlite.connect(path)
            try:
                await db.execute("PRAGMA journal_mode=WAL")
                await db.execute("PRAGMA synchronous=NORMAL")
                await db.execute("PRAGMA foreign_keys=ON")
                await _migrate(db)
                group_id = await _group_id(db)
            except BaseException:
                await db.close()
                raise
        except BaseException:
            lock.release()
            raise
        return cls(db, lock, group_id)

    async def close(self) -> None:
        await self._db.close()
        self._lock.release()

    @property
    def connection(self) -> aiosqlite.Connection:
        """The one connection (and writer thread): call records share it."""
        return self._db

    async def ping(self) -> None:
        await self._db.execute("SELECT 1")

    async def apps(self) -> list[App]:
        rows = await self._db.execute_fetchall(
            "SELECT name, id, config, created_at, updated_at FROM apps ORDER BY name"
        )
        return [
            App(name=n, id=i, config=orjson.loads(c), created_at=ca, updated_at=ua)
            for n, i, c, ca, ua in rows
        ]

    async def routes(self) -> list[Route]:
        rows = await self._db.execute_fetchall(
            "SELECT app, id, spec, created_at, updated_at FROM routes ORDER BY app, path"
        )
        return [
            Route(**orjson.loads(s), app_name=a, id=i, created_at=ca, updated_at=ua)
            for a, i, s, ca, ua in rows
        ]

    async def save_app(self, app: App) -> None:
        await self._db.execute(
            "INSERT INTO apps (name, id, config, created_at, updated_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT (name) DO UPDATE SET config=excluded.config, "
            "updated_at=excluded.updated_at",
            (app.name, app.id, orjson.dumps(app.config), app.created_at, app.updated_at),
        )
        await self._db.commit()

    async def delete_app(self, name: str) -> None:
        await self._db.execute("DELETE FROM apps WHERE name = ?", (name,))
        await self._db.commit()

    async def save_route(self, route: Route) -> None:
        spec = orjson.dumps(route.model_dump(include=set(RouteSpec.model_fields)))
        await self._db.execute(
            "INSERT INTO routes (app, path, id, spec, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT (app, path) DO UPDATE SET "
            "id=excluded.id, spec=excluded.spec, created_at=excluded.created_at, "
            "updated_at=excluded.updated_at",
            (route.app_name, route.path, route.id, spec, route.created_at, route.updated_at),
        )
        await self._db.commit()

    async def delete_route(self, app: str, path: str) -> None:
        await self._db.execute("DELETE FROM routes WHERE app = ? AND path = ?", (app, path))
        await self._db.commit()


async def _migrate(db: aiosqlite.Connection) -> None:
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    rows = await db.execute_fetchall("SELECT version FROM schema_version")
    current = rows[0][0] if rows else 0
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {current} is newer than this executor "
            f"({len(MIGRATIONS)}); upgrade the executor"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        await db.executescript(
            "BEGIN;\n"
            + MIGRATIONS[version - 1]
            + "\nDELETE FROM schema_version;"
            + f"\nINSERT INTO schema_version (version) VALUES ({version});\nCOMMIT;"
        )


async def _group_id(db: aiosqlite.Connection) -> str:
    rows = await db.execute_fetchall("SELECT value FROM meta WHERE key = 'group_id'")
    if rows:
        return rows[0][0]
    group_id = str(ULID()).lower()
    await db.execute("INSERT INTO meta (key, value) VALUES ('group_id', ?)", (group_id,))
    await db.commit()
    return group_id
