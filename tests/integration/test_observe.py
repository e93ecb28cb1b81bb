"""Metrics, call records and call logs, against the real engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Executor, running, settings_for
from tests.integration.test_invoke_hot import FDK, HOT, call, wait_pool


async def scrape(ex: Executor) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of /metrics by name: [(labels, value)]."""
    response = await ex.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(v for have, v in samples.get(name, []) if labels.items() <= have.items())


async def test_metric_families_after_calls_of_each_start_kind(executor):
    await executor.route("/cold", "executor/hello")
    await executor.route("/hot", HOT, format="http-stream", min_warm=1, max_containers=2)
    await wait_pool(executor, "/hot", idle=1)
    assert (await call(executor, "/cold"))[0].status == 200
    assert (await call(executor, "/hot"))[0].headers["Executor-Start"] == "warm"
    # Two at once against one warm container: one warm, one fresh.
    # The warm one's call outlasts the fresh one's start, so the fresh container serves.
    # 3 s: a start on 2 loaded cores (the suite's own load) may take well over one.
    starts = await asyncio.gather(*(call(executor, "/hot", b"sleep 3") for _ in range(2)))
    assert sorted(r.headers["Executor-Start"] for r, _ in starts) == ["fresh", "warm"]

    m = await scrape(executor)
    route = {"app": "t", "route": "/hot"}
    assert value(m, "executor_calls_total", route="/cold", status="200", start="cold") == 1
    assert value(m, "executor_calls_total", **route, status="200", start="warm") == 2
    assert value(m, "executor_calls_total", **route, status="200", start="fresh") == 1
    for start in ("cold", "warm", "fresh"):
        assert value(m, "executor_call_duration_seconds_count", start=start) >= 1
    # Buckets fine enough for a warm call, wide enough for a start.
    warm_buckets = {labels["le"] for labels, _ in m["executor_call_duration_seconds_bucket"]}
    assert {"0.0001", "0.001", "0.1", "10.0"} <= warm_buckets
    assert value(m, "executor_container_wait_seconds_count", **route) == 3
    assert value(m, "executor_container_start_seconds_count", format="default") == 1
    assert value(m, "executor_container_start_seconds_count", **route, format="http-stream") == 2
    assert value(m, "executor_pool_containers", **route, state="idle") == 2
    assert value(m, "executor_pool_containers", **route, state="busy") == 0


async def test_container_events_and_docker_errors_are_counted(executor):
    await executor.route("/hot", HOT, format="http-stream", min_warm=1, timeout=1, memory=48)
    await executor.route("/fail", HOT, format="http-stream", min_warm=0, config={"START_FAIL": "1"})
    await executor.route("/idle", HOT, format="http-stream", min_warm=0, idle_timeout=1)
    await executor.route("/nouser", "executor/hello", user="nosuchuser")
    # Each on a warm container: the 1 s timeout is the call's, not a start's as well.
    for command, status in ((b"exit 3", 502), (b"sleep 5", 504), (b"alloc 200", 502)):
        await wait_pool(executor, "/hot", idle=1)
        assert (await call(executor, "/hot", command))[0].status == status, command
    assert (await call(executor, "/fail"))[0].status == 502
    assert (await call(executor, "/idle"))[0].status == 200
    response, body = await call(executor, "/nouser")
    assert response.status == 502, body

    m = await scrape(executor)
    for event in ("crash", "timeout", "oom"):
        assert value(m, "executor_container_events_total", route="/hot", event=event) == 1, event
    assert value(m, "executor_container_events_total", route="/fail", event="start_failed") == 1
    assert value(m, "executor_docker_errors_total", operation="start") >= 1
    # The fresh container of /idle leaves after its idle_timeout: evicted.
    for _ in range(60):
        m = await scrape(executor)
        if value(m, "executor_container_events_total", route="/idle", event="evicted"):
            break
        await asyncio.sleep(0.1)
    assert value(m, "executor_container_events_total", route="/idle", event="evicted") == 1
    # Counted by status, with "none" for calls that never had a container.
    assert value(m, "executor_calls_total", route="/fail", status="502", start="none") == 1
    assert value(m, "executor_calls_total", route="/hot", status="504") == 1


