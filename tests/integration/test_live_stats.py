"""`GET /v1/stats`: the dashboard's live view, from a real executor's calls and pools."""

from __future__ import annotations

import asyncio
import time

from tests.integration.conftest import Executor
from tests.integration.test_invoke_hot import HOT, call, wait_pool


async def seconds_until(ex: Executor, query: str, check, within: float = 10) -> dict:
    """Polls until a second that `check` accepts has closed; the whole answer."""
    deadline = time.monotonic() + within
    while True:
        response = await ex.client.get(f"/v1/stats?{query}")
        data = await response.json()
        if any(check(second) for second in data["seconds"]):
            return data
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.2)


async def test_a_route_shows_its_calls_second_and_its_pool_now(executor):
    await executor.route("/hot", HOT, format="http-stream", min_warm=1, memory=64)
    await wait_pool(executor, "/hot", idle=1)
    for _ in range(3):
        response, _ = await call(executor, "/hot", b"x")
        assert response.status == 200
    data = await seconds_until(executor, "route=t/hot", lambda s: "calls" in s)
    (second,) = [s for s in data["seconds"] if "calls" in s]
    assert second["calls"] == {"200": 3}
    count, p50, p99 = second["latency"]["warm"]
    assert count == 3 and 0 < p50 <= p99
    assert len(second["wait"]) == 2
    assert second["pool"][0] + second["pool"][1] == 1 and second["reserved"] == 64
    (pool,) = data["pools"]
    assert (pool["app"], pool["path"], pool["format"], pool["memory"]) == (
        "t",
        "/hot",
        "http-stream",
        64,
    )
    assert pool["containers"][0]["calls"] == 3
    assert data["node"] == executor.instance
    assert data["reserved_mib"] >= 64 and data["budget_mib"] > 0


async def test_every_route_s_totals_come_without_a_query_and_a_poll_gets_only_newer_seconds(
    executor,
):
    await executor.route("/echo", "executor-test/echo", memory=64)
    response, _ = await call(executor, "/echo", b"x")
    assert response.status == 200
    data = await seconds_until(executor, "", lambda s: s.get("calls") == {"200": 1})
    assert all("routes" not in s for s in data["seconds"])
    assert [s["latency"]["cold"][0] for s in data["seconds"] if "calls" in s] == [1]
    last = data["now"]
    response = await executor.client.get(f"/v1/stats?after={last}")
    newer = (await response.json())["seconds"]
    assert all(s["t"] > last for s in newer)
    timing = response.headers["Server-Timing"]
    assert timing.startswith("cpu;dur=") and float(timing.split("=")[1]) < 1000


async def test_bad_queries_are_refused_naming_what_is_wrong(executor):
    response = await executor.client.get("/v1/stats?after=soon")
    assert response.status == 400
    assert (await response.json())["error"]["message"].startswith("after: ")
    response = await executor.client.get("/v1/stats?window=5")
    assert response.status == 400
    assert "window" in (await response.json())["error"]["message"]
