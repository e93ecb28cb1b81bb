"""The invoker on the fake engine: which runner serves a call, what the call adds, and
what it leaves in metrics and records."""

from __future__ import annotations

import pytest

from executor.errors import ImageMissing, NotFound, ShuttingDown
from executor.lifecycle import Phase
from tests.unit.conftest import call_of, fake_executor, route


async def test_a_default_route_is_served_cold_and_a_hot_route_from_its_pool(executor):
    await route(executor, "/echo", "fake/echo")
    await route(executor, "/hot", "fake/hot", format="http-stream", min_warm=0)
    cold, hot = call_of(executor, "/echo", b"a"), call_of(executor, "/hot", b"b")
    assert (await executor.invoker.invoke(cold)).body == b"a"
    assert (await executor.invoker.invoke(hot)).body == b"b"
    assert (cold.start, hot.start) == ("cold", "fresh")


async def test_the_routes_headers_come_before_the_functions_own(executor):
    await route(executor, "/hot", "fake/hot", format="http-stream", headers={"X-Route": ["r"]})
    response = await executor.invoker.invoke(call_of(executor, "/hot"))
    assert response.headers[0] == ("X-Route", "r")
    assert [name for name, _ in response.headers][1:] == ["Call"]


async def test_a_call_is_recorded_with_its_start_kind_and_status(executor):
    await route(executor, "/echo", "fake/echo")
    call = call_of(executor, "/echo")
    await executor.invoker.invoke(call)
    record = await executor.records.get(call.id)
    assert (record["state"], record["start"], record["http_status"]) == ("success", "cold", 200)


async def test_a_failed_call_is_recorded_with_its_error(executor, engine):
    await route(executor, "/echo", "fake/echo")
    del engine.images["fake/echo"]
    executor.registry._images.clear()  # as after a restart: nothing cached
    call = call_of(executor, "/echo")
    with pytest.raises(ImageMissing):
        await executor.invoker.invoke(call)
    record = await executor.records.get(call.id)
    assert record["state"] == "error" and "is not on the Docker engine" in record["error"]
    assert record["start"] is None  # no container: the metrics label it "none"


async def test_a_hot_route_with_no_pool_yet_gets_one_on_its_first_call(executor, engine):
    await route(executor, "/hot", "fake/hot", format="http-stream")
    executor.pools.remove("t", "/hot")  # as if never announced (engine down at start-up)
    assert (await executor.invoker.invoke(call_of(executor, "/hot", b"x"))).body == b"x"
    assert executor.pools.pool("t", "/hot") is not None


async def test_a_route_deleted_while_its_call_waited_is_not_brought_back(executor):
    await route(executor, "/hot", "fake/hot", format="http-stream")
    call = call_of(executor, "/hot")
    await executor.registry.delete_route("t", "/hot")
    with pytest.raises(NotFound, match="was removed while the call waited"):
        await executor.invoker.invoke(call)
    assert executor.pools.pool("t", "/hot") is None


async def test_a_draining_executor_takes_no_call_and_says_so(executor):
    await route(executor, "/echo", "fake/echo")
    executor.lifecycle.enter(Phase.DRAINING)
    with pytest.raises(ShuttingDown, match="executor shutting down: not taking calls"):
        await executor.invoker.invoke(call_of(executor, "/echo"))


async def test_with_call_records_off_calls_run_and_the_records_refuse_with_the_reason(tmp_path):
    async with fake_executor(tmp_path, call_records=False) as ex:
        await route(ex, "/echo", "fake/echo")
        call = call_of(ex, "/echo", b"a")
        assert (await ex.invoker.invoke(call)).body == b"a"
        with pytest.raises(NotFound, match="call records are off"):
            await ex.records.get(call.id)


async def test_a_parameterised_route_is_found_and_its_values_bound(executor):
    await route(executor, "/users/:id", "fake/echo")
    await route(executor, "/users/me", "fake/echo")
    assert executor.registry.match("t", "/users/me")[0].path == "/users/me"
    found, params = executor.registry.match("t", "/users/42")
    assert (found.path, params) == ("/users/:id", {"id": "42"})
    with pytest.raises(NotFound):
        executor.registry.match("t", "/users/42/more")
    await executor.registry.delete_route("t", "/users/:id")
    with pytest.raises(NotFound):
        executor.registry.match("t", "/users/42")
