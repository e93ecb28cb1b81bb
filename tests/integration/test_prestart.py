"""Pre-started `default` containers on the real engine: warm calls with their exact
per-call environment, refills after a burst, a FROM scratch image, and every failure
answered as a cold call of the same function is."""

import asyncio
import json
import subprocess
import time

from executor.formats import default
from tests.conftest import group_containers
from tests.integration.conftest import running, settings_for
from tests.integration.test_invoke_hot import pool_of, wait_pool

# Differ between any two containers, cold or not.
PER_CONTAINER = {"HOSTNAME"}


def env_of(text: str) -> dict[str, str]:
    lines = text.splitlines()
    return {k: v for k, v in (line.split("=", 1) for line in lines if "=" in line)}


async def test_a_min_warm_route_answers_warm_with_each_calls_own_environment(executor):
    await executor.route("/env", "executor-test/env", min_warm=2, config={"greeting": "hi"})
    await executor.route("/cold", "executor-test/env", config={"greeting": "hi"})
    await wait_pool(executor, "/env", idle=2)
    seen = []
    for path in ("/env", "/env", "/cold"):
        response = await executor.client.post(
            f"/r/t{path}?q=1", headers={"X-Probe": "yes", "X-Many": "a"}, data=b"body"
        )
        assert response.status == 200
        env = env_of(await response.text())
        assert env["FN_CALL_ID"] == env["CALL_ID"] == response.headers["Fn-Call-Id"]
        assert env["FN_HEADER_X_PROBE"] == env["HEADER_X_PROBE"] == "yes"
        assert env["FN_REQUEST_URL"].endswith(f"/r/t{path}?q=1")
        assert env["GREETING"] == "hi" and env["FN_FORMAT"] == "default"
        seen.append((response.headers["Executor-Start"], env))
    assert [start for start, _ in seen] == ["warm", "warm", "cold"]
    # Exactly what a cold container gets, the per-call values and the route aside.
    varying = {"FN_CALL_ID", "CALL_ID", "FN_DEADLINE", "FN_REQUEST_URL", "REQUEST_URL"}
    varying |= {"FN_PATH", "ROUTE"} | PER_CONTAINER
    (_, warm), (_, other), (_, cold) = seen
    assert {k: v for k, v in warm.items() if k not in varying} == {
        k: v for k, v in cold.items() if k not in varying
    }
    assert warm["FN_CALL_ID"] != other["FN_CALL_ID"]


async def test_the_pool_refills_to_min_warm_after_a_burst(executor):
    await executor.route("/hello", "executor/hello", min_warm=2, max_containers=4)
    await wait_pool(executor, "/hello", idle=2)
    responses = await asyncio.gather(
        *(executor.client.post("/r/t/hello", data=b'{"name": "burst"}') for _ in range(6))
    )
    assert [r.status for r in responses] == [200] * 6
    assert all([await r.text() == "Hello burst!\n" for r in responses])
    starts = sorted(r.headers["Executor-Start"] for r in responses)
    assert starts.count("warm") >= 2 and set(starts) <= {"warm", "cold"}
    # Grown for the burst (up to max_containers), then every used one removed.
    deadline = time.monotonic() + 20
    while (pool := await pool_of(executor, "/hello"))["idle"] < 2 or pool["starting"]:
        assert time.monotonic() < deadline, pool
        await asyncio.sleep(0.1)
    assert 2 <= pool["idle"] <= 4 and pool["busy"] == 0
    await asyncio.sleep(0.5)
    assert len(group_containers(executor.group)) == pool["idle"]


async def test_a_from_scratch_go_function_is_served_warm(executor):
    await executor.route("/go", "executor/go-hello", min_warm=1)
    await wait_pool(executor, "/go", idle=1)
    response = await executor.client.post("/r/t/go", data=b'{"Name": "Ada"}')
    assert await response.text() == "Hello Ada!\n"
    assert response.headers["Executor-Start"] == "warm"


async def both(executor, image: str, data: bytes = b"", **fields) -> list:
    """One warm and one cold call of the same function: (status, body, start, log)."""
    await executor.route("/warm", image, min_warm=1, **fields)
    await executor.route("/cold", image, **fields)
    await wait_pool(executor, "/warm", idle=1)
    answers = []
    for path in ("/warm", "/cold"):
        response = await executor.client.post(f"/r/t{path}", data=data)
        call_id = response.headers["Fn-Call-Id"]
        log = await log_of(executor, call_id)
        answers.append((response.status, await response.text(), log, response))
    return answers


async def log_of(executor, call_id: str, within: float = 5.0) -> str:
    deadline = time.monotonic() + within
    while True:
        response = await executor.client.get(f"/v1/apps/t/calls/{call_id}/log")
        if response.status == 200:
            return (await response.json())["log"]["log"]
        assert time.monotonic() < deadline, response.status
        await asyncio.sleep(0.1)


