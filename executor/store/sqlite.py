"""The embedded store: aiosqlite in WAL mode, one connection (its thread is the one writer).

Apps and routes are read once at start-up and then served from memory by the registry,
so no call waits on SQLite.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import aiosqlite
import orjson
from ulid import ULID

from executor.errors import BadDatabase
from executor.models import App, Route
from executor.store.lock import DatabaseLock
from executor.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)


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
                return cls(db, lock, await _prepare(db, path))
            except sqlite3.DatabaseError as exc:
                await db.close()
                raise BadDatabase(f"database {path}: {exc}") from None
            except BaseException:
                await db.close()
                raise
        except BaseException:
            lock.release()
            raise

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
        apps = []
        for n, i, c, ca, ua in rows:
            try:
                apps.append(App(name=n, id=i, config=orjson.loads(c), created_at=ca, updated_at=ua))
            except (ValueError, TypeError) as exc:  # pydantic's and orjson's errors are these
                log.error("database: app %r skipped, its row is damaged: %s", n, _first_line(exc))
        return apps

    async def routes(self) -> list[Route]:
        rows = await self._db.execute_fetchall(
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
        spec = orjson.dumps(route.spec)
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
        await self._db.execute("DELETE FROM rhythms WHERE app = ? AND path = ?", (app, path))
        await self._db.commit()

    async def rhythms(self) -> dict[tuple[str, str], tuple[list[int], int]]:
        """Each route's idle-time histogram: (app, path) -> (counts, beyond)."""
        rows = await self._db.execute_fetchall("SELECT app, path, counts, beyond FROM rhythms")
        found = {}
        for app, path, counts, beyond in rows:
            try:
                found[(app, path)] = (list(orjson.loads(counts)), int(beyond))
            except (ValueError, TypeError):
                log.error("database: the rhythm of %s%s is damaged: forgotten", app, path)
        return found

    async def save_rhythms(self, rhythms: dict[tuple[str, str], tuple[list[int], int]]) -> None:
        await self._db.executemany(
            "INSERT INTO rhythms (app, path, counts, beyond) VALUES (?,?,?,?) "
            "ON CONFLICT (app, path) DO UPDATE SET counts=excluded.counts, "
            "beyond=excluded.beyond",
            [(a, p, orjson.dumps(c).decode(), b) for (a, p), (c, b) in rhythms.items()],
        )
        await self._db.commit()


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


WAL_SIZE_LIMIT = 16 * 1024 * 1024
INCREMENTAL = 2
# Every table the migrations make: one missing is a damaged database, named at start-up.
TABLES = ("meta", "apps", "routes", "calls", "call_logs", "queue", "call_responses", "rhythms")


async def _prepare(db: aiosqlite.Connection, path: Path) -> str:
    """Settings, migrations and checks of a database just opened; its container group."""
    await _reclaimable(db)
    await db.execute("PRAGMA journal_mode=WAL")
    # The WAL file is cut back to this after a checkpoint (else it keeps the size of the
    # largest burst of writes, async calls' bodies included).
    await db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA foreign_keys=ON")
    await _migrate(db)
    rows = await db.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    missing = sorted(set(TABLES) - {name for (name,) in rows})
    if missing:
        raise BadDatabase(
            f"database {path}: table(s) {', '.join(missing)} missing: restore the file "
            "from a backup, or move it away to start with an empty one"
        )
    return await _group_id(db, path)


async def _reclaimable(db: aiosqlite.Connection) -> None:
    """Incremental auto-vacuum: pages freed by ended calls (their bodies) can be given
    back to the file system (CallRecords.reclaim). It must be chosen before the file's
    first table; a database made before it is converted once, by a VACUUM."""
    rows = await db.execute_fetchall("PRAGMA auto_vacuum")
    if rows[0][0] == INCREMENTAL:
        return
    await db.execute(f"PRAGMA auto_vacuum={INCREMENTAL}")
    tables = await db.execute_fetchall("SELECT 1 FROM sqlite_master LIMIT 1")
    if tables:
        await db.execute("VACUUM")


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


async def _group_id(db: aiosqlite.Connection, path: Path) -> str:
    """The container group of this database's executor: minted once, and again when the
    file is not the one that minted it (a copy: its device and inode differ), so a copy
    started beside the original never takes the original's containers for orphans."""
    rows = dict(await db.execute_fetchall("SELECT key, value FROM meta"))
    info = os.stat(path)  # once, at start-up
    here = f"{info.st_dev}:{info.st_ino}"
    group_id = rows.get("group_id")
    if group_id is not None and rows.get("file", here) == here:
        if "file" not in rows:  # made before files were recorded
            await _set_meta(db, file=here)
        return group_id
    if group_id is not None:
        log.warning(
            "database %s is a copy (or was restored): its executor gets a container group "
            "of its own; containers of group %s are left alone",
            path,
            group_id,
        )
    group_id = str(ULID()).lower()
    await _set_meta(db, group_id=group_id, file=here)
    return group_id


async def _set_meta(db: aiosqlite.Connection, **values: str) -> None:
    await db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(values.items()),
    )
    await db.commit()
