"""Call records and their logs: written by one batching task, read by the calls API.

A call that ends hands its record to `CallRecords.add`, which only appends to a list:
no sync call waits for SQLite. Async calls' steps (queued, running, ended) are statements
given to `CallRecords.write`, whose caller waits for their commit: a 202 is answered, and a
queued call is run, only once the store holds it. The writer wakes on the first record,
waits `flush_interval` to gather more, and writes them in one transaction (a group
commit). Hot containers' log lines arrive on their own, possibly after the record, and are
appended to the call's log, capped. Retention (count and age) is applied by the same task.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import orjson
from ulid import ULID

from executor.calls import CallRecord, StoredResponse
from executor.errors import NotFound
from executor.models import rfc3339
from executor.tasks import TaskGroup

log = logging.getLogger(__name__)

FIELDS = CallRecord._fields
# The record's times: unix seconds in the database, RFC 3339 in the API.
TIMES = ("created_at", "started_at", "completed_at")
# Many rows per statement: one step, so the writer thread gives up the GIL once per batch
# rather than once per row (each hand-over costs the event loop a wake-up).
ROWS_PER_INSERT = 500
_ROW = f"({', '.join('?' * len(FIELDS))})"


# A statement and its parameters, run by the writer in the order given.
Op = tuple[str, Sequence[Any]]


@functools.lru_cache(maxsize=64)
def insert_sql(rows: int) -> str:
    return f"INSERT OR REPLACE INTO calls ({', '.join(FIELDS)}) VALUES {', '.join([_ROW] * rows)}"


# A log grows by appends, up to the cap (characters: logs are kept as text), where a note
# says it was cut; a log already cut stays as it is.
_APPEND_LOG = (
    "INSERT INTO call_logs (id, log) VALUES (:id, :log) ON CONFLICT (id) DO UPDATE SET log = "
    "CASE WHEN length(log) >= :cap THEN log "
    "WHEN length(log || excluded.log) > :cap "
    "THEN substr(log || excluded.log, 1, :cap) || :marker "
    "ELSE log || excluded.log END"
)
# Appended where a log reaches its cap (the stored text may hold the cap plus this).
CUT_MARKER = b"\n[log cut: over the limit]\n"
# Past this many records waiting (SQLite stuck), new ones are dropped, not queued.
MAX_PENDING = 100_000
PRUNE_EVERY = 60.0


class CallRecords:
    def __init__(
        self,
        db: aiosqlite.Connection,
        *,
        flush_interval: float,
        max_log_bytes: int,
        max_count: int,
        max_age: float,
    ) -> None:
        self._db = db
        self._interval = flush_interval
        self._max_log = max_log_bytes
        self._max_count = max_count
        self._max_age = max_age
        self._records: list[CallRecord] = []
        self._logs: dict[str, bytearray] = {}
        self._ops: list[Op] = []
        self._committed: asyncio.Future[None] | None = None  # of the ops waiting
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()  # someone waits for the commit: no gathering
        self._writing = asyncio.Lock()
        self._pruned_at = 0.0
        self._stopping = asyncio.Event()  # wakes the writer for its last batch
        self._writer = TaskGroup("call records writer")
        self._reclaim = False
        self.dropped = 0

    # -- the call path: appends only -----------------------------------------------------

    def add(self, record: CallRecord, log_data: bytes = b"") -> None:
        if len(self._records) >= MAX_PENDING:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("call records are not being written fast enough: dropping some")
            return
        self._records.append(record)
        if log_data:
            self.add_log(record.id, log_data)
        self._wake.set()

    def add_log(self, call_id: str, data: bytes) -> None:
        pending = self._logs.setdefault(call_id, bytearray())
        room = self._max_log - len(pending)
        if room > 0:
            pending += data[:room]
            if len(data) > room:
                pending += CUT_MARKER
        self._wake.set()

    def write(self, ops: Iterable[Op]) -> asyncio.Future[None]:
        """Statements for the next commit, in order; the future is done once they are
        committed (its exception: they could not be)."""
        self._ops.extend(ops)
        if self._committed is None:
            self._committed = asyncio.get_running_loop().create_future()
        self._wake.set()
        self._hurry.set()
        return self._committed

    # -- the writer ----------------------------------------------------------------------

    def start(self) -> None:
        self._writer.spawn(self._run(), "write call records")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self._wake.wait()
            # Gather a batch: one commit for many calls (cut short by close(), or by a
            # caller waiting for the commit; those gather while the last commit runs).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), self._interval)
            self._wake.clear()
            self._hurry.clear()
            try:
                await self.flush()
                if time.monotonic() - self._pruned_at > PRUNE_EVERY:
                    await self.prune()
                if self._reclaim:
                    await self.reclaim()
            except (aiosqlite.Error, ValueError) as exc:
                log.error("could not write call records: %s", exc)

    async def flush(self) -> None:
        """Writes every record and log waiting (the reads call it first, as does close)."""
        async with self._writing:
            records, self._records = self._records, []
            logs, self._logs = self._logs, {}
            ops, self._ops = self._ops, []
            committed, self._committed = self._committed, None
            if not records and not logs and not ops:
                return
            try:
                await self._write(records, logs, ops)
            except BaseException as exc:
                if committed is not None and not committed.done():
                    if isinstance(exc, Exception):
                        committed.set_exception(exc)
                        committed.exception()  # a waiter that went away leaves no warning
                    else:
                        committed.cancel()
                raise
            if committed is not None and not committed.done():
                committed.set_result(None)

    async def _write(
        self, records: list[CallRecord], logs: dict[str, bytearray], ops: list[Op]
    ) -> None:
        try:
            for i in range(0, len(records), ROWS_PER_INSERT):
                batch = records[i : i + ROWS_PER_INSERT]
                await self._db.execute(insert_sql(len(batch)), [v for r in batch for v in r])
            if logs:
                marker = CUT_MARKER.decode()
                await self._db.executemany(
                    _APPEND_LOG,
                    [
                        {
                            "id": call_id,
                            "log": data.decode("utf-8", "replace"),
                            "cap": self._max_log,
                            "marker": marker,
                        }
                        for call_id, data in logs.items()
                    ],
                )
            for sql, params in ops:
                await self._db.execute(sql, params)
            await self._db.commit()
        except BaseException:
            await self._db.rollback()
            raise

    async def prune(self) -> None:
        """Retention: records (and logs) past the age limit, then past the count limit."""
        self._pruned_at = time.monotonic()
        async with self._writing:
            cutoff = id_at(time.time() - self._max_age)
            rows = await self._db.execute_fetchall(
                "SELECT id FROM calls ORDER BY id DESC LIMIT 1 OFFSET ?", (self._max_count,)
            )
            if rows:
                cutoff = max(cutoff, rows[0][0] + "~")  # "~" sorts after every ULID digit
            await self._db.execute("DELETE FROM calls WHERE id < ?", (cutoff,))
            await self._db.execute("DELETE FROM call_logs WHERE id < ?", (cutoff,))
            await self._db.execute("DELETE FROM call_responses WHERE id < ?", (cutoff,))
            await self._db.commit()
        await self.reclaim()

    def reclaim_soon(self) -> None:
        """Asks the writer to give freed pages back after its next flush (AsyncCalls,
        once ended calls have freed megabytes of request bodies)."""
        self._reclaim = True
        self._wake.set()

    async def reclaim(self) -> None:
        """Gives the database's free pages back to the file system (incremental
        auto-vacuum). executescript: the sqlite3 module steps a plain execute of this
        pragma once, which frees a single page."""
        self._reclaim = False
        async with self._writing:
            await self._db.executescript("PRAGMA incremental_vacuum;")

    async def close(self, grace: float) -> None:
        """Stops the writer task and writes what is still waiting (SIGTERM: nothing
        recorded is lost). The task ends on its own: cancelling it mid-write could not
        stop the write, only lose track of its commit; it is only when stuck past `grace`."""
        self._stopping.set()
        self._wake.set()
        self._hurry.set()
        await self._writer.close(grace)
        await self.flush()

    # -- reads (the calls API) -----------------------------------------------------------

    async def list(
        self,
        app: str,
        *,
        route: str | None = None,
        state: str | None = None,
        start: str | None = None,
        since: float | None = None,
        cursor: str | None = None,
        limit: int = 30,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The app's records newest first, and the cursor of the next page (None: last)."""
        await self.flush()
        where, args = ["app = ?"], [app]
        for column, value in (("route", route), ("state", state), ("start", start)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("id >= ?")
            args.append(id_at(since))
        if cursor is not None:
            where.append("id < ?")
            args.append(cursor)
        rows = await self._db.execute_fetchall(
            f"SELECT {', '.join(FIELDS)} FROM calls WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?",
            (*args, limit + 1),
        )
        records = [_as_dict(row) for row in rows[:limit]]
        return records, (records[-1]["id"] if len(rows) > limit else None)

    async def get(self, call_id: str, app: str | None = None) -> dict[str, Any] | None:
        await self.flush()
        rows = await self._db.execute_fetchall(
            f"SELECT {', '.join(FIELDS)} FROM calls WHERE id = ?", (call_id,)
        )
        if not rows or (app is not None and rows[0][1] != app):
            return None
        return _as_dict(rows[0])

    async def response(self, call_id: str) -> StoredResponse | None:
        await self.flush()
        rows = await self._db.execute_fetchall(
            "SELECT status, headers, body, truncated FROM call_responses WHERE id = ?",
            (call_id,),
        )
        if not rows:
            return None
        status, headers, body, truncated = rows[0]
        return StoredResponse(
            status, [tuple(h) for h in orjson.loads(headers)], bytes(body), bool(truncated)
        )

    async def log(self, call_id: str) -> str:
        await self.flush()
        rows = await self._db.execute_fetchall("SELECT log FROM call_logs WHERE id = ?", (call_id,))
        return rows[0][0] if rows else ""


class NoCallRecords:
    """The stand-in while call records are off (EXECUTOR_CALL_RECORDS=false): calls end
    unrecorded, and the calls API answers 404 with the reason."""

    reason = "call records are off (EXECUTOR_CALL_RECORDS=false)"

    def add(self, record: CallRecord, log_data: bytes = b"") -> None:
        pass

    def add_log(self, call_id: str, data: bytes) -> None:
        pass

    def start(self) -> None:
        pass

    async def close(self, grace: float) -> None:
        pass

    async def list(self, app: str, **filters: Any) -> tuple[list[dict[str, Any]], str | None]:
        raise NotFound(self.reason)

    async def get(self, call_id: str, app: str | None = None) -> dict[str, Any] | None:
        raise NotFound(self.reason)

    async def response(self, call_id: str) -> StoredResponse | None:
        raise NotFound(self.reason)

    async def log(self, call_id: str) -> str:
        raise NotFound(self.reason)


# What the invoker, the pools and the calls API use of the call records.
Records = CallRecords | NoCallRecords


def id_at(moment: float) -> str:
    """The smallest call id of that moment (unix seconds): ids are ULIDs, time first."""
    return str(ULID.from_timestamp(max(moment, 0.0)))[:10] + "0" * 16


# The latest `since` a ULID can hold (its 48-bit millisecond time): year 10889.
SINCE_MAX = (2**48 - 1) / 1000


def parse_since(value: str) -> float:
    """`since` as unix seconds or RFC 3339; ValueError names what it expects."""
    try:
        moment = float(value)
    except ValueError:
        moment = _rfc3339_seconds(value)
    # inf, nan and 1e300 parse as floats; call ids (ULIDs) hold no such time.
    if not 0 <= moment <= SINCE_MAX:
        raise ValueError(f"since must be a time from 0 to {SINCE_MAX:.0f} unix seconds")
    return moment


def _rfc3339_seconds(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("since must be unix seconds or an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError("since must carry a time zone (e.g. a trailing Z)")
    return moment.timestamp()


def _as_dict(row: Sequence[Any]) -> dict[str, Any]:
    record = dict(zip(FIELDS, row, strict=True))
    for name in TIMES:
        if record[name] is not None:
            record[name] = rfc3339(datetime.fromtimestamp(record[name], UTC))
    return record
