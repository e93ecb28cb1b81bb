"""Call records on both backends (real databases, no Docker): batching, reads, retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ulid import ULID

from executor.calls import CallRecord
from executor.store.calls import CallRecords, id_at, parse_since
from executor.store.store import Store


def record(n: int = 0, moment: float | None = None, **fields) -> CallRecord:
    call_id = str(ULID.from_timestamp(moment if moment is not None else time.time() + n / 1000))
    base = CallRecord(
        id=call_id,
        app="a",
        route="/p",
        method="POST",
        state="success",
        http_status=200,
        start="warm",
        container_id="c",
        created_at=1767225600.0,
        started_at=None,
        completed_at=1767225600.001,
        wait_ms=0.1,
        start_ms=None,
        exec_ms=0.5,
        error=None,
    )
    return base._replace(**fields)


@pytest.fixture
async def store(db_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(db_url, tmp_path)
    yield store
    await store.close()


def records_of(store: Store, **kw) -> CallRecords:
    options = dict(flush_interval=0.01, max_log_bytes=16, max_count=1000, max_age=3600.0)
    return CallRecords(store.db, node="node-a", **{**options, **kw})


async def count(store: Store) -> int:
    return (await store.db.fetch("SELECT count(*) FROM calls"))[0][0]


async def test_the_writer_writes_batches_in_the_background(store):
    records = records_of(store)
    records.start()
    for n in range(50):
        records.add(record(n))
    assert await count(store) == 0  # add() only appends
    await asyncio.sleep(0.1)
    assert await count(store) == 50
    await records.close(10)
    assert not records._writer  # the writer ended on its own


async def test_close_writes_what_is_waiting(store):
    records = records_of(store, flush_interval=60.0)
    records.start()
    records.add(record(), b"last words\n")
    await records.close(10)
    assert await count(store) == 1


async def test_filters_and_cursor_pages_newest_first(store):
    records = records_of(store)
    for n in range(7):
        records.add(record(n, route="/p" if n % 2 else "/q"))
    records.add(record(8, state="error", http_status=502, error="boom"))
    ids = []
    page, cursor = await records.list("a", limit=3)
    while True:
        ids += [r["id"] for r in page]
        if cursor is None:
            break
        page, cursor = await records.list("a", limit=3, cursor=cursor)
    assert len(ids) == 8 and ids == sorted(ids, reverse=True)
    only_p, _ = await records.list("a", route="/p")
    assert [r["route"] for r in only_p] == ["/p"] * 4  # 1, 3, 5 and the error
    errors, _ = await records.list("a", state="error")
    assert [(r["http_status"], r["error"]) for r in errors] == [(502, "boom")]
    assert (await records.list("b"))[0] == []
    later, _ = await records.list("a", since=time.time() + 3600)
    assert later == []


async def test_logs_grow_by_appends_up_to_the_cap(store):
    records = records_of(store)  # 16 bytes
    r = record()
    records.add_log(r.id, b"early ")  # a hot call's lines may come before its record
    records.add(r)
    await records.flush()
    records.add_log(r.id, b"late and long enough to pass the cap")
    assert await records.log(r.id) == "early late and l\n[log cut: over the limit]\n"
    records.add_log(r.id, b"more")
    assert await records.log(r.id) == "early late and l\n[log cut: over the limit]\n"
    stored = await records.get(r.id)
    assert stored["state"] == "success"
    assert (stored["created_at"], stored["started_at"]) == ("2026-01-01T00:00:00.000Z", None)
    assert stored["completed_at"] == "2026-01-01T00:00:00.001Z"
    assert await records.get(r.id, app="other") is None


async def test_retention_by_count_and_by_age(store):
    records = records_of(store, max_count=5, max_age=60.0)
    old = record(moment=time.time() - 120)
    records.add(old, b"old log")
    for n in range(8):
        records.add(record(n))
    await records.flush()
    await records.prune()
    left = [r["id"] for r in (await records.list("a", limit=100))[0]]
    assert len(left) == 5 and old.id not in left
    assert await records.log(old.id) == ""


def test_since_takes_unix_seconds_or_rfc3339():
    assert parse_since("1700000000") == 1700000000.0
    assert parse_since("2023-11-14T22:13:20Z") == 1700000000.0
    with pytest.raises(ValueError, match="time zone"):
        parse_since("2023-11-14T22:13:20")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_since("yesterday")
    assert id_at(1700000000.0) < str(ULID.from_timestamp(1700000000.001))
