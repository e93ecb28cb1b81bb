"""The executor's lifecycle on the fake engine: what start does, what drain and close
leave, and the whole API wired as it is served."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from executor.app import create_app
from executor.docker.spec import Identity, labels
from executor.lifecycle import Phase
from executor.pool.pools import iofs_root
from executor.runtime import Executor
from executor.store.store import Store
from tests.fake_engine import FakeEngine, HotProgram, echo, hot_echo
from tests.unit.conftest import fake_settings, route, until


async def test_start_serves_and_close_leaves_no_container_no_folder_no_task(tmp_path, engine):
    settings = fake_settings(tmp_path)
    executor = Executor(settings, engine)
    await executor.start()
    assert executor.lifecycle.phase == Phase.SERVING
    await route(executor, "/hot", "fake/hot", format="http-stream", min_warm=2)
    await until(lambda: len(engine.running()) == 2)
    root = iofs_root(settings, executor.identity.group)
    assert root.is_dir()
    await executor.drain(1.0)
    await executor.close()
    assert executor.lifecycle.phase == Phase.CLOSED
    assert not engine.live and not root.exists()
    assert len(executor.work) == 0 and len(executor.services) == 0


async def test_start_removes_the_containers_an_earlier_process_left(tmp_path, engine):
    settings = fake_settings(tmp_path)
    store = await Store.open(settings.db, settings.data_dir)  # the group is the database's
    group = store.group_id
    await store.close()
    earlier = Identity(group=group, instance="earlier")
    config = {"Image": "fake/echo", "Labels": labels(earlier, "t", "/x", "cold", None)}
    orphan = await engine.create(config)
    other = await engine.create({"Image": "fake/echo", "Labels": {"executor.group": "other"}})
    async with Executor(settings, engine):
        assert orphan in engine.removed and other not in engine.removed


async def test_an_engine_down_at_start_up_still_serves_and_catches_up(tmp_path, engine):
    engine.down = True
    async with Executor(fake_settings(tmp_path), engine) as executor:
        assert executor.lifecycle.phase == Phase.SERVING
        assert not executor.events.connected.is_set()
        engine.down = False
        await until(lambda: executor.events.connected.is_set())


async def test_a_failed_start_closes_what_it_opened(tmp_path, engine):
    settings = fake_settings(tmp_path, routes_file=tmp_path / "missing.yaml")
    with pytest.raises(Exception, match=r"missing\.yaml"):
        async with Executor(settings, engine):
            pass
    # The store's lock went with it: a second executor opens the same database.
    async with Executor(fake_settings(tmp_path), engine) as executor:
        assert executor.lifecycle.phase == Phase.SERVING


async def test_the_api_serves_a_hot_and_a_cold_call_on_the_fake_engine(tmp_path):
    engine = FakeEngine({"fake/echo": echo, "fake/hot": HotProgram(hot_echo)})
    client = TestClient(TestServer(create_app(fake_settings(tmp_path), engine)))
    await client.start_server()
    try:
        for path, fields in (("/echo", {}), ("/hot", {"format": "http-stream", "min_warm": 0})):
            body = {"route": {"image": f"fake{path}", **fields}}
            response = await client.put(f"/v1/apps/t/routes{path}", json=body)
            assert response.status in (200, 201), await response.text()
        cold = await client.post("/r/t/echo", data=b"one")
        hot = await client.post("/r/t/hot", data=b"two")
        assert (cold.status, await cold.read(), cold.headers["Executor-Start"]) == (
            200,
            b"one",
            "cold",
        )
        assert (hot.status, await hot.read(), hot.headers["Executor-Start"]) == (
            200,
            b"two",
            "fresh",
        )
        listed = await (await client.get("/v1/apps/t/calls")).json()
        assert len(listed["calls"]) == 2
    finally:
        await client.close()
    assert not engine.live


async def test_every_second_closes_the_live_view_with_each_pool_and_the_memory_reserved(
    tmp_path, engine
):
    executor = Executor(fake_settings(tmp_path), engine)
    await executor.start()
    try:
        await route(executor, "/hot", "fake/hot", format="http-stream", min_warm=2, memory=64)
        await until(lambda: len(engine.running()) == 2)
        live = executor.metrics.live
        await until(lambda: any(s.get("pool") == [2, 0, 0, 0] for s in live.since(route="t/hot")))
        (last,) = live.since(route="t/hot")[-1:]
        assert last["reserved"] == 128
        assert live.since()[-1]["reserved"] == 128
        ((pool, state),) = executor.pools.states()
        assert (pool.route.path, state["idle"], len(state["containers"])) == ("/hot", 2, 2)
    finally:
        await executor.drain(1.0)
        await executor.close()
