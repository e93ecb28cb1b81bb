"""Host admission on the real engine: the memory budget evicts other routes' idle hot
containers, least recently used first, then makes calls wait until their deadline, then
503; min_warm refills never evict."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.integration.conftest import running, settings_for
from tests.integration.test_invoke_hot import HOT, call, hot_containers, inspect, wait_pool
from tests.integration.test_observe import scrape, value


async def test_a_call_evicts_idle_containers_of_other_routes_least_recently_used_first(db: Path):
    async with running(settings_for(db, memory_budget=200)) as ex:
        await ex.route("/old", HOT, format="http-stream", memory=64, min_warm=1)
        await wait_pool(ex, "/old", idle=1)
        await ex.route("/new", HOT, format="http-stream", memory=64, min_warm=1)
        await wait_pool(ex, "/new", idle=1)
        assert (await call(ex, "/new"))[0].status == 200  # /old is now the least recent
        [old] = [
            c
            for c in hot_containers(ex)
            if inspect(c, '{{index .Config.Labels "executor.route"}}') == "/old"
        ]

        await ex.route("/big", HOT, format="http-stream", memory=128, min_warm=0, idle_timeout=1)
        response, body = await call(ex, "/big")
        assert response.status == 200, body
        assert response.headers["Executor-Start"] == "fresh"
        m = await scrape(ex)
        assert value(m, "executor_container_events_total", route="/old", event="evicted") == 1
        assert value(m, "executor_container_events_total", route="/new", event="evicted") == 0
        assert old not in hot_containers(ex)
        # /old's min_warm refill waits for room rather than evicting: it comes back once
        # /big's container has left after its idle_timeout.
        pool = (await ex.json("GET", "/v1/apps/t/routes/old"))["route"]["pool"]
        assert pool["idle"] == 0
        await wait_pool(ex, "/old", idle=1)
        assert (await ex.json("GET", "/v1/apps/t/routes/big"))["route"]["pool"]["idle"] == 0


async def test_with_no_room_and_nothing_to_evict_a_call_waits_then_503(db: Path):
    async with running(settings_for(db, memory_budget=128)) as ex:
        await ex.route("/hog", "executor-test/sleep", memory=96, timeout=3)
        await ex.route("/hello", "executor/hello", memory=64, timeout=1)
        hog = asyncio.ensure_future(call(ex, "/hog"))
        await asyncio.sleep(0.5)  # the hog's container holds 96 of the 128 MiB
        started = time.monotonic()
        response, body = await call(ex, "/hello")
        assert response.status == 503, body
        assert b"server too busy: no memory for a 64 MiB container before the deadline" in body
        assert 0.9 < time.monotonic() - started < 2.0
        assert (await hog)[0].status == 504
        # Once the hog's container is removed its memory is back.
        deadline = time.monotonic() + 5
        while (response := (await call(ex, "/hello"))[0]).status != 200:
            assert time.monotonic() < deadline, response.status
        await ex.route("/huge", "executor/hello", memory=256)
        response, body = await call(ex, "/huge")
        assert response.status == 503
        assert b"more than the executor's budget (128 MiB)" in body
