"""The embedded store: aiosqlite in WAL mode, one connection (its thread is the one
writer), owned by `SqliteDatabase`: a lock held across each transaction and each read, so
no statement of another writer (or a read of uncommitted rows) falls inside a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import aiosqlite
from ulid import ULID

from executor.errors import BadDatabase
from executor.store.database import Params, Row
from executor.store.lock import DatabaseLock
from executor.store.migrations import MIGRATIONS, TABLES

log = logging.getLogger(__name__)


class SqliteDatabase:
    shared = False
    lock_rows = ""

    def __init__(self, db: aiosqlite.Connection, lock: DatabaseLock, where: str) -> None:
        self._db = db
        self._file_lock = lock
        self._lock = asyncio.Lock()
        self.where = where

    @classmethod
    async def open(cls, path: Path) -> tuple[SqliteDatabase, str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = DatabaseLock(path)
        lock.acquire()
        try:
            db = await aiosqlite.connect(path)
            try:
                group_id = await _prepare(db, path)
                return cls(db, lock, str(path)), group_id
            except sqlite3.DatabaseError as exc:
                await db.close()
                raise BadDatabase(f"database {path}: {exc}") from None
            except BaseException:
                await db.close()
                raise
        except BaseException:
            lock.release()
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Transaction]:
        async with self._lock:
            try:
                yield _Transaction(self._db)
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def ping(self) -> None:
        await self.fetch("SELECT 1")

    async def listen(self, channel: str, notice: Callable[[str], Awaitable[None]]) -> None:
        pass  # one executor per file: no one else changes it

    async def exclusive(self, duty: str) -> bool:
        return True

    async def reclaim(self) -> None:
        """Incremental auto-vacuum. executescript: the sqlite3 module steps a plain execute
        of this pragma once, which frees a single page."""
        async with self._lock:
            await self._db.executescript("PRAGMA incremental_vacuum;")

    async def close(self) -> None:
        await self._db.close()
        self._file_lock.release()


class _Transaction:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self._db.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        await self._db.executemany(sql, rows)

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._db.execute_fetchall(sql, params))

    def notify(self, channel: str, payload: str) -> None:
        pass


WAL_SIZE_LIMIT = 16 * 1024 * 1024
INCREMENTAL = 2


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
