"""The durable queue of async calls: the statements that move a call through it, each step
in one commit with the call's record (most through the one writer, `CallRecords.write`;
a claim and a cancel in a transaction of their own, as they must know whether they won),
and the reads that replay it.

A queued call's row holds its request until the call ends. `attempts` counts the runs
begun and is committed before a run begins, so after a crash (kill -9 included: the WAL
holds every commit) a row in state `running` is a call that may have reached its function.
A running row names its node and that node's lease: on a shared store any node claims a
queued call (a conditional update: of two nodes, one wins), and takes over the running
calls of a node whose lease ran out.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from executor.calls import CallRecord, StoredResponse
from executor.store.calls import Op, bound, insert_sql
from executor.store.database import Database, Transaction, upsert_sql

RESPONSE_COLUMNS = ("id", "status", "headers", "body", "truncated")


@dataclass(frozen=True, slots=True)
class Request:
    """What an async call replays when it runs: the caller's request."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(slots=True)
class Queued:
    """A call in the queue, without its request (read when it runs)."""

    id: str
    app: str
    route: str
    method: str
    created_at: float  # unix seconds: its record keeps it across runs
    attempts: int
    state: str  # queued | running
    size: int = 0  # bytes of its request body (the queue's bounds count them)
    # Its request, while held in memory (calls queued by this process, within a cap).
    request: Request | None = None


def enqueued(record: CallRecord, request: Request) -> list[Op]:
    return [
        (insert_sql(1), record),
        (
            "INSERT INTO queue (id, app, route, method, url, headers, body, created_at, "
            "state, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0)",
            (
                record.id,
                record.app,
                record.route,
                request.method,
                request.url.encode("utf-8", "surrogateescape"),
                orjson.dumps([_header_row(n, v) for n, v in request.headers]).decode(),
                request.body,
                record.created_at,
            ),
        ),
    ]


async def claim(db: Database, record: CallRecord, node: str, lease_until: float) -> int | None:
    """Takes a queued call to run it on `node` (its record `running`, a run counted): the
    run's number, or None if it is no longer queued (another node took it, or it ended)."""
    async with db.transaction() as tx:
        rows = await tx.fetch(
            "UPDATE queue SET state = 'running', attempts = attempts + 1, node = ?, "
            "lease_until = ? WHERE id = ? AND state = 'queued' RETURNING attempts",
            (node, lease_until, record.id),
        )
        if not rows:
            return None
        await tx.execute(*bound((insert_sql(1), record), node))
    return int(rows[0][0])


async def cancel(db: Database, record: CallRecord, node: str) -> bool:
    """Ends a queued call as cancelled; False if it is not queued (running, or ended)."""
    async with db.transaction() as tx:
        rows = await tx.fetch(
            "DELETE FROM queue WHERE id = ? AND state = 'queued' RETURNING id", (record.id,)
        )
        if rows:
            await tx.execute(*bound((insert_sql(1), record), node))
    return bool(rows)


async def renew(db: Database, call_ids: list[str], node: str, lease_until: float) -> None:
    """The node's leases on the calls it runs, renewed (its heartbeat): a transaction a
    call, so that it holds one row at a time. Renewed in one transaction, they deadlocked
    with the records writer's batch ending some of the same calls in another order
    (PostgreSQL aborted one of the two: seen in benchmarks/store.py)."""
    for call_id in call_ids:
        async with db.transaction() as tx:
            await tx.execute(
                "UPDATE queue SET lease_until = ? WHERE id = ? AND node = ? AND state = 'running'",
                (lease_until, call_id, node),
            )


def requeued(record: CallRecord, *, undo_attempt: bool = False) -> list[Op]:
    """Back in the queue: to be retried, or (undo_attempt) never run after all."""
    less = " - 1" if undo_attempt else ""
    return [
        (insert_sql(1), record),
        (
            f"UPDATE queue SET state = 'queued', attempts = attempts{less} WHERE id = ?",
            (record.id,),
        ),
    ]


def ended(record: CallRecord, response: StoredResponse | None) -> list[Op]:
    ops: list[Op] = [
        (insert_sql(1), record),
        ("DELETE FROM queue WHERE id = ?", (record.id,)),
    ]
    if response is not None:
        ops.append(
            (
                upsert_sql("call_responses", RESPONSE_COLUMNS, ("id",)),
                (
                    record.id,
                    response.status,
                    orjson.dumps(response.headers).decode(),
                    response.body,
                    int(response.truncated),
                ),
            )
        )
    return ops


_QUEUED = "SELECT id, app, route, method, created_at, attempts, state, length(body) FROM queue"


async def queued(db: Database, call_id: str | None = None) -> list[Queued]:
    """Every call waiting in the queue, oldest first (or the one named, if it waits)."""
    if call_id is None:
        rows = await db.fetch(f"{_QUEUED} WHERE state = 'queued' ORDER BY id")
    else:
        rows = await db.fetch(f"{_QUEUED} WHERE state = 'queued' AND id = ?", (call_id,))
    return [Queued(*row) for row in rows]


async def orphaned(tx: Transaction, node: str, lock: str) -> list[Queued]:
    """Running calls of `node` before it restarted (NULL: from before nodes were
    recorded), locked for the transaction (`lock`: the backend's clause for it)."""
    rows = await tx.fetch(
        f"{_QUEUED} WHERE state = 'running' AND (node = ? OR node IS NULL) ORDER BY id{lock}",
        (node,),
    )
    return [Queued(*row) for row in rows]


async def expired(tx: Transaction, now: float, lock: str) -> list[Queued]:
    """Running calls whose node's lease ran out (locked for the transaction)."""
    rows = await tx.fetch(
        f"{_QUEUED} WHERE state = 'running' AND lease_until < ? ORDER BY id{lock}", (now,)
    )
    return [Queued(*row) for row in rows]


async def request(db: Database, call_id: str) -> Request | None:
    rows = await db.fetch("SELECT method, url, headers, body FROM queue WHERE id = ?", (call_id,))
    if not rows:
        return None
    method, url, headers, body = rows[0]
    if isinstance(url, bytes):
        url = url.decode("utf-8", "surrogateescape")
    return Request(method, url, [_header(row) for row in orjson.loads(headers)], bytes(body))


# aiohttp decodes request bytes as UTF-8 with surrogateescape, so a header or URL holding
# a byte that is not UTF-8 is a str that neither JSON nor a database's text can hold. The
# URL is kept as its bytes (a blob; rows queued before were text, read as such), a header
# value that is not UTF-8 as latin-1 text marked so.
RAW = 1


def _raw(text: str) -> str | bytes:
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def _header_row(name: str, value: str) -> list[str | int]:
    if isinstance(_raw(name + value), str):
        return [name, value]
    return [*(t.encode("utf-8", "surrogateescape").decode("latin-1") for t in (name, value)), RAW]


def _header(row: list) -> tuple[str, str]:
    name, value = row[0], row[1]
    if row[2:] == [RAW]:
        name, value = (t.encode("latin-1").decode("utf-8", "surrogateescape") for t in row[:2])
    return name, value
