"""The async dispatcher on the fake engine and a real SQLite queue: order, retries,
cancelling, the shutdown, and the stand-in when call records are off."""

from __future__ import annotations

import asyncio

import pytest

from executor.async_calls import NoAsyncCalls
from executor.errors import ServiceUnavailable, ShuttingDown
from executor.lifecycle import Phase
from tests.fake_engine import FakeContainer, FakeEngine, echo, exits_with, hangs
from tests.unit.conftest import call_of, fake_executor, route, until

FINAL = {"success", "error", "timeout", "cancelled"}


async def ended(executor, call_id: str, within: float = 5.0) -> dict:
    async with asyncio.timeout(within):
        while (record := await executor.records.get(call_id))["state"] not in FINAL:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return record


async def test_a_submitted_call_runs_and_keeps_its_response(executor):
    await route(executor, "/echo", "fake/echo")
    call = call_of(executor, "/echo", b"later")
    await executor.async_calls.submit(call)
    record = await ended(executor, call.id)
    assert (record["state"], record["http_status"]) == ("success", 200)
    kept = await executor.records.response(call.id)
    assert kept.body == b"later" and not kept.truncated


async def test_calls_of_a_route_run_oldest_first_within_its_max_containers(tmp_path):
    order: list[bytes] = []

    async def records_order(c: FakeContainer) -> int:
        order.append(await c.read_stdin())
        await asyncio.sleep(0.02)
        return 0

    engine = FakeEngine({"fake/order": records_order})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/order", "fake/order", max_containers=1)
        calls = [call_of(ex, "/order", str(i).encode()) for i in range(5)]
        for call in calls:
            await ex.async_calls.submit(call)
        for call in calls:
            await ended(ex, call.id)
        assert order == [b"0", b"1", b"2", b"3", b"4"]
        assert len(engine.created) == 5


async def test_a_failing_call_is_retried_as_its_route_says_then_ends_in_error(tmp_path):
    engine = FakeEngine({"fake/fail": exits_with(3)})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/fail", "fake/fail", type="async", retries=2)
        call = call_of(ex, "/fail")
        await ex.async_calls.submit(call)
        record = await ended(ex, call.id)
        assert record["state"] == "error" and "exit status 3" in record["error"]
        assert len(engine.created) == 3
        assert await ex.records.response(call.id) is None


async def test_a_queued_call_can_be_cancelled_and_a_running_one_cannot(tmp_path):
    engine = FakeEngine({"fake/hang": hangs})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hang", "fake/hang", max_containers=1)
        running, queued = call_of(ex, "/hang"), call_of(ex, "/hang")
        await ex.async_calls.submit(running)
        await ex.async_calls.submit(queued)
        await until(engine.running)
        assert await ex.async_calls.cancel(queued.id)
        assert not await ex.async_calls.cancel(running.id)
        assert (await ex.records.get(queued.id))["state"] == "cancelled"


async def test_a_drain_leaves_queued_calls_queued_for_the_next_start(tmp_path):
    engine = FakeEngine({"fake/hang": hangs, "fake/echo": echo})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hang", "fake/hang", max_containers=1)
        first, second = call_of(ex, "/hang"), call_of(ex, "/hang")
        await ex.async_calls.submit(first)
        await ex.async_calls.submit(second)
        await ex.drain(grace=0.1)
        with pytest.raises(ShuttingDown, match="not taking calls"):
            await ex.async_calls.submit(call_of(ex, "/hang"))
        assert (await ex.records.get(second.id))["state"] == "queued"
    # The next start takes the queue over and runs what was left.
    async with fake_executor(tmp_path, FakeEngine({"fake/hang": echo})) as ex:
        assert (await ended(ex, second.id))["state"] == "success"
        stopped = await ex.records.get(first.id)
        assert (stopped["state"], stopped["error"]) == (
            "error",
            "executor shutting down: call stopped",
        )
        assert ex.lifecycle.phase == Phase.SERVING


async def test_without_call_records_async_calls_are_refused_with_the_reason(tmp_path):
    async with fake_executor(tmp_path, call_records=False) as ex:
        assert isinstance(ex.async_calls, NoAsyncCalls)
        await route(ex, "/echo", "fake/echo")
        with pytest.raises(ServiceUnavailable, match="async calls need call records"):
            await ex.async_calls.submit(call_of(ex, "/echo"))
