"""The hot pool on the fake engine: assignment, fresh starts, deaths, timeouts, drain and
eviction, with the real policy, readiness watcher, socket checks and connection code."""

from __future__ import annotations

import asyncio
import time

import pytest

from executor.errors import (
    FunctionFailed,
    FunctionTimedOut,
    ServerBusy,
    ShuttingDown,
    StartTimedOut,
)
from tests.fake_engine import (
    FakeEngine,
    HotProgram,
    StdioProgram,
    hot_dies,
    hot_echo,
    hot_sleeps,
    http_echo,
)
from tests.unit.conftest import call_of, fake_executor, route, until


def idle(executor, path: str) -> int:
    return executor.pools.pool("t", path).counts()["idle"]


async def test_min_warm_containers_start_with_no_call_and_serve_warm(executor, engine):
    await route(executor, "/hot", "fake/hot", format="http-stream", min_warm=2)
    await until(lambda: idle(executor, "/hot") == 2)
    call = call_of(executor, "/hot", b"hello")
    response = await executor.invoker.invoke(call)
    assert response.status == 200 and response.body == b"hello"
    assert ("Call", call.id) in response.headers
    assert call.start == "warm" and call.container_id in engine.live
    assert len(engine.created) == 2


async def test_calls_on_an_empty_pool_each_start_a_fresh_container_up_to_the_cap(
    tmp_path,
):
    engine = FakeEngine({"fake/hot": HotProgram(hot_sleeps(0.2))})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", max_containers=2)
        calls = [call_of(ex, "/hot") for _ in range(3)]
        await asyncio.gather(*(ex.invoker.invoke(c) for c in calls))
        assert len(engine.created) == 2
        # The third call waited for one of the two: it did not start a third container.
        assert sorted(c.start for c in calls) == ["fresh", "fresh", "warm"]
        assert len({c.container_id for c in calls}) == 2


async def test_a_container_freed_while_a_fresh_one_starts_goes_to_the_waiting_call(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_echo, ready_after=0.5)})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", min_warm=1, max_containers=2)
        await until(lambda: idle(ex, "/hot") == 1, within=5)
        busy = call_of(ex, "/hot")
        waiting = call_of(ex, "/hot")
        first = asyncio.ensure_future(ex.invoker.invoke(busy))
        await asyncio.sleep(0)  # the warm container is taken
        second = await ex.invoker.invoke(waiting)
        await first
        # Served by the container the first call freed, not by the one still starting.
        assert second.status == 200 and waiting.container_id == busy.container_id
        assert waiting.start == "warm"


async def test_a_container_that_dies_mid_call_fails_the_call_and_is_replaced(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_dies)})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", min_warm=1, memory=64)
        await until(lambda: idle(ex, "/hot") == 1)
        call = call_of(ex, "/hot")
        with pytest.raises(FunctionFailed, match=r"out of memory \(limit 64 MiB\)"):
            await ex.invoker.invoke(call)
        await until(lambda: call.container_id in engine.removed)
        await until(lambda: idle(ex, "/hot") == 1)  # min_warm again, a new container
        assert len(engine.created) == 2


async def test_a_call_past_its_deadline_is_504_and_its_container_replaced(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_sleeps(5))})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", min_warm=1, timeout=1)
        await until(lambda: idle(ex, "/hot") == 1)
        call = call_of(ex, "/hot", deadline=time.monotonic() + 0.2)
        with pytest.raises(FunctionTimedOut, match="function timed out after 1 s"):
            await ex.invoker.invoke(call)
        await until(lambda: call.container_id in engine.removed)


async def test_a_call_that_finds_no_free_container_before_its_deadline_is_503(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_sleeps(0.3))})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", max_containers=1)
        busy = asyncio.ensure_future(ex.invoker.invoke(call_of(ex, "/hot")))
        await until(lambda: ex.pools.pool("t", "/hot").counts()["busy"] == 1)
        hurried = call_of(ex, "/hot", deadline=time.monotonic() + 0.2)
        with pytest.raises(ServerBusy, match="no container was free before the deadline"):
            await ex.invoker.invoke(hurried)
        assert (await busy).body == b"slept"


