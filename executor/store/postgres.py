"""The shared store of a fleet: PostgreSQL through asyncpg's pool.

Several executors (nodes) share it. Each node's containers are labelled with its own node
id, kept in its data folder (`<data dir>/node.id`, minted once, locked while it runs), so
nodes sharing one database, and even one Docker engine, never take each other's
containers for orphans. Route changes reach the other nodes as NOTIFY notices, heard on a
connection of its own; fleet-wide duties (retention) are held with an advisory lock on
that same connection, so a node that dies gives them up with its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from ulid import ULID

from executor.errors import BadDatabase, StoreUnavailable
from executor.store.database import STORE_ERRORS, Params, Row
from executor.store.lock import DatabaseLock
from executor.store.migrations import MIGRATIONS, postgres_types

log = logging.getLogger(__name__)

# Connections kept for the node's writers and reads: the records writer, the queue's
# steps and the API's writes rarely overlap more than this.
POOL_SIZE = 4
# A statement that takes longer fails (the caller answers 503) rather than hang.
STATEMENT_TIMEOUT = 10.0
# A connection not made within this fails the same way (asyncpg's default is 60 s).
CONNECT_TIMEOUT = 5.0
# What a database that went away raises (refused, reset, lost mid-statement, too slow):
# StoreUnavailable, 503. Errors of a statement itself (a unique key) stay as they are.
GONE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    # A connection whose server went away mid-operation (asyncpg's own words for it).
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)
# Any constant: the advisory lock that makes one migration run at a time.
MIGRATION_LOCK = 0x6578_6563


class PostgresDatabase:
    shared = True
    lock_rows = " FOR UPDATE SKIP LOCKED"

    def __init__(self, pool: asyncpg.Pool, url: str, node_lock: DatabaseLock) -> None:
        self._pool = pool
        self._url = url
        self._node_lock = node_lock
        self.where = _without_password(url)
        self._listener: asyncpg.Connection | None = None
        self._listening: dict[str, Callable[[str], Awaitable[None]]] = {}
        self._duties: set[str] = set()
        self._heard_on: set[str] = set()  # channels listened to on the current connection
        self._notices: set[asyncio.Task] = set()

    @classmethod
    async def open(cls, url: str, data_dir: Path) -> tuple[PostgresDatabase, str]:
        node_lock = _lock_node(data_dir)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=POOL_SIZE,
                command_timeout=STATEMENT_TIMEOUT,
                timeout=CONNECT_TIMEOUT,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            node_lock.release()
            raise BadDatabase(f"database {_without_password(url)}: {exc}") from None
        try:
            await _migrate(pool)
        except BaseException:
            await pool.close()
            node_lock.release()
            raise
        return cls(pool, url, node_lock), _node_id(data_dir)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Transaction]:
        with self._gone():
            async with self._pool.acquire(timeout=CONNECT_TIMEOUT) as conn, conn.transaction():
                tx = _Transaction(conn)
                yield tx
                for channel, payload in tx.notices:
                    await conn.execute("SELECT pg_notify($1, $2)", channel, payload)

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        with self._gone():
            rows = await self._pool.fetch(numbered(sql), *params, timeout=STATEMENT_TIMEOUT)
        return [tuple(r) for r in rows]

    async def ping(self) -> None:
        with self._gone():
            await self._pool.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT)

    @contextlib.contextmanager
    def _gone(self) -> Iterator[None]:
        try:
            yield
        except GONE as exc:
            raise StoreUnavailable(f"database {self.where} unavailable: {_reason(exc)}") from None

    async def listen(self, channel: str, notice: Callable[[str], Awaitable[None]]) -> None:
        """Idempotent: called again, it makes the connection anew if it was lost (its
        listeners and duties with it), and tells each listener (it may have missed some)."""
        self._listening[channel] = notice
        await self._listening_connection()

    def _heard(self, conn: object, pid: int, channel: str, payload: str) -> None:
        notice = self._listening.get(channel)
        if notice is not None:
            task = asyncio.ensure_future(self._tell(notice, channel, payload))
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)

    async def _tell(
        self, notice: Callable[[str], Awaitable[None]], channel: str, payload: str
    ) -> None:
        try:
            await notice(payload)
        except STORE_ERRORS as exc:  # the periodic resync makes up for it
            log.warning("database %s: a notice on %s not taken in: %s", self.where, channel, exc)

    async def exclusive(self, duty: str) -> bool:
        if duty not in self._duties:
            conn = await self._listening_connection()
            key = zlib.crc32(duty.encode())
            with self._gone():
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    self._duties.add(duty)
        return duty in self._duties

    async def _listening_connection(self) -> asyncpg.Connection:
        with self._gone():
            return await self._connect_listener()

    async def _connect_listener(self) -> asyncpg.Connection:
        conn = self._listener
        if conn is not None and not conn.is_closed():
            for channel in self._listening.keys() - self._heard_on:
                await conn.add_listener(channel, self._heard)
                self._heard_on.add(channel)
            return conn
        again = conn is not None
        self._duties.clear()  # advisory locks end with their connection
        self._heard_on = set()
        self._listener = conn = await asyncpg.connect(self._url, command_timeout=STATEMENT_TIMEOUT)
        for channel in self._listening:
            await conn.add_listener(channel, self._heard)
            self._heard_on.add(channel)
            if again:
                self._heard(conn, 0, channel, "")
        return conn

    async def reclaim(self) -> None:
        pass  # autovacuum's work

    async def close(self) -> None:
        for task in list(self._notices):
            task.cancel()
        if self._listener is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await self._listener.close(timeout=STATEMENT_TIMEOUT)
        await self._pool.close()
        self._node_lock.release()


class _Transaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.notices: list[tuple[str, str]] = []

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self._conn.execute(numbered(sql), *params)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        await self._conn.executemany(numbered(sql), rows)

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return [tuple(r) for r in await self._conn.fetch(numbered(sql), *params)]

    def notify(self, channel: str, payload: str) -> None:
        self.notices.append((channel, payload))


@functools.lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """SQLite's `?` placeholders as PostgreSQL's `$1, $2, ...` (none of our statements
    holds a `?` inside a quoted string)."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)


async def _migrate(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        # Nodes starting together: one migrates, the others wait and find it done.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = await conn.fetchval("SELECT version FROM schema_version") or 0
        if current > len(MIGRATIONS):
            raise BadDatabase(
                f"database schema version {current} is newer than this executor "
                f"({len(MIGRATIONS)}); upgrade the executor"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            await conn.execute(postgres_types(MIGRATIONS[version - 1]))
        if current < len(MIGRATIONS):
            await conn.execute("DELETE FROM schema_version")
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", len(MIGRATIONS))


def _lock_node(data_dir: Path) -> DatabaseLock:
    """One executor per data folder, as one per SQLite file: the node id is its."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = DatabaseLock(data_dir / "node", what="data folder")
    lock.acquire()
    return lock


def _node_id(data_dir: Path) -> str:
    """This node's id: its containers' group label, kept across its restarts (so the
    next start removes what a crash left) and never shared with another node."""
    path = data_dir / "node.id"
    with contextlib.suppress(FileNotFoundError):
        node = path.read_text().strip()
        if node:
            return node
    node = str(ULID()).lower()
    path.write_text(node + "\n")
    return node


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
