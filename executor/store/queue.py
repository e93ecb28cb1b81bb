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
                _raw(request.url),
                orjson.dumps([_header_row(name, value) for name, value in request.headers]),
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
        "SELECT id, app, route, method, created_at, attempts, state, length(body) FROM queue "
        "ORDER BY id"
    )
    return [Queued(*row) for row in rows]


async def request(db: aiosqlite.Connection, call_id: str) -> Request | None:
    rows = await db.execute_fetchall(
        "SELECT method, url, headers, body FROM queue WHERE id = ?", (call_id,)
    )
    if not rows:
        return None
    method, url, headers, body = rows[0]
    if isinstance(url, bytes):
        url = url.decode("utf-8", "surrogateescape")
    return Request(method, url, [_header(row) for row in orjson.loads(headers)], bytes(body))


# aiohttp decodes request bytes as UTF-8 with surrogateescape, so a header or URL holding
# a byte that is not UTF-8 is a str that neither JSON nor SQLite text can hold. Such a
# value is kept as its bytes: the URL as a blob, a header value as latin-1 text marked so.
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
