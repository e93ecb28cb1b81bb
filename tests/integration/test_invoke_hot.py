"""Hot pools (`http-stream`) on the real engine: warm, fresh, waits, failures, drains."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import group_containers
from tests.integration.conftest import Executor, running, settings_for

HOT = "executor-test/hot"
FDK = "executor-test/fdk"


async def pool_of(ex: Executor, path: str, app: str = "t") -> dict:
    route = await ex.json("GET", f"/v1/apps/{app}/routes{path}")
    return route["route"]["pool"]


async def wait_pool(ex: Executor, path: str, within: float = 20, **want: int) -> dict:
    """Until the route's pool has the wanted counts (idle=1, busy=0, ...)."""
    deadline = time.monotonic() + within
    while True:
        pool = await pool_of(ex, path)
        if all(pool[k] == v for k, v in want.items()):
            return pool
        assert time.monotonic() < deadline, f"pool never reached {want}: {pool}"
        await asyncio.sleep(0.05)


async def call(ex: Executor, path: str, body: bytes = b"", **kw):
    response = await ex.client.post(f"/r/t{path}", data=body, **kw)
    return response, await response.read()


async def eventually(check: Callable[[], bool], within: float = 10) -> None:
    """Until `check()` holds (containers leave and arrive in the background)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.05)


def inspect(ref: str, template: str) -> str:
    """`docker inspect -f TEMPLATE REF` (a container or an image)."""
    return subprocess.run(
        ["docker", "inspect", "-f", template, ref], capture_output=True, text=True, check=True
    ).stdout.strip()


def hot_containers(ex: Executor) -> list[str]:
    return group_containers(ex.group, "label=executor.kind=hot", "status=running")


async def test_min_warm_is_up_before_the_first_call_and_serves_it_warm(executor):
    await executor.route("/hot", HOT, format="http-stream")
    pool = await wait_pool(executor, "/hot", idle=1)
    assert pool["containers"][0]["state"] == "idle"
    response, body = await call(executor, "/hot")
    assert response.status == 200, body
    assert response.headers["Executor-Start"] == "warm"
    assert float(response.headers["Executor-Wait-Ms"]) < 5


async def test_the_same_container_serves_consecutive_calls(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    instances = set()
    for _ in range(5):
        response, _ = await call(executor, "/hot")
        instances.add((await response.json())["instance"])
        assert response.headers["Executor-Start"] == "warm"
    assert len(instances) == 1
    pool = await pool_of(executor, "/hot")
    assert [c["calls"] for c in pool["containers"]] == [5]
    assert len(hot_containers(executor)) == 1


async def test_what_the_function_sees(executor):
    await executor.route("/hot", HOT, format="http-stream", config={"GREETING": "hi"})
    await wait_pool(executor, "/hot", idle=1)
    response = await executor.client.post(
        "/r/t/hot?x=1",
        data=b"payload",
        headers={"X-Custom": "v", "Authorization": "Bearer secret", "Content-Type": "text/x"},
    )
    seen = await response.json()
    assert seen["body"] == "payload"
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["fn-http-method"] == "POST"
    assert headers["fn-http-request-url"].endswith("/r/t/hot?x=1")
    assert headers["fn-http-h-x-custom"] == "v"
    assert headers["content-type"] == "text/x"
    assert headers["fn-intent"] == "httprequest"
    assert headers["fn-call-id"] == response.headers["Fn-Call-Id"]
    assert headers["content-length"] == "7"
    assert "fn-http-h-authorization" not in headers
    assert not any("secret" in v for v in headers.values())
    env = seen["env"]
    assert env["FN_FORMAT"] == "http-stream"
    assert env["FN_LISTENER"] == "unix:/tmp/iofs/lsnr.sock"
    assert env["FN_APP_NAME"] == "t" and env["FN_FN_NAME"] == "/hot"
    assert env["FN_LOGFRAME_NAME"] == "FN_CALL_ID" and env["FN_LOGFRAME_HDR"] == "Fn-Call-Id"
    assert env["GREETING"] == "hi"
    assert seen["uid"] == 65534


async def test_idle_containers_above_min_warm_are_removed_after_idle_timeout(executor):
    await executor.route("/hot", HOT, format="http-stream", min_warm=0, idle_timeout=1)
    response, _ = await call(executor, "/hot")
    assert response.headers["Executor-Start"] == "fresh"
    # The wait ends when the container's start begins: its start is not counted.
    assert float(response.headers["Executor-Wait-Ms"]) < 100
    assert len(hot_containers(executor)) == 1
    await wait_pool(executor, "/hot", within=5, idle=0, busy=0, starting=0)
    await eventually(lambda: not group_containers(executor.group, "label=executor.kind=hot"))


async def test_concurrent_calls_fall_back_to_fresh_containers(executor):
    await executor.route("/hot", HOT, format="http-stream", min_warm=1, max_containers=4)
    await wait_pool(executor, "/hot", idle=1)
    results = await asyncio.gather(*(call(executor, "/hot", b"sleep 1") for _ in range(4)))
    starts = sorted(r.headers["Executor-Start"] for r, _ in results)
    assert all(r.status == 200 for r, _ in results)
    assert starts.count("warm") >= 1 and "fresh" in starts, starts
    # The fresh containers stay in the pool.
    pool = await wait_pool(executor, "/hot", busy=0)
    assert pool["idle"] + pool["starting"] >= 2


async def test_at_max_containers_calls_wait_in_order_then_503(executor):
    await executor.route("/hot", HOT, format="http-stream", min_warm=1, max_containers=1)
    await wait_pool(executor, "/hot", idle=1)

    async def timed(body: bytes, delay: float):
        await asyncio.sleep(delay)
        response, _ = await call(executor, "/hot", body)
        return response.status, time.monotonic(), float(response.headers["Executor-Wait-Ms"])

    results = await asyncio.gather(
        timed(b"sleep 0.6", 0), timed(b"", 0.1), timed(b"", 0.2), timed(b"", 0.3)
    )
    assert [status for status, _, _ in results] == [200] * 4
    finished = [t for _, t, _ in results]
    assert finished == sorted(finished), "not first come, first served"
    assert results[1][2] > 300  # it waited for the first call

    # A call that cannot get the one container before its deadline: 503.
    slow = asyncio.ensure_future(call(executor, "/hot", b"sleep 3"))
    await wait_pool(executor, "/hot", busy=1)
    await executor.json("PATCH", "/v1/apps/t/routes/hot", {"route": {"timeout": 1}})
    started = time.monotonic()
    response, body = await call(executor, "/hot")
    assert response.status == 503, body
    assert b"server too busy" in body
    assert 0.9 < time.monotonic() - started < 2.0
    response, _ = await slow  # unaffected: its deadline came from the old timeout
    assert response.status == 200


async def test_a_container_killed_mid_call_answers_502_at_once_and_is_replaced(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    pending = asyncio.ensure_future(call(executor, "/hot", b"sleep 20"))
    await wait_pool(executor, "/hot", busy=1)
    [victim] = hot_containers(executor)
    killed = time.monotonic()
    subprocess.run(["docker", "kill", victim], check=True, capture_output=True)
    response, body = await pending
    assert response.status == 502, body
    assert time.monotonic() - killed < 1.0
    assert b"exit status 137" in body
    await wait_pool(executor, "/hot", idle=1)
    response, _ = await call(executor, "/hot")
    assert response.status == 200
    assert victim not in hot_containers(executor)


async def test_a_function_exiting_mid_call_gives_502_with_its_status(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    response, body = await call(executor, "/hot", b"exit 3")
    assert response.status == 502
    assert b"exit status 3" in body
    await wait_pool(executor, "/hot", idle=1)


async def test_a_container_that_dies_at_start_answers_502_with_its_output(executor):
    route = await executor.route(
        "/broken", HOT, format="http-stream", config={"START_FAIL": "1"}, min_warm=0
    )
    assert route["pool"]["starting"] == 0
    response, body = await call(executor, "/broken")
    assert response.status == 502
    message = (await response.json())["error"]["message"]
    assert "exited before it was ready (exit status 3)" in message
    assert "cannot start: START_FAIL is set" in message
    # While starts back off, a call fails at once with the same answer.
    started = time.monotonic()
    response, body = await call(executor, "/broken")
    assert response.status == 502 and b"START_FAIL" in body
    assert time.monotonic() - started < 0.2


async def test_a_hot_call_times_out_with_504_and_its_container_is_replaced(executor):
    await executor.route("/hot", HOT, format="http-stream", timeout=1)
    await wait_pool(executor, "/hot", idle=1)
    [first] = hot_containers(executor)
    started = time.monotonic()
    response, body = await call(executor, "/hot", b"sleep 10")
    assert response.status == 504, body
    assert 0.9 < time.monotonic() - started < 1.6
    await wait_pool(executor, "/hot", idle=1)
    assert first not in hot_containers(executor)


@pytest.mark.parametrize(
    ("command", "message", "kept"),
    [
        (b"error", b"function error: boom", True),
        (b"status 500", b"container answered HTTP 500", False),
        (b"garbage", b"malformed response", False),
    ],
)
async def test_protocol_errors(executor, command, message, kept):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    [first] = hot_containers(executor)
    response, body = await call(executor, "/hot", command)
    assert response.status == 502
    assert message in body, body
    await wait_pool(executor, "/hot", idle=1)
    assert (first in hot_containers(executor)) is kept


async def test_a_connection_closed_by_the_function_is_reopened(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    response, _ = await call(executor, "/hot", b"close")
    assert response.status == 200
    first = (await response.json())["instance"]
    for _ in range(2):
        response, _ = await call(executor, "/hot")
        assert response.status == 200
        assert response.headers["Executor-Start"] == "warm"
        assert (await response.json())["instance"] == first  # the same container


async def test_large_responses_stream_and_the_limit_holds(db: Path):
    async with running(settings_for(db, max_response_bytes=2 * 1024 * 1024)) as ex:
        await ex.route("/hot", HOT, format="http-stream")
        await wait_pool(ex, "/hot", idle=1)
        response, body = await call(ex, "/hot", b"big 1500000")
        assert response.status == 200
        assert len(body) == 1_500_000
        assert response.headers["Content-Type"] == "application/octet-stream"
        response, body = await call(ex, "/hot", b"big 3000000")
        assert response.status == 502
        assert b"response too large" in body
        await wait_pool(ex, "/hot", idle=1)
        response, _ = await call(ex, "/hot")
        assert response.status == 200


async def test_a_pool_change_drains_the_old_containers(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    [old] = hot_containers(executor)
    in_flight = asyncio.ensure_future(call(executor, "/hot", b"sleep 1"))
    await wait_pool(executor, "/hot", busy=1)
    await executor.json("PATCH", "/v1/apps/t/routes/hot", {"route": {"memory": 96}})
    response, _ = await in_flight  # finished in the old container
    assert response.status == 200
    response, _ = await call(executor, "/hot")
    assert response.status == 200
    await eventually(lambda: old not in group_containers(executor.group))
    [new] = hot_containers(executor)
    assert inspect(new, "{{.HostConfig.Memory}}") == str(96 * 1024 * 1024)
    # In-place fields keep the pool.
    await executor.json("PATCH", "/v1/apps/t/routes/hot", {"route": {"idle_timeout": 60}})
    assert hot_containers(executor) == [new]


async def test_a_rebuilt_image_tag_drains_the_pool(executor, tmp_path):
    tag = f"executor-test/rebuilt-{tmp_path.name[-6:].lower()}:latest"

    def build(marker: str) -> str:
        (tmp_path / "Dockerfile").write_text(f"FROM {HOT}\nLABEL marker={marker}\n")
        subprocess.run(
            ["docker", "build", "-q", "-t", tag, str(tmp_path)], check=True, capture_output=True
        )
        return inspect(tag, "{{.Id}}")

    first_id = build("one")
    try:
        await executor.route("/hot", tag, format="http-stream")
        await wait_pool(executor, "/hot", idle=1)
        [old] = hot_containers(executor)
        second_id = build("two")
        await eventually(lambda: old not in group_containers(executor.group))
        await wait_pool(executor, "/hot", idle=1)
        [new] = hot_containers(executor)
        assert inspect(new, "{{.Image}}") == second_id != first_id
    finally:
        await executor.json("DELETE", "/v1/apps/t/routes/hot")
        await eventually(lambda: not group_containers(executor.group))
        subprocess.run(["docker", "rmi", "-f", tag, first_id], capture_output=True, check=False)


async def test_deleting_a_route_removes_its_containers(executor):
    await executor.route("/hot", HOT, format="http-stream", min_warm=2)
    await wait_pool(executor, "/hot", idle=2)
    await executor.json("DELETE", "/v1/apps/t/routes/hot")
    await eventually(lambda: not group_containers(executor.group))


async def test_min_warm_pools_come_back_after_a_restart(db: Path):
    async with running(settings_for(db)) as ex:
        await ex.route("/hot", HOT, format="http-stream", min_warm=2)
        await wait_pool(ex, "/hot", idle=2)
        group = ex.group
    assert not group_containers(group)  # shutdown removed them
    async with running(settings_for(db)) as ex:
        await wait_pool(ex, "/hot", idle=2)
        response, _ = await call(ex, "/hot")
        assert response.headers["Executor-Start"] == "warm"


class TestFdk:
    """A function built with the Fn Project's Python FDK, unmodified."""

    async def test_request_and_response_pass_through(self, executor):
        await executor.route("/fdk", FDK, format="http-stream")
        await wait_pool(executor, "/fdk", idle=1)
        response = await executor.client.put(
            "/r/t/fdk?q=2", data=b"hello fdk", headers={"X-Caller": "ada"}
        )
        assert response.status == 201
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-Fdk-Test"] == "yes"
        assert response.headers["Executor-Start"] == "warm"
        seen = await response.json()
        assert seen["body"] == "hello fdk"
        assert seen["method"] == "PUT"
        assert seen["url"].endswith("/r/t/fdk?q=2")
        assert seen["headers"]["x-caller"] in ("ada", ["ada"])
        assert seen["call_id"] == response.headers["Fn-Call-Id"]

    async def test_an_exception_is_502_and_the_container_stays_warm(self, executor):
        await executor.route("/fdk", FDK, format="http-stream")
        await wait_pool(executor, "/fdk", idle=1)
        [container] = hot_containers(executor)
        response, body = await call(executor, "/fdk", b"raise")
        assert response.status == 502, body
        response, _ = await call(executor, "/fdk", b"fine")
        assert response.status == 201
        assert response.headers["Executor-Start"] == "warm"
        assert hot_containers(executor) == [container]