async def test_a_function_that_ignores_stdin_answers_as_it_would_cold(executor):
    # executor-test/env never reads its stdin: a 1 MiB body is refused by a closed pipe.
    (warm, *_), (cold, *_) = await both(executor, "executor-test/env", data=b"x" * (1 << 20))
    assert warm == cold == 200


async def test_a_crash_is_answered_as_it_would_be_cold(executor):
    warm, cold = await both(executor, "executor-test/fail")
    assert warm[:3] == cold[:3]
    assert warm[0] == 502 and "exit status 3" in warm[1]
    assert "boom: something went wrong" in warm[2]
    assert warm[3].headers["Executor-Start"] == "warm"


async def test_a_timeout_is_answered_as_it_would_be_cold_and_the_container_killed(executor):
    warm, cold = await both(executor, "executor-test/sleep", timeout=1)
    assert warm[0] == cold[0] == 504
    assert warm[2] == cold[2] == "going to sleep\n"
    # The timed-out pre-started container is gone; only its replacement is left.
    deadline = time.monotonic() + 10
    while len(group_containers(executor.group)) > 1:
        assert time.monotonic() < deadline, group_containers(executor.group)
        await asyncio.sleep(0.2)


async def test_running_out_of_memory_is_named_as_it_would_be_cold(executor):
    warm, cold = await both(executor, "executor-test/oom", memory=32)
    assert warm[0] == cold[0] == 502
    assert "out of memory (limit 32 MiB)" in warm[1] and "out of memory" in cold[1]


async def test_a_response_over_the_limit_is_refused_as_it_would_be_cold(db):
    async with running(settings_for(db, max_response_bytes=1000)) as executor:
        warm, cold = await both(executor, "executor-test/echo", data=b"x" * 1001)
        assert warm[0] == cold[0] == 502
        assert "too large" in warm[1]
        # The limit itself passes: the launcher's trailer is not counted.
        await wait_pool(executor, "/warm", idle=1)
        exact = await executor.client.post("/r/t/warm", data=b"x" * 1000)
        assert exact.status == 200 and len(await exact.read()) == 1000


async def test_a_fork_bomb_in_a_prestarted_container_is_contained(executor):
    await executor.route("/bomb", "executor-test/forkbomb", min_warm=1, timeout=3)
    await executor.route("/hello", "executor/hello", min_warm=1)
    await wait_pool(executor, "/bomb", idle=1)
    bomb = asyncio.ensure_future(executor.client.post("/r/t/bomb"))
    await asyncio.sleep(1.0)
    others = [await executor.client.post("/r/t/hello") for _ in range(3)]
    assert [r.status for r in others] == [200, 200, 200]
    assert (await bomb).status == 504


async def test_prestarted_containers_are_hardened_and_the_launcher_needs_nothing_more(executor):
    await executor.route("/hello", "executor/hello", min_warm=1)
    await wait_pool(executor, "/hello", idle=1)
    (container,) = group_containers(executor.group)
    inspect = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    )
    (info,) = json.loads(inspect.stdout)
    host = info["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["ReadonlyRootfs"] is True and host["SecurityOpt"] == ["no-new-privileges"]
    (mount,) = info["Mounts"]
    assert mount["Destination"] == default.LAUNCHER_PATH and mount["RW"] is False
    assert info["Config"]["Entrypoint"] == [default.LAUNCHER_PATH]
    assert info["Config"]["Cmd"] == ["/bin/sh", "/func.sh"]
    assert info["Config"]["User"] == "65534:65534"
    response = await executor.client.post("/r/t/hello")
    assert response.headers["Executor-Start"] == "warm" and response.status == 200


async def test_a_route_change_drains_its_prestarted_containers(executor):
    await executor.route("/hello", "executor/hello", min_warm=2)
    await wait_pool(executor, "/hello", idle=2)
    before = set(group_containers(executor.group))
    await executor.route("/hello", "executor/hello", min_warm=2, memory=64)
    await wait_pool(executor, "/hello", idle=2)
    deadline = time.monotonic() + 10
    while set(group_containers(executor.group)) & before:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    await executor.route("/hello", "executor/hello", min_warm=0)
    while group_containers(executor.group):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    response = await executor.client.post("/r/t/hello")
    assert response.headers["Executor-Start"] == "cold"


async def test_shutting_down_leaves_no_prestarted_container(db):
    async with running(settings_for(db)) as executor:
        await executor.route("/hello", "executor/hello", min_warm=3)
        await wait_pool(executor, "/hello", idle=3)
        served = await executor.client.post("/r/t/hello")
        assert served.headers["Executor-Start"] == "warm"
        await executor.client.close()  # the executor's shutdown, before the test's cleanup
        assert group_containers(executor.group) == []
