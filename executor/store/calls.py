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

import orjson
from ulid import ULID

from executor.calls import CallRecord, StoredResponse
from executor.errors import NotFound, StoreUnavailable
from executor.models import rfc3339
from executor.store.database import STORE_ERRORS, Database, upsert_sql
from executor.tasks import TaskGroup

log = logging.getLogger(__name__)

FIELDS = CallRecord._fields
# A record's row: its fields and the node that wrote it (a shared store has several).
COLUMNS = (*FIELDS, "node")
# The record's times: unix seconds in the database, RFC 3339 in the API.
TIMES = ("created_at", "started_at", "completed_at")
# Many rows per statement: one step, so the writer thread gives up the GIL once per batch
# rather than once per row (each hand-over costs the event loop a wake-up).
ROWS_PER_INSERT = 500


# A statement and its parameters, run by the writer in the order given. A CallRecord as
# the parameters (of insert_sql(1)) is written with the writer's node.
Op = tuple[str, Sequence[Any]]


def bound(op: Op, node: str) -> Op:
    """The op as run by `node`: a record's row carries the node that wrote it."""
    sql, params = op
    return (sql, (*params, node)) if isinstance(params, CallRecord) else op


@functools.lru_cache(maxsize=64)
def insert_sql(rows: int) -> str:
    """The upsert of `rows` records (ids distinct: one row is not changed twice)."""
    return upsert_sql("calls", COLUMNS, ("id",), rows=rows)


# A log grows by appends, up to the cap (characters: logs are kept as text), where a note
# says it was cut; a log already cut stays as it is.
# Parameters: id, log, cap, cap, cap, marker.
_APPEND_LOG = (
    "INSERT INTO call_logs (id, log) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET log = "
    "CASE WHEN length(call_logs.log) >= ? THEN call_logs.log "
    "WHEN length(call_logs.log || excluded.log) > ? "
    "THEN substr(call_logs.log || excluded.log, 1, ?) || ? "
    "ELSE call_logs.log || excluded.log END"
)
# Appended where a log reaches its cap (the stored text may hold the cap plus this).
CUT_MARKER = b"\n[log cut: over the limit]\n"
# Past this many records waiting (the store stuck or gone), new ones are dropped.
MAX_PENDING = 100_000
PRUNE_EVERY = 60.0
# A batch the store could not take (gone) is tried again after this.
RETRY_AFTER = 1.0