async def test_an_idle_container_killed_from_outside_is_replaced(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    [victim] = hot_containers(executor)
    subprocess.run(["docker", "kill", victim], check=True, capture_output=True)
    await eventually(lambda: victim not in hot_containers(executor))
    await wait_pool(executor, "/hot", idle=1)
    response, _ = await call(executor, "/hot")
    assert response.headers["Executor-Start"] == "warm"


async def test_out_of_memory_in_a_hot_call_is_named(executor):
    await executor.route("/hot", HOT, format="http-stream", memory=48)
    await wait_pool(executor, "/hot", idle=1)
    response, body = await call(executor, "/hot", b"alloc 200")
    assert response.status == 502, body
    assert b"out of memory (limit 48 MiB)" in body
    await wait_pool(executor, "/hot", idle=1)


async def test_a_container_not_ready_by_the_deadline_gives_504(executor):
    await executor.route(
        "/slow", HOT, format="http-stream", min_warm=0, timeout=1, config={"START_DELAY": "3"}
    )
    started = time.monotonic()
    response, body = await call(executor, "/slow")
    assert response.status == 504, body
    assert b"container initialization timed out" in body
    assert time.monotonic() - started < 1.6


async def test_a_container_not_ready_by_the_start_timeout_is_removed_with_504(db: Path):
    async with running(settings_for(db, hot_start_timeout=1.0)) as ex:
        await ex.route("/slow", HOT, format="http-stream", min_warm=0, config={"START_DELAY": "5"})
        started = time.monotonic()
        response, body = await call(ex, "/slow")
        assert response.status == 504, body
        assert b"container initialization timed out" in body
        assert time.monotonic() - started < 2.5
        await eventually(lambda: not group_containers(ex.group))


@pytest.mark.parametrize(
    ("image", "answer"),
    [
        ("executor/hello-stream", b"Hello Ada!\n"),
        ("executor/fdk-hello", b'{"message": "Hello Ada!"}'),
    ],
)
async def test_the_hot_examples_answer_warm(executor, image, answer):
    await executor.route("/example", image, format="http-stream")
    await wait_pool(executor, "/example", idle=1)
    response, body = await call(executor, "/example", b'{"name": "Ada"}')
    assert response.status == 200
    assert body == answer
    assert response.headers["Executor-Start"] == "warm"


async def test_hot_containers_run_as_sched_batch(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    [container] = hot_containers(executor)
    pid = int(inspect(container, "{{.State.Pid}}"))
    await eventually(lambda: os.sched_getscheduler(pid) == os.SCHED_BATCH, within=3)


async def test_an_iofs_host_dir_the_engine_does_not_have_gives_a_clear_502(db: Path):
    # The executor in a container with EXECUTOR_IOFS_HOST_DIR not matching its volume.
    async with running(settings_for(db, iofs_host_dir=Path("/nonexistent-iofs"))) as ex:
        await ex.route("/hot", HOT, format="http-stream", min_warm=0)
        response, body = await call(ex, "/hot")
        assert response.status == 502, body
        assert b"/nonexistent-iofs/exr-" in body
        assert b"does not exist" in body
        assert b"EXECUTOR_IOFS_HOST_DIR must be the host path of EXECUTOR_IOFS_DIR" in body


async def test_an_image_deleted_after_the_route_was_made_is_502_naming_it(executor, tmp_path):
    tag = f"executor-test/vanishing-hot-{tmp_path.name[-6:].lower()}:latest"
    (tmp_path / "Dockerfile").write_text(f"FROM {HOT}\nLABEL vanishing={tag}\n")
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(tmp_path)], check=True, capture_output=True
    )
    try:
        await executor.route("/gone", tag, format="http-stream", min_warm=0)
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], check=True, capture_output=True)
    response, body = await call(executor, "/gone")
    assert response.status == 502, body
    assert f"image {tag!r} is not on the Docker engine".encode() in body
