"""Async calls on the real engine: 202, the durable queue, order, cancelling, retries, the
priority of sync calls. (kill -9 durability: test_async_durability.py.)"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from executor.async_calls import RESTARTED
from executor.calls import new_id
from tests.integration.conftest import Executor
from tests.integration.test_invoke_hot import wait_pool

FINAL = {"success", "error", "timeout", "cancelled"}


async def submit(ex: Executor, path: str, body: bytes = b"", **headers: str) -> str:
    response = await ex.client.post(f"/r/t{path}", data=body, headers=headers)
    data = await response.json()
    assert response.status == 202, data
    assert response.headers["Location"] == f"/v1/apps/t/calls/{data['call_id']}"
    assert response.headers["Fn-Call-Id"] == data["call_id"]
    return data["call_id"]


async def record(ex: Executor, call_id: str) -> dict[str, Any]:
    return (await ex.json("GET", f"/v1/apps/t/calls/{call_id}"))["call"]


async def ended(ex: Executor, call_id: str, within: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while (call := await record(ex, call_id))["state"] not in FINAL:
        assert time.monotonic() < deadline, f"call never ended: {call}"
        await asyncio.sleep(0.05)
    return call


class EngineStarts:
    """The call ids of the cold containers the engine starts, one per start event: runs
    counted on the engine's side. A live subscription (from its creation on): the
    engine keeps only its last few hundred events for a later `--since` query."""

    def __init__(self, group: str, out: Path) -> None:
        self._out = out
        with out.open("wb") as sink:
            self._process = subprocess.Popen(
                [
                    "docker", "events", "--since", f"{time.time() - 1:.3f}",
                    "--filter", f"label=executor.group={group}", "--filter", "event=start",
                    "--format", '{{index .Actor.Attributes "executor.call"}}',
                ],
                stdout=sink,
            )  # fmt: skip

    def calls(self, settle: float = 1.0) -> list[str]:
        """Every start seen so far (after `settle` seconds for the last to arrive)."""
        time.sleep(settle)
        return self._out.read_text().split()

    def close(self) -> None:
        self._process.kill()
        self._process.wait()


@pytest.fixture
def engine_starts(executor: Executor, tmp_path: Path):
    starts = EngineStarts(executor.group, tmp_path / "starts")
    yield starts
    starts.close()


async def test_an_async_call_is_committed_answered_202_and_its_result_kept(executor, db):
    await executor.route("/hello", "executor/hello", type="async")
    response = await executor.client.post("/r/t/hello", data=b'{"name": "Ada"}')
    assert response.status == 202
    call_id = (await response.json())["call_id"]
    assert response.headers["Executor-Instance"] == executor.instance
    # In the store (committed: another connection sees it) by the time of the 202.
    with sqlite3.connect(db) as other:
        row = other.execute("SELECT state FROM calls WHERE id = ?", (call_id,)).fetchone()
    assert row is not None and row[0] in ("queued", "running", "success")

    call = await ended(executor, call_id)
    assert call["state"] == "success" and call["http_status"] == 200, call
    assert call["start"] == "cold" and call["started_at"] >= call["created_at"]
    kept = await executor.client.get(f"/v1/apps/t/calls/{call_id}/response")
    assert kept.status == 200
    assert await kept.read() == b"Hello Ada!\n"
    assert kept.headers["Executor-Call-Status"] == "200"
    assert "Executor-Response-Truncated" not in kept.headers
    # The queue row is gone once the call ended.
    with sqlite3.connect(db) as other:
        assert other.execute("SELECT count(*) FROM queue").fetchone()[0] == 0


async def test_a_failing_async_call_is_retried_then_ends_in_error_with_its_log(
    executor, engine_starts
):
    await executor.route("/fail", "executor-test/fail", type="async", retries=2)
    call_id = await submit(executor, "/fail")
    call = await ended(executor, call_id)
    assert call["state"] == "error" and call["http_status"] == 502
    assert call["error"] == "function failed: exit status 3"
    # Three runs, as the engine saw them: the first and two retries.
    assert engine_starts.calls() == [call_id] * 3
    log = (await executor.json("GET", f"/v1/apps/t/calls/{call_id}/log"))["log"]["log"]
    assert log.count("boom: something went wrong") == 3
    kept = await executor.client.get(f"/v1/calls/{call_id}/response")
    assert kept.status == 404  # a failed cold call has no response


async def test_queued_calls_run_oldest_first_one_at_a_time_at_max_containers_1(executor):
    await executor.route("/hello", "executor/hello", type="async", max_containers=1)
    ids = [await submit(executor, "/hello", b'{"name": "n%d"}' % i) for i in range(6)]
    calls = [await ended(executor, i) for i in ids]
    assert all(c["state"] == "success" for c in calls), calls
    started = [c["started_at"] for c in calls]
    assert started == sorted(started)
    for before, after in itertools.pairwise(calls):
        assert after["started_at"] >= before["completed_at"]  # never two at once
    for i, call_id in enumerate(ids):
        body = await (await executor.client.get(f"/v1/calls/{call_id}/response")).read()
        assert body == b"Hello n%d!\n" % i


async def test_a_queued_call_can_be_cancelled_a_running_or_ended_one_cannot(
    executor, engine_starts
):
    # Hangs until its 1 s timeout: one at a time, the third waits long enough to cancel.
    await executor.route("/sleep", "executor-test/sleep", type="async", max_containers=1, timeout=1)
    first, second, third = [await submit(executor, "/sleep") for _ in range(3)]
    deadline = time.monotonic() + 10
    while (await record(executor, first))["state"] != "running":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    cancelled = await executor.json("DELETE", f"/v1/apps/t/calls/{third}")
    assert cancelled["call"]["state"] == "cancelled" and cancelled["call"]["completed_at"]
    running = await executor.json("DELETE", f"/v1/apps/t/calls/{first}", status=409)
    assert "is running" in running["error"]["message"]
    await executor.json("DELETE", "/v1/apps/t/calls/01ARZ3NDEKTSV4RRFFQ69G5FAV", status=404)

    assert (await ended(executor, first))["state"] == "timeout"
    assert (await ended(executor, second))["state"] == "timeout"
    await executor.json("DELETE", f"/v1/apps/t/calls/{second}", status=409)
    await executor.json("DELETE", f"/v1/apps/t/calls/{third}", status=409)
    assert (await record(executor, third))["state"] == "cancelled"
    assert sorted(engine_starts.calls()) == sorted([first, second])


async def test_a_sync_call_gets_the_hot_container_before_queued_async_calls(executor):
    """One hot container, a backlog of detached (async) calls of the same route: a sync
    call waits for the call running now only, then goes before the backlog."""
    await executor.route(
        "/hot", "executor-test/hot", format="http-stream", min_warm=1, max_containers=1
    )
    await wait_pool(executor, "/hot", idle=1)
    ids = [
        await submit(executor, "/hot", b"sleep 0.3", **{"Fn-Invoke-Type": "detached"})
        for _ in range(5)
    ]
    deadline = time.monotonic() + 20
    while (await record(executor, ids[0]))["state"] != "running":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    began = time.monotonic()
    response = await executor.client.post("/r/t/hot", data=b"")
    assert response.status == 200
    waited = time.monotonic() - began
    sync_id = response.headers["Fn-Call-Id"]
    sync_call = await record(executor, sync_id)
    calls = [await ended(executor, i) for i in ids]
    assert all(c["state"] == "success" for c in calls), calls
    # Only the async call running when it came started before it; it waited ~0.3 s at most.
    started_before = [c["id"] for c in calls if c["started_at"] < sync_call["started_at"]]
    assert started_before == [ids[0]], (started_before, sync_call, calls)
    assert waited < 1.5


async def test_an_async_call_of_a_deleted_route_ends_in_error(executor):
    await executor.route("/sleep", "executor-test/sleep", type="async", max_containers=1, timeout=1)
    first = await submit(executor, "/sleep")
    second = await submit(executor, "/sleep")
    deadline = time.monotonic() + 10
    while (await record(executor, first))["state"] != "running":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await executor.json("DELETE", "/v1/apps/t/routes/sleep")
    call = await ended(executor, second)
    assert call["state"] == "error" and call["http_status"] == 404
    assert "not found" in call["error"]


@pytest.mark.parametrize("state", ["running", "queued"])
async def test_a_restart_ends_or_reruns_what_the_last_process_left(tmp_path, state):
    """What recovery does with the queue a crashed process left: a call it was running
    ends in error (no retries) and a queued one runs."""
    from tests.integration.conftest import running, settings_for

    db = tmp_path / "executor.db"
    async with running(settings_for(db)) as ex:
        await ex.route("/hello", "executor/hello", type="async")
    now = time.time()
    call_id = new_id()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO calls (id, app, route, method, state, created_at) "
            "VALUES (?, 't', '/hello', 'POST', ?, ?)",
            (call_id, state, now),
        )
        conn.execute(
            "INSERT INTO queue (id, app, route, method, url, headers, body, created_at, state,"
            " attempts) VALUES (?, 't', '/hello', 'POST', 'http://x/r/t/hello', ?, ?, ?, ?, ?)",
            (call_id, orjson.dumps([]), b'{"name": "Bo"}', now, state, int(state == "running")),
        )
    async with running(settings_for(db)) as ex:
        call = await ended(ex, call_id)
        if state == "running":
            assert call["state"] == "error" and call["error"] == RESTARTED
        else:
            assert call["state"] == "success"
            body = await (await ex.client.get(f"/v1/calls/{call_id}/response")).read()
            assert body == b"Hello Bo!\n"


async def test_calls_still_queued_at_shutdown_run_after_the_next_start(tmp_path):
    from tests.integration.conftest import running, settings_for

    db = tmp_path / "executor.db"
    async with running(settings_for(db)) as ex:
        # One at a time, each hangs until its 1 s timeout: three wait behind the first.
        await ex.route("/sleep", "executor-test/sleep", type="async", max_containers=1, timeout=1)
        first, *waiting = [await submit(ex, "/sleep") for _ in range(4)]
        deadline = time.monotonic() + 10
        while (await record(ex, first))["state"] != "running":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    # The shutdown let the running call end (within the grace) and took no other.
    with sqlite3.connect(db) as conn:
        left = dict(conn.execute("SELECT id, state FROM queue").fetchall())
        state = conn.execute("SELECT state FROM calls WHERE id = ?", (first,)).fetchone()[0]
    assert state == "timeout"
    assert left == dict.fromkeys(waiting, "queued")
    async with running(settings_for(db)) as ex:
        for call_id in waiting:
            call = await ended(ex, call_id)
            assert call["state"] == "timeout" and call["container_id"], call


async def test_async_calls_without_call_records_are_refused_with_the_reason(tmp_path):
    from tests.integration.conftest import running, settings_for

    async with running(settings_for(tmp_path / "e.db", call_records=False)) as ex:
        await ex.route("/hello", "executor/hello", type="async")
        response = await ex.client.post("/r/t/hello")
        assert response.status == 503
        message = (await response.json())["error"]["message"]
        assert message == "async calls need call records (EXECUTOR_CALL_RECORDS=false)"
        # A sync route still works, and the detached header is refused the same way.
        await ex.route("/sync", "executor/hello")
        assert (await ex.client.post("/r/t/sync")).status == 200
        detached = await ex.client.post("/r/t/sync", headers={"Fn-Invoke-Type": "detached"})
        assert detached.status == 503
