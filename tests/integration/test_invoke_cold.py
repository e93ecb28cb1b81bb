"""Cold calls (format `default`) on the real engine: body, env, log, limits, failures."""

import asyncio
import subprocess
import time

import aiohttp
import orjson

from executor.calls import Call
from executor.state import EXECUTOR
from tests.conftest import group_containers
from tests.integration.conftest import running, settings_for


async def test_hello(executor):
    await executor.route("/hello", "executor/hello")
    response = await executor.client.post("/r/t/hello")
    assert response.status == 200
    assert await response.text() == "Hello World!\n"
    assert response.headers["Executor-Start"] == "cold"
    assert response.headers["Executor-Instance"] == executor.instance
    assert len(response.headers["Fn-Call-Id"]) == 26
    wait_ms = response.headers["Executor-Wait-Ms"]
    assert float(wait_ms) >= 0 and len(wait_ms.split(".")[1]) == 3

    named = await executor.client.post("/r/t/hello", data=b'{"name": "Ada"}')
    assert await named.text() == "Hello Ada!\n"


async def test_route_headers_and_content_type(executor):
    await executor.route("/hello", "executor/hello", headers={"X-Route": "yes"})
    response = await executor.client.get("/r/t/hello")
    assert response.headers["X-Route"] == "yes"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    await executor.route("/json", "executor/hello", headers={"Content-Type": "application/json"})
    assert (await executor.client.get("/r/t/json")).headers["Content-Type"] == "application/json"


async def test_environment_reaches_the_function(executor):
    await executor.json(
        "POST",
        "/v1/apps",
        {"app": {"name": "t", "config": {"SHARED": "app", "APP_ONLY": "a"}}},
        200,
    )
    await executor.route("/env", "executor-test/env", config={"SHARED": "route"}, memory=64)
    response = await executor.client.put(
        "/r/t/env?q=1", headers={"X-Custom": "hello", "Authorization": "Bearer secret"}
    )
    assert response.status == 200
    lines = (await response.text()).splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert env["FN_APP_NAME"] == "t"
    assert env["FN_PATH"] == "/env"
    assert env["FN_FORMAT"] == "default"
    assert env["FN_MEMORY"] == "64"
    assert env["FN_TYPE"] == "sync"
    assert env["FN_CALL_ID"] == response.headers["Fn-Call-Id"]
    assert env["FN_DEADLINE"].endswith("Z")
    assert env["FN_METHOD"] == "PUT"
    assert env["FN_REQUEST_URL"].endswith("/r/t/env?q=1")
    assert env["FN_HEADER_X_CUSTOM"] == "hello"
    assert "FN_HEADER_AUTHORIZATION" not in env  # credentials never reach a function
    assert env["SHARED"] == "route" and env["APP_ONLY"] == "a"
    assert env["ID"] == "65534:65534"  # the image runs as root, so the function runs as nobody


async def test_stderr_is_the_log_not_the_body(executor):
    await executor.route("/stderr", "executor-test/stderr")
    response = await executor.client.post("/r/t/stderr", data=b"ignored")
    assert await response.text() == "the answer\n"

    # The log is kept with the call (records and their API come with [observe]).
    registry = executor.app[EXECUTOR].registry
    route = registry.route("t", "/stderr")
    call = Call(app=registry.app("t"), route=route, method="POST", url="u", headers=[], body=b"")
    result = await executor.app[EXECUTOR].invoker.invoke(call)
    assert result.body == b"the answer\n"
    assert call.log == b"log line 1\nlog line 2\n"


async def test_a_mebibyte_round_trip(executor):
    await executor.route("/echo", "executor-test/echo")
    body = bytes(range(256)) * 4096  # 1 MiB, larger than any pipe buffer
    response = await executor.client.post("/r/t/echo", data=body)
    assert response.status == 200
    assert await response.read() == body


async def test_empty_body(executor):
    await executor.route("/echo", "executor-test/echo")
    response = await executor.client.get("/r/t/echo")
    assert response.status == 200 and await response.read() == b""


async def test_non_zero_exit_is_502(executor):
    await executor.route("/fail", "executor-test/fail")
    response = await executor.client.post("/r/t/fail")
    assert response.status == 502
    assert (await response.json())["error"]["message"] == "function failed: exit status 3"
    assert response.headers["Executor-Start"] == "cold" and response.headers["Fn-Call-Id"]