async def test_a_container_never_ready_is_504_and_removed(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_echo, listens=False)})
    async with fake_executor(tmp_path, engine, hot_start_timeout=0.3) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream")
        with pytest.raises(StartTimedOut):
            await ex.invoker.invoke(call_of(ex, "/hot"))
        await until(lambda: engine.removed == engine.created[:1])


async def test_a_container_that_exits_before_ready_fails_its_calls_with_its_output(tmp_path):
    program = HotProgram(hot_echo, exit_code=2, output=b"missing module\n")
    engine = FakeEngine({"fake/hot": program})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream")
        with pytest.raises(FunctionFailed, match=r"exit status 2\): missing module"):
            await ex.invoker.invoke(call_of(ex, "/hot"))
        # Starts back off: the next call fails at once with the same reason.
        with pytest.raises(FunctionFailed, match="missing module"):
            await ex.invoker.invoke(call_of(ex, "/hot"))


async def test_a_socket_symlink_out_of_its_directory_removes_the_container(executor, engine):
    await route(executor, "/hot", "fake/hot", format="http-stream", min_warm=1)
    await until(lambda: idle(executor, "/hot") == 1)
    (container,) = engine.running()
    sock = container.iofs / "lsnr.sock"
    sock.unlink()
    sock.symlink_to("/var/run/docker.sock")
    for hot in executor.pools.pool("t", "/hot")._containers.values():
        hot.conn.close()  # as a function that closes idle connections: the next call reconnects
    with pytest.raises(FunctionFailed, match=r"container removed: lsnr\.sock is a symlink"):
        await executor.invoker.invoke(call_of(executor, "/hot"))
    await until(lambda: container.id in engine.removed)


async def test_a_drain_lets_calls_in_flight_finish_and_refuses_new_ones(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_sleeps(0.3))})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", min_warm=1)
        await until(lambda: idle(ex, "/hot") == 1)
        in_flight = asyncio.ensure_future(ex.invoker.invoke(call_of(ex, "/hot")))
        await asyncio.sleep(0.05)
        drained = asyncio.ensure_future(ex.drain(grace=2.0))
        await asyncio.sleep(0.01)
        with pytest.raises(ShuttingDown, match="not taking calls"):
            await ex.invoker.invoke(call_of(ex, "/hot"))
        assert (await in_flight).body == b"slept"
        await drained
        await until(lambda: not engine.live)


async def test_calls_still_running_past_the_grace_are_stopped_with_503(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_sleeps(10))})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", min_warm=1, timeout=30)
        await until(lambda: idle(ex, "/hot") == 1)
        in_flight = asyncio.ensure_future(ex.invoker.invoke(call_of(ex, "/hot")))
        await asyncio.sleep(0.05)
        await ex.drain(grace=0.2)
        with pytest.raises(ShuttingDown, match="call stopped"):
            await in_flight


async def test_a_call_short_of_memory_evicts_another_routes_idle_container(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_echo)})
    async with fake_executor(tmp_path, engine, memory_budget=256) as ex:
        await route(ex, "/a", "fake/hot", format="http-stream", min_warm=2, memory=128)
        await until(lambda: idle(ex, "/a") == 2)
        await route(ex, "/b", "fake/hot", format="http-stream", memory=128)
        call = call_of(ex, "/b", b"x")
        assert (await ex.invoker.invoke(call)).body == b"x"
        assert ex.pools.pool("t", "/a").counts()["idle"] == 1


async def test_a_changed_route_drains_its_pool_and_serves_from_a_new_one(executor, engine):
    await route(executor, "/hot", "fake/hot", format="http-stream", min_warm=1)
    await until(lambda: idle(executor, "/hot") == 1)
    (old,) = engine.running()
    await route(executor, "/hot", "fake/hot", format="http-stream", min_warm=1, memory=256)
    call = call_of(executor, "/hot")
    await executor.invoker.invoke(call)
    assert call.container_id != old.id
    await until(lambda: old.id in engine.removed)


async def test_a_route_deleted_as_soon_as_it_is_saved_leaves_no_pool_behind(executor, engine):
    await route(executor, "/hot", "fake/hot", format="http-stream", min_warm=2)
    await executor.registry.delete_route("t", "/hot")  # before its starts have even run
    await until(lambda: not list(executor.pools.counts()) and not engine.live)


