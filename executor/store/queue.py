"""The durable queue of async calls: the statements that move a call through it (run by the
one writer, `CallRecords.write`, each step in one commit with the call's record) and the
reads that replay it.

A queued call's row holds its request until the call ends. `attempts` counts the runs
begun and is committed before a run begins, so after a crash (kill -9 included: the WAL
holds every commit) a row in state `running` is a call that may have reached its function.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite
import orjson

from executor.calls import CallRecord, StoredResponse
from executor.store.calls import Op, insert_sql


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
                request.url,
                orjson.dumps(request.headers),
                request.body,
                record.created_at,
            ),
        ),
    ]


def began(record: CallRecord) -> list[Op]:
    return [
        (insert_sql(1), record),
        (
            "UPDATE queue SET state = 'running', attempts = attempts + 1 WHERE id = ?",
            (record.id,),
        ),
    ]


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
                "INSERT OR REPLACE INTO call_responses (id, status, headers, body, truncated) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    record.id,
                    response.status,
                    orjson.dumps(response.headers),
                    response.body,
                    int(response.truncated),
                ),
            )
        )
    return ops


async def pending(db: aiosqlite.Connection) -> list[Queued]:
    """Every call in the queue, oldest first."""
    rows = await db.execute_fetchall(
        "SELECT id, app, route, method, created_at, attempts, state FROM queue ORDER BY id"
    )
    return [Queued(*row) for row in rows]


async def request(db: aiosqlite.Connection, call_id: str) -> Request | None:
    rows = await db.execute_fetchall(
        "SELECT method, url, headers, body FROM queue WHERE id = ?", (call_id,)
    )
    if not rows:
        return None
    method, url, headers, body = rows[0]
    return Request(method, url, [tuple(h) for h in orjson.loads(headers)], bytes(body))
