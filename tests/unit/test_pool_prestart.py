"""Pre-started `default` containers on the fake engine (its launcher emulated): warm
calls with their exact per-call environment, the cold fallback, refills, bursts, deaths
before a call, failures as a cold call gets them, drains and eviction."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from executor.errors import FunctionFailed, FunctionTimedOut, ResponseTooLarge
from executor.formats import default
from tests.fake_engine import FakeContainer, FakeEngine, echo, exits_with, hangs
from tests.unit.conftest import call_of, fake_executor, route, until


async def env_and_body(c: FakeContainer) -> int:
    """Prints its FN_CALL_ID, its X-Probe header variables and its stdin."""
    body = await c.read_stdin()
    env = c.env
    seen = (env["FN_CALL_ID"], env.get("FN_HEADER_X_PROBE"), env.get("HEADER_X_PROBE"))
    c.print(" ".join(map(str, seen)).encode() + b" ")
    c.print(body)
    c.print(b"to the log", stream=2)
    return 0


async def prints_env(c: FakeContainer) -> int:
    await c.read_stdin()
    c.print(orjson.dumps(c.env))
    return 0


def images(**extra) -> dict:
    return {"fake/echo": echo, "fake/env": env_and_body, **extra}


def counts(ex, path: str) -> dict[str, int]:
    pool = ex.pools.prestarted("t", path)
    return pool.counts() if pool is not None else {}


def ready(ex, path: str) -> int:
    return counts(ex, path).get("idle", 0)


async def test_a_default_route_with_min_warm_keeps_that_many_containers_waiting_in_the_launcher(
    tmp_path,
):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/pre", "fake/echo", min_warm=2)
        await until(lambda: ready(ex, "/pre") == 2)
        assert len(engine.running()) == 2
        for c in engine.running():
            assert c.config["Entrypoint"] == [default.LAUNCHER_PATH]
            assert c.config["Cmd"] == ["/func"]
            assert "FN_CALL_ID" not in c.env  # per-call values come with the call


async def test_a_call_gets_a_prestarted_container_warm_with_its_own_environment(tmp_path):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/pre", "fake/env", min_warm=2)
        await until(lambda: ready(ex, "/pre") == 2)
        call = call_of(ex, "/pre", b"the body", headers=[("X-Probe", "yes")])
        response = await ex.invoker.invoke(call)
        assert call.start == "warm"
        assert response.status == 200
        assert response.body == f"{call.id} yes yes the body".encode()
        assert call.log == b"to the log"  # the launcher's trailer is not part of it
        # Used once: removed, and a replacement brings the pool back to two.
        await until(lambda: call.container_id not in engine.live)
        await until(lambda: ready(ex, "/pre") == 2)
        assert len(engine.created) == 3


async def test_the_environment_of_a_prestarted_call_is_the_one_a_cold_call_gets(tmp_path):
    engine = FakeEngine(images(**{"fake/printenv": prints_env}))
    async with fake_executor(tmp_path, engine) as ex:
        fields = {"config": {"greeting": "hi"}}
        await route(ex, "/pre", "fake/printenv", min_warm=1, **fields)
        await route(ex, "/cold", "fake/printenv", **fields)
        await until(lambda: ready(ex, "/pre") == 1)
        for path in ("/pre", "/cold"):
            call = call_of(ex, path, headers=[("X-A", "1"), ("X-A", "2")])
            response = await ex.invoker.invoke(call)
            assert orjson.loads(response.body) == default.environment(call), path


async def test_with_none_ready_a_call_starts_cold_at_once_and_the_pool_grows_for_the_next(
    tmp_path,
):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/pre", "fake/echo", min_warm=1, max_containers=3)
        await until(lambda: ready(ex, "/pre") == 1)
        first, second = call_of(ex, "/pre", b"1"), call_of(ex, "/pre", b"2")
        await asyncio.gather(ex.invoker.invoke(first), ex.invoker.invoke(second))
        assert sorted([first.start, second.start]) == ["cold", "warm"]
        # One replacement for the warm call, one more for the call that went cold.
        await until(lambda: ready(ex, "/pre") == 2)


async def test_a_burst_grows_the_pool_no_further_than_max_containers(tmp_path):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/pre", "fake/echo", min_warm=1, max_containers=2)
        await until(lambda: ready(ex, "/pre") == 1)
        calls = [call_of(ex, "/pre") for _ in range(6)]
        await asyncio.gather(*(ex.invoker.invoke(c) for c in calls))
        await until(lambda: ready(ex, "/pre") == 2)
        await asyncio.sleep(0.05)
        assert ready(ex, "/pre") == 2
        assert counts(ex, "/pre")["starting"] == 0


async def test_prestarted_containers_above_min_warm_expire_after_idle_timeout(tmp_path):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/pre", "fake/echo", min_warm=1, max_containers=3, idle_timeout=1)
        await until(lambda: ready(ex, "/pre") == 1)
        await asyncio.gather(*(ex.invoker.invoke(call_of(ex, "/pre")) for _ in range(3)))
        await until(lambda: ready(ex, "/pre") >= 2)
        await until(lambda: ready(ex, "/pre") == 1, within=3)


@pytest.mark.parametrize(
    ("program", "error", "message"),
    [
        (exits_with(3, b"boom"), FunctionFailed, "exit status 3"),
        (hangs, FunctionTimedOut, "timed out"),
    ],
)
async def test_a_prestarted_call_that_fails_gets_what_a_cold_call_gets(
    tmp_path, program, error, message
):
    engine = FakeEngine(images(**{"fake/bad": program}))
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/pre", "fake/bad", min_warm=1, timeout=1)
        await route(ex, "/cold", "fake/bad", timeout=1)
        await until(lambda: ready(ex, "/pre") == 1)
        warm, cold = call_of(ex, "/pre"), call_of(ex, "/cold")
        for call in (warm, cold):
            with pytest.raises(error) as info:
                await ex.invoker.invoke(call)
            assert message in info.value.message
        assert warm.start == "warm" and cold.start == "cold"
        assert warm.log == cold.log
        await until(lambda: warm.container_id not in engine.live)


async def test_without_the_launchers_trailer_the_exit_status_is_the_engines(tmp_path):
    engine = FakeEngine(images(**{"fake/bad": exits_with(5)}))
    engine.launcher_killed = True
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/ok", "fake/echo", min_warm=1)
        await route(ex, "/bad", "fake/bad", min_warm=1)
        await until(lambda: ready(ex, "/ok") == 1 and ready(ex, "/bad") == 1)
        ok = await ex.invoker.invoke(call_of(ex, "/ok", b"fine"))
        assert ok.status == 200 and ok.body == b"fine"
        with pytest.raises(FunctionFailed, match="exit status 5"):
            await ex.invoker.invoke(call_of(ex, "/bad"))


async def test_a_prestarted_response_over_the_limit_is_refused(tmp_path):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine, max_response_bytes=10) as ex:
        await route(ex, "/pre", "fake/echo", min_warm=1)
        await until(lambda: ready(ex, "/pre") == 1)
        exact = await ex.invoker.invoke(call_of(ex, "/pre", b"x" * 10))
        assert exact.body == b"x" * 10  # the limit itself, trailer aside
        await until(lambda: ready(ex, "/pre") == 1)
        with pytest.raises(ResponseTooLarge):
            await ex.invoker.invoke(call_of(ex, "/pre", b"x" * 11))


async def test_a_container_that_dies_before_its_call_is_replaced_after_a_backoff(tmp_path):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/pre", "fake/echo", min_warm=1)
        await until(lambda: ready(ex, "/pre") == 1)
        (c,) = engine.running()
        c.print(b"executor launcher: program not found", stream=2)
        await c.exit(127)
        await until(lambda: c.id not in engine.live)
        call = call_of(ex, "/pre", b"meanwhile")
        response = await ex.invoker.invoke(call)
        assert response.body == b"meanwhile" and call.start == "cold"
        await until(lambda: ready(ex, "/pre") >= 1, within=3)
        failed = ex.metrics.registry.get_sample_value(
            "executor_container_events_total",
            {"app": "t", "route": "/pre", "event": "start_failed"},
        )
        assert failed == 1


async def test_a_route_change_drains_its_prestarted_containers(tmp_path):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/pre", "fake/echo", min_warm=1)
        await until(lambda: ready(ex, "/pre") == 1)
        (old,) = engine.running()
        await route(ex, "/pre", "fake/echo", min_warm=1, memory=64)
        await until(lambda: old.id not in engine.live and ready(ex, "/pre") == 1)
        await route(ex, "/pre", "fake/echo", min_warm=0)
        await until(lambda: not engine.live)
        assert ex.pools.pool("t", "/pre") is None


async def test_an_idle_prestarted_container_is_evicted_for_another_routes_call(tmp_path):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine, memory_budget=256) as ex:
        await route(ex, "/pre", "fake/echo", min_warm=2, memory=128)
        await until(lambda: ready(ex, "/pre") == 2)
        await route(ex, "/other", "fake/echo", memory=128)
        response = await ex.invoker.invoke(call_of(ex, "/other", b"room"))
        assert response.body == b"room"


async def test_closing_the_executor_removes_every_prestarted_container(tmp_path):
    engine = FakeEngine(images())
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/pre", "fake/echo", min_warm=3, max_containers=3)
        await until(lambda: ready(ex, "/pre") == 3)
    assert not engine.live