async def test_timeout_is_504_at_the_deadline_and_the_container_goes(executor):
    await executor.route("/sleep", "executor-test/sleep", timeout=2)
    started = time.monotonic()
    response = await executor.client.post("/r/t/sleep")
    elapsed = time.monotonic() - started
    assert response.status == 504
    assert (await response.json())["error"]["message"] == "function timed out after 2 s"
    assert 2.0 <= elapsed < 2.5, elapsed
    call_id = response.headers["Fn-Call-Id"]
    deadline = time.monotonic() + 2
    while group_containers(executor.group, f"label=executor.call={call_id}"):
        assert time.monotonic() < deadline, "container still there 2 s after the timeout"
        await asyncio.sleep(0.1)


async def test_stdout_flood_is_502_response_too_large(executor):
    await executor.route("/flood", "executor-test/flood")
    started = time.monotonic()
    response = await executor.client.post("/r/t/flood")
    assert response.status == 502
    assert (await response.json())["error"]["message"].startswith("response too large")
    assert time.monotonic() - started < 5


async def test_out_of_memory_is_named(executor):
    await executor.route("/oom", "executor-test/oom", memory=32)
    response = await executor.client.post("/r/t/oom")
    assert response.status == 502
    assert (await response.json())["error"]["message"] == "out of memory (limit 32 MiB)"


async def test_request_body_over_the_limit_is_413(db):
    async with running(settings_for(db, max_request_bytes=1024)) as executor:
        await executor.route("/echo", "executor-test/echo")
        declared = await executor.client.post("/r/t/echo", data=b"x" * 1025)
        assert declared.status == 413
        assert "limit of 1024 bytes" in (await declared.json())["error"]["message"]

        async def chunks():
            for _ in range(4):
                yield b"x" * 512

        chunked = await executor.client.post("/r/t/echo", data=chunks())
        assert chunked.status == 413
        assert not group_containers(executor.group)


async def test_unknown_app_and_route_are_404(executor):
    response = await executor.client.get("/r/nope/hello")
    assert response.status == 404 and "app 'nope'" in (await response.json())["error"]["message"]
    await executor.json("POST", "/v1/apps", {"app": {"name": "t"}}, 200)
    response = await executor.client.get("/r/t/nope")
    assert response.status == 404 and "route '/nope'" in (await response.json())["error"]["message"]


async def test_image_removed_after_the_route_was_made_is_502(executor):
    tag = f"executor-test/vanishing:{executor.instance}"
    subprocess.run(["docker", "tag", "executor/hello", tag], check=True)
    try:
        await executor.route("/gone", tag)
    finally:
        subprocess.run(["docker", "rmi", tag], check=True, capture_output=True)
    executor.app[EXECUTOR].registry._images.clear()  # as after a restart: nothing cached
    response = await executor.client.post("/r/t/gone")
    assert response.status == 502
    assert tag in (await response.json())["error"]["message"]


async def test_a_burst_of_200_cold_calls_all_answer_with_starts_bounded(executor):
    await executor.route("/hello", "executor/hello", timeout=200)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> tuple[int, bytes]:
            body = orjson.dumps({"name": f"n{i}"})
            async with session.post(f"{executor.url}/r/t/hello", data=body) as response:
                return response.status, await response.read()

        async with asyncio.timeout(180):
            results = await asyncio.gather(*(one(i) for i in range(200)))
    assert [status for status, _ in results] == [200] * 200
    assert [body for _, body in results] == [f"Hello n{i}!\n".encode() for i in range(200)]
    # The engine saw at most EXECUTOR_MAX_STARTS (8) creates and starts at once.
    assert executor.app[EXECUTOR].admission.starts.peak == 8


async def test_a_fork_bomb_is_contained_and_others_keep_answering(executor):
    await executor.route("/forkbomb", "executor-test/forkbomb", timeout=4)
    await executor.route("/hello", "executor/hello")
    bomb = asyncio.ensure_future(executor.client.post("/r/t/forkbomb"))
    await asyncio.sleep(1.5)  # let it hit the pids limit
    others = [await executor.client.post("/r/t/hello") for _ in range(3)]
    assert [r.status for r in others] == [200, 200, 200]
    response = await bomb
    assert response.status == 504
    call_id = response.headers["Fn-Call-Id"]
    deadline = time.monotonic() + 5
    while group_containers(executor.group, f"label=executor.call={call_id}"):
        assert time.monotonic() < deadline, "fork bomb container still there 5 s after"
        await asyncio.sleep(0.2)
