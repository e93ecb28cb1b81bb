"""The async calls' queue on both backends (real databases, no Docker): each step commits
with the call's record, waiters learn of the commit, and the queue reads back in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from executor.calls import StoredResponse, new_id, unended
from executor.store import queue
from executor.store.calls import CallRecords
from executor.store.database import STORE_ERRORS, is_postgres
from executor.store.queue import Request
from executor.store.store import Store

NODE = "node-a"


@pytest.fixture
async def store(db_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(db_url, tmp_path)
    yield store
    await store.close()


async def read_elsewhere(db_url: str, sql: str, *params) -> list[tuple]:
    """Rows read through a connection of its own: what another process sees."""
    if is_postgres(db_url):
        conn = await asyncpg.connect(db_url)
        try:
            return [tuple(r) for r in await conn.fetch(sql.replace("?", "$1"), *params)]
        finally:
            await conn.close()
    async with aiosqlite.connect(db_url) as other:
        return list(await other.execute_fetchall(sql, params))


@pytest.fixture
async def records(store: Store) -> AsyncIterator[CallRecords]:
    # A long gathering interval: a waiter for the commit must not wait for it.
    records = CallRecords(
        store.db, node=NODE, flush_interval=5.0, max_log_bytes=64, max_count=1000, max_age=3600.0
    )
    records.start()
    yield records
    await records.close(10)


def queued(call_id: str, state="queued", error=None):
    return unended(call_id, "a", "/p", "POST", time.time(), state, error)


REQUEST = Request("POST", "http://h/r/a/p", [("X-One", "1"), ("X-One", "2")], b"\x00body")


async def state_of(store: Store, call_id: str) -> tuple:
    db = store.db
    calls = await db.fetch("SELECT state, error FROM calls WHERE id = ?", (call_id,))
    rows = await db.fetch("SELECT state, attempts FROM queue WHERE id = ?", (call_id,))
    return (calls[0] if calls else None, rows[0] if rows else None)


async def test_a_write_is_committed_before_its_waiter_resumes_without_gathering(
    store, records, db_url
):
    call_id = new_id()
    began = time.monotonic()
    await records.write(queue.enqueued(queued(call_id), REQUEST))
    assert time.monotonic() - began < 1.0  # not the 5 s gathering interval
    # Committed: a second connection sees it.
    rows = await read_elsewhere(db_url, "SELECT state FROM queue WHERE id = ?", call_id)
    assert rows == [("queued",)]
    assert await queue.request(store.db, call_id) == REQUEST


async def test_a_call_moves_through_the_queue_and_leaves_it_when_it_ends(store, records):
    call_id = new_id()
    await records.write(queue.enqueued(queued(call_id), REQUEST))
    assert await queue.claim(store.db, queued(call_id, "running"), NODE, time.time() + 30) == 1
    assert await state_of(store, call_id) == (("running", None), ("running", 1))
    await records.write(queue.requeued(queued(call_id, "queued", "run 1 failed")))
    assert await state_of(store, call_id) == (("queued", "run 1 failed"), ("queued", 1))
    assert await queue.claim(store.db, queued(call_id, "running"), NODE, time.time() + 30) == 2
    assert await state_of(store, call_id) == (("running", None), ("running", 2))
    await records.write(queue.requeued(queued(call_id), undo_attempt=True))
    assert await state_of(store, call_id) == (("queued", None), ("queued", 1))
    response = StoredResponse(201, [("Content-Type", "text/plain")], b"done", truncated=True)
    done = queued(call_id, "success")._replace(http_status=201, completed_at=time.time())
    await records.write(queue.ended(done, response))
    assert await state_of(store, call_id) == (("success", None), None)
    assert await records.response(call_id) == response
    assert await queue.request(store.db, call_id) is None


async def test_the_queue_reads_back_oldest_first(store, records):
    ids = [new_id() for _ in range(5)]
    await records.write(
        [op for call_id in reversed(ids) for op in queue.enqueued(queued(call_id), REQUEST)]
    )
    await queue.claim(store.db, queued(ids[2], "running"), NODE, time.time() + 30)
    pending = await queue.queued(store.db)
    assert [q.id for q in pending] == ids[:2] + ids[3:]  # the running one is not waiting
    assert {(q.app, q.route, q.method, q.attempts) for q in pending} == {("a", "/p", "POST", 0)}


async def test_of_two_nodes_claiming_one_call_exactly_one_wins(store, records):
    call_id = new_id()
    await records.write(queue.enqueued(queued(call_id), REQUEST))
    running = queued(call_id, "running")
    until = time.time() + 30
    won = await asyncio.gather(
        *(queue.claim(store.db, running, node, until) for node in ("node-a", "node-b"))
    )
    assert sorted(won, key=str) == [1, None]
    assert not await queue.cancel(store.db, queued(call_id, "cancelled"), "node-b")


async def test_a_call_whose_lease_ran_out_is_found_and_a_renewed_one_is_not(store, records):
    stale, live = new_id(), new_id()
    await records.write([op for i in (stale, live) for op in queue.enqueued(queued(i), REQUEST)])
    now = time.time()
    await queue.claim(store.db, queued(stale, "running"), "node-a", now + 0.1)
    await queue.claim(store.db, queued(live, "running"), "node-b", now + 0.1)
    await queue.renew(store.db, [live], "node-b", now + 30)
    async with store.db.transaction() as tx:
        found = await queue.expired(tx, now + 1, store.db.lock_rows)
        assert [q.id for q in found] == [stale]
        mine = await queue.orphaned(tx, "node-b", store.db.lock_rows)
        assert [q.id for q in mine] == [live]


async def test_a_failed_commit_fails_its_waiters_and_writes_none_of_the_batch(store, records):
    call_id = new_id()
    await records.write(queue.enqueued(queued(call_id), REQUEST))
    with pytest.raises(STORE_ERRORS):  # the same id twice in the queue
        await records.write(queue.enqueued(queued(call_id, error="second"), REQUEST))
    assert await state_of(store, call_id) == (("queued", None), ("queued", 0))


async def test_a_request_with_bytes_that_are_not_utf8_reads_back_as_it_came(store, records):
    # aiohttp hands such bytes over as surrogate escapes: neither JSON nor SQLite text.
    odd = b"caf\xe9".decode("utf-8", "surrogateescape")
    request = Request("POST", f"http://x/r/a/p?q={odd}", [("X-Odd", odd), ("X-Ok", "é")], b"b")
    call_id = new_id()
    await records.write(queue.enqueued(queued(call_id), request))
    assert await queue.request(store.db, call_id) == request
    [pending] = await queue.queued(store.db)
    assert pending.size == 1  # its body's bytes, counted by the queue's bounds