class CallRecords:
    def __init__(
        self,
        db: Database,
        *,
        node: str,
        flush_interval: float,
        max_log_bytes: int,
        max_count: int,
        max_age: float,
    ) -> None:
        self._db = db
        self._node = node
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
            self._dropped(1)
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
            except STORE_ERRORS as exc:
                log.error("could not write call records: %s", exc)
                if self._records:  # kept back (the store is gone): tried again soon
                    await asyncio.sleep(RETRY_AFTER)
                    self._wake.set()

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
                if isinstance(exc, StoreUnavailable):
                    self._keep_back(records, logs)
                if committed is not None and not committed.done():
                    if isinstance(exc, Exception):
                        committed.set_exception(exc)
                        committed.exception()  # a waiter that went away leaves no warning
                    else:
                        committed.cancel()
                raise
            if committed is not None and not committed.done():
                committed.set_result(None)

    @property
    def waiting(self) -> int:
        return len(self._records)

    def _keep_back(self, records: list[CallRecord], logs: dict[str, bytearray]) -> None:
        """A batch the store could not take because it is gone: kept for the next try, in
        front of the records since, within MAX_PENDING (past it, the newest are dropped)."""
        room = max(MAX_PENDING - len(self._records), 0)
        kept, lost = records[:room], len(records) - room
        self._records[:0] = kept
        for call_id, data in logs.items():
            self._logs[call_id] = data + self._logs.get(call_id, bytearray())
        if lost > 0:
            self._dropped(lost)

    def _dropped(self, count: int) -> None:
        if not self.dropped:
            log.warning("call records are not being written fast enough: dropping some")
        self.dropped += count

    async def _write(
        self, records: list[CallRecord], logs: dict[str, bytearray], ops: list[Op]
    ) -> None:
        rows = list({r.id: (*r, self._node) for r in records}.values())  # the last of a call
        async with self._db.transaction() as tx:
            for i in range(0, len(rows), ROWS_PER_INSERT):
                batch = rows[i : i + ROWS_PER_INSERT]
                await tx.execute(insert_sql(len(batch)), [v for row in batch for v in row])
            if logs:
                marker, cap = CUT_MARKER.decode(), self._max_log
                await tx.executemany(
                    _APPEND_LOG,
                    [
                        (call_id, data.decode("utf-8", "replace"), cap, cap, cap, marker)
                        for call_id, data in logs.items()
                    ],
                )
            for op in ops:
                await tx.execute(*bound(op, self._node))

    async def prune(self) -> None:
        """Retention: records (and logs) past the age limit, then past the count limit.
        On a shared store, by one node of the fleet at a time."""
        self._pruned_at = time.monotonic()
        if not await self._db.exclusive("retention"):
            return
        async with self._writing, self._db.transaction() as tx:
            cutoff = id_at(time.time() - self._max_age)
            rows = await tx.fetch(
                "SELECT id FROM calls ORDER BY id DESC LIMIT 1 OFFSET ?", (self._max_count,)
            )
            if rows:
                cutoff = max(cutoff, rows[0][0] + "~")  # "~" sorts after every ULID digit
            await tx.execute("DELETE FROM calls WHERE id < ?", (cutoff,))
            await tx.execute("DELETE FROM call_logs WHERE id < ?", (cutoff,))
            await tx.execute("DELETE FROM call_responses WHERE id < ?", (cutoff,))
        await self.reclaim()

    def reclaim_soon(self) -> None:
        """Asks the writer to give freed pages back after its next flush (AsyncCalls,
        once ended calls have freed megabytes of request bodies)."""
        self._reclaim = True
        self._wake.set()

    async def reclaim(self) -> None:
        """Gives the database's free pages back to the file system (SQLite's incremental
        auto-vacuum)."""
        self._reclaim = False
        async with self._writing:
            await self._db.reclaim()

    async def close(self, grace: float) -> None:
        """Stops the writer task and writes what is still waiting (SIGTERM: nothing
        recorded is lost). The task ends on its own: cancelling it mid-write could not
        stop the write, only lose track of its commit; it is only when stuck past `grace`."""
        self._stopping.set()
        self._wake.set()
        self._hurry.set()
        await self._writer.close(grace)
        try:
            await self.flush()
        except STORE_ERRORS as exc:
            log.error("call records: %d not written at shutdown: %s", len(self._records), exc)

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
        rows = await self._db.fetch(
            f"SELECT {', '.join(COLUMNS)} FROM calls WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?",
            (*args, limit + 1),
        )
        records = [_as_dict(row) for row in rows[:limit]]
        return records, (records[-1]["id"] if len(rows) > limit else None)

    async def get(self, call_id: str, app: str | None = None) -> dict[str, Any] | None:
        await self.flush()
        rows = await self._db.fetch(
            f"SELECT {', '.join(COLUMNS)} FROM calls WHERE id = ?", (call_id,)
        )
        if not rows or (app is not None and rows[0][1] != app):
            return None
        return _as_dict(rows[0])

    async def response(self, call_id: str) -> StoredResponse | None:
        await self.flush()
        rows = await self._db.fetch(
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
        rows = await self._db.fetch("SELECT log FROM call_logs WHERE id = ?", (call_id,))
        return rows[0][0] if rows else ""


class NoCallRecords:
    """The stand-in while call records are off (EXECUTOR_CALL_RECORDS=false): calls end
    unrecorded, and the calls API answers 404 with the reason."""

    reason = "call records are off (EXECUTOR_CALL_RECORDS=false)"
    dropped = 0
    waiting = 0

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
    record = dict(zip(COLUMNS, row, strict=True))
    for name in TIMES:
        if record[name] is not None:
            record[name] = rfc3339(datetime.fromtimestamp(record[name], UTC))
    return record
