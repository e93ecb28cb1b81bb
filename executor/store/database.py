"""The store's one owner of its connection(s), behind a small selector (as uvicorn picks
its loop): `EXECUTOR_DB` a SQLite path (the embedded default) or a `postgresql://` URL
(a fleet's shared store).

Every writer (apps and routes, call records, queue steps) writes in an explicit
`transaction()`, and every read goes through the same owner, so one writer's commit can
never land between another's statements: each step is one commit by structure, not by
timing. SQL is written once, in SQLite's dialect with `?` placeholders; the PostgreSQL
backend numbers them. Statements use only what both understand (upserts with
`ON CONFLICT`, no `INSERT OR REPLACE`; JSON as text, bodies as blobs).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from executor.errors import StoreUnavailable

Row = tuple[Any, ...]
Params = Sequence[Any]

# What a store that fails (or is gone) raises: a caller answers 503 or logs it, never 500.
# ValueError: a value the database refused (sqlite3 raises it for a string with a NUL).
STORE_ERRORS: tuple[type[BaseException], ...] = (
    StoreUnavailable,
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
    ValueError,
)


class Transaction(Protocol):
    async def execute(self, sql: str, params: Params = ()) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    def notify(self, channel: str, payload: str) -> None:
        """Sent to every node listening once the transaction commits (PostgreSQL's
        NOTIFY; SQLite has one node only: nothing)."""


class Database(Protocol):
    # Where it is, for messages (a path, or a URL without its password).
    where: str
    # Whether other executors share it (PostgreSQL): route changes arrive as notices,
    # and fleet-wide duties (retention) are taken by one node at a time.
    shared: bool
    # Appended to a SELECT in a transaction: locks the rows read, skipping those another
    # node's transaction holds (PostgreSQL's FOR UPDATE SKIP LOCKED; SQLite has one
    # writer at a time, so nothing).
    lock_rows: str

    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def ping(self) -> None: ...

    async def listen(self, channel: str, notice: Callable[[str], Awaitable[None]]) -> None:
        """Calls `notice(payload)` for each notice on `channel` (shared stores only)."""

    async def exclusive(self, duty: str) -> bool:
        """Whether this node holds the fleet-wide `duty` (retention), taken if free."""

    async def reclaim(self) -> None:
        """Gives freed pages back to the file system, where the backend needs it."""

    async def close(self) -> None: ...


def upsert_sql(
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    updated: Sequence[str] | None = None,
    rows: int = 1,
) -> str:
    """The upsert both backends understand: an INSERT of `rows` rows that, on a conflict
    on `key`, sets `updated` (by default every column not in the key) from the new row."""
    row = f"({', '.join('?' * len(columns))})"
    changed = updated if updated is not None else [c for c in columns if c not in key]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"{c}=excluded.{c}" for c in changed)
    )


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


async def open_database(db: str, data_dir: Path) -> tuple[Database, str]:
    """The database named by `db`, migrated, and this executor's container group (the
    node id its containers are labelled and cleaned up by)."""
    if is_postgres(db):
        from executor.store.postgres import PostgresDatabase

        return await PostgresDatabase.open(db, data_dir)
    from executor.store.sqlite import SqliteDatabase

    return await SqliteDatabase.open(Path(db))