async def test_the_calls_api_filters_and_pages(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await executor.route("/other", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    await wait_pool(executor, "/other", idle=1)
    ids = []
    for _ in range(5):
        response, _ = await call(executor, "/hot")
        ids.append(response.headers["Fn-Call-Id"])
    failed, _ = await call(executor, "/hot", b"error")
    assert failed.status == 502
    await call(executor, "/other")

    seen, cursor = [], ""
    while True:
        page = await executor.json("GET", f"/v1/apps/t/calls?route=/hot&per_page=2{cursor}")
        seen += page["calls"]
        if page["next_cursor"] is None:
            break
        assert len(page["calls"]) == 2
        cursor = f"&cursor={page['next_cursor']}"
    assert [c["id"] for c in seen] == [failed.headers["Fn-Call-Id"], *reversed(ids)]
    first = seen[-1]
    assert first["app"] == "t" and first["method"] == "POST" and first["http_status"] == 200
    assert first["state"] == "success" and first["container_id"]
    assert first["wait_ms"] >= 0 and first["exec_ms"] > 0
    assert first["created_at"] <= first["started_at"] <= first["completed_at"]

    errors = await executor.json("GET", "/v1/apps/t/calls?state=error")
    assert [(c["http_status"], c["error"]) for c in errors["calls"]] == [
        (502, "function error: boom")
    ]
    warm = await executor.json("GET", "/v1/apps/t/calls?start=warm&route=other")
    assert [c["route"] for c in warm["calls"]] == ["/other"]
    since = seen[0]["created_at"]  # the failed call's (millisecond resolution)
    recent = (await executor.json("GET", f"/v1/apps/t/calls?since={since}"))["calls"]
    assert {failed.headers["Fn-Call-Id"], warm["calls"][0]["id"]} <= {c["id"] for c in recent}
    assert all(c["created_at"] >= since for c in recent)
    assert len(recent) < 7
    later = await executor.json("GET", "/v1/apps/t/calls?since=2100-01-01T00:00:00Z")
    assert later["calls"] == []

    one = await executor.json("GET", f"/v1/apps/t/calls/{ids[0]}")
    assert one["call"]["id"] == ids[0]
    assert (await executor.json("GET", f"/v1/calls/{ids[0]}"))["call"] == one["call"]
    await executor.json("DELETE", f"/v1/apps/t/calls/{ids[0]}", status=409)
    await executor.json("GET", "/v1/apps/t/calls/01ARZ3NDEKTSV4RRFFQ69G5FAV", status=404)
    await executor.json("GET", "/v1/apps/nope/calls", status=404)
    for bad, named in [
        ("per_page=0", "per_page"),
        ("per_page=x", "per_page"),
        ("state=done", "state"),
        ("start=hot", "start"),
        ("since=yesterday", "since"),
        ("color=blue", "color"),
    ]:
        error = await executor.json("GET", f"/v1/apps/t/calls?{bad}", status=400)
        assert named in error["error"]["message"]


async def test_the_log_of_a_cold_call_is_its_stderr(executor):
    await executor.route("/stderr", "executor-test/stderr")
    response, body = await call(executor, "/stderr")
    assert body == b"the answer\n"
    call_id = response.headers["Fn-Call-Id"]
    log = await executor.json("GET", f"/v1/apps/t/calls/{call_id}/log")
    assert log == {"log": {"call_id": call_id, "log": "log line 1\nlog line 2\n"}}
    text = await executor.client.get(f"/v1/calls/{call_id}/log", headers={"Accept": "text/plain"})
    assert await text.text() == "log line 1\nlog line 2\n"


async def test_a_hot_fdk_calls_log_lines_stay_with_their_call(executor):
    await executor.route("/fdk", FDK, format="http-stream")
    await wait_pool(executor, "/fdk", idle=1)
    calls = {}
    for body in ("first", "second", "third"):
        response, _ = await call(executor, "/fdk", body.encode())
        assert response.status == 201
        calls[body] = response.headers["Fn-Call-Id"]

    async def log_of(call_id: str) -> str:
        return (await executor.json("GET", f"/v1/calls/{call_id}/log"))["log"]["log"]

    for body, call_id in calls.items():
        want = {f"fdk stdout: {body}", f"fdk stderr: {body}"}
        for _ in range(100):  # output trails the answer
            lines = set((await log_of(call_id)).splitlines())
            if want <= lines:
                break
            await asyncio.sleep(0.05)
        assert lines == want, (body, lines)


async def test_records_survive_a_restart(db: Path):
    async with running(settings_for(db)) as ex:
        await ex.route("/hello", "executor/hello")
        response, _ = await call(ex, "/hello")
        call_id = response.headers["Fn-Call-Id"]
    async with running(settings_for(db)) as ex:
        record = await ex.json("GET", f"/v1/apps/t/calls/{call_id}")
        assert record["call"]["state"] == "success"
        assert record["call"]["start"] == "cold"


async def test_with_records_and_metrics_off(db: Path):
    async with running(settings_for(db, call_records=False, metrics=False)) as ex:
        await ex.route("/hello", "executor/hello")
        response, _ = await call(ex, "/hello")
        assert response.status == 200
        error = await ex.json("GET", "/v1/apps/t/calls", status=404)
        assert "call records are off" in error["error"]["message"]
        assert "executor_calls_total" not in await scrape(ex)


async def test_a_calls_log_is_capped(db: Path):
    async with running(settings_for(db, max_log_bytes=12)) as ex:
        await ex.route("/stderr", "executor-test/stderr")
        response, body = await call(ex, "/stderr")
        assert body == b"the answer\n"  # the response is whole; only the log is capped
        log = await ex.json("GET", f"/v1/calls/{response.headers['Fn-Call-Id']}/log")
        assert log["log"]["log"] == "log line 1\nl\n[10 bytes dropped]\n"