def http_engine() -> FakeEngine:
    return FakeEngine({"fake/http": StdioProgram(http_echo)})


async def test_an_http_function_serves_calls_over_its_stdin_and_stdout(tmp_path):
    engine = http_engine()
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/users/:id", "fake/http", format="http", min_warm=1)
        await until(lambda: idle(ex, "/users/:id") == 1)
        for body in (b"one", b"two"):
            call = call_of(ex, "/users/:id", body, params={"id": "42"})
            response = await ex.invoker.invoke(call)
            assert response.status == 200 and call.start == "warm"
            assert response.body == body + f" POST /r/t/users/:id 42 {call.id}".encode()
            assert ("X-Fn", "http") in response.headers
        assert len(engine.created) == 1  # one process, both calls


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"crash", "function exited during the call: exit status 3"),
        (b"garbage", "invalid response from the function"),
        (b"nolength", "no Content-Length"),
    ],
)
async def test_an_http_function_that_breaks_its_answer_is_replaced(tmp_path, body, message):
    engine = http_engine()
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/h", "fake/http", format="http", min_warm=1)
        await until(lambda: idle(ex, "/h") == 1)
        call = call_of(ex, "/h", body)
        with pytest.raises(FunctionFailed, match=message):
            await ex.invoker.invoke(call)
        await until(lambda: call.container_id in engine.removed)
        assert (await ex.invoker.invoke(call_of(ex, "/h", b"fine"))).status == 200


async def test_an_http_function_that_prints_while_idle_is_replaced_before_its_next_call(
    tmp_path,
):
    engine = http_engine()
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/h", "fake/http", format="http", min_warm=1)
        await until(lambda: idle(ex, "/h") == 1)
        chatty = call_of(ex, "/h", b"twice")
        assert (await ex.invoker.invoke(chatty)).body == b"first"
        # The unasked answer broke its connection: the next call goes to a new container.
        nxt = call_of(ex, "/h", b"next")
        assert (await ex.invoker.invoke(nxt)).status == 200
        assert nxt.container_id != chatty.container_id
        await until(lambda: chatty.container_id in engine.removed)


async def test_an_idle_container_is_paused_after_the_grace_and_unpaused_for_a_call(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_echo)})
    async with fake_executor(tmp_path, engine, pause_idle_after=0.05) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", min_warm=1)
        await until(lambda: len(engine.pauses) == 1)
        (c,) = engine.running()
        assert c.paused
        call = call_of(ex, "/hot", b"awake")
        response = await ex.invoker.invoke(call)
        assert response.body == b"awake" and call.start == "warm"
        assert engine.unpauses == [c.id]
        await until(lambda: len(engine.pauses) == 2)  # idle again: paused again


async def test_a_call_within_the_grace_calls_the_pause_off(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_echo)})
    async with fake_executor(tmp_path, engine, pause_idle_after=0.5) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", min_warm=1)
        await until(lambda: idle(ex, "/hot") == 1)
        for _ in range(3):
            await ex.invoker.invoke(call_of(ex, "/hot"))
        assert engine.pauses == [] and engine.unpauses == []


async def test_a_container_that_cannot_be_unpaused_is_replaced_and_the_call_served(tmp_path):
    from executor.errors import EngineError

    engine = FakeEngine({"fake/hot": HotProgram(hot_echo)})
    async with fake_executor(tmp_path, engine, pause_idle_after=0.02) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", min_warm=1)
        await until(lambda: len(engine.pauses) == 1)
        engine.fail["unpause"] = EngineError(500, "cannot unpause (fake)")
        response = await ex.invoker.invoke(call_of(ex, "/hot", b"anyway"))
        assert response.body == b"anyway"
        assert len(engine.created) == 2


async def test_closing_removes_paused_containers(tmp_path):
    engine = FakeEngine({"fake/hot": HotProgram(hot_echo)})
    async with fake_executor(tmp_path, engine, pause_idle_after=0.01) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", min_warm=2)
        await until(lambda: len(engine.pauses) == 2)
    assert not engine.live
