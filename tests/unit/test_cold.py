"""The cold runner on the fake engine: one container per call, its answer, its failures,
its removal."""

from __future__ import annotations

import asyncio
import time

import pytest

from executor.errors import (
    EngineError,
    EngineUnreachable,
    FunctionFailed,
    FunctionTimedOut,
    ImageMissing,
    ResponseTooLarge,
    ShuttingDown,
)
from tests.fake_engine import FakeContainer, FakeEngine, echo, exits_with, hangs
from tests.unit.conftest import call_of, fake_executor, route, until


async def test_a_call_runs_in_a_new_container_that_is_removed_after(executor, engine):
    await route(executor, "/echo", "fake/echo")
    call = call_of(executor, "/echo", b"ping")
    response = await executor.invoker.invoke(call)
    assert (response.status, response.body, call.start) == (200, b"ping", "cold")
    assert engine.created == [call.container_id]
    await until(lambda: engine.removed == [call.container_id])
    assert executor.admission.free == executor.admission.budget  # its memory is back


async def test_a_non_zero_exit_is_502_with_the_status_and_its_stderr_in_the_log(tmp_path):
    engine = FakeEngine({"fake/fail": exits_with(3, stderr=b"boom\n")})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/fail", "fake/fail")
        call = call_of(ex, "/fail")
        with pytest.raises(FunctionFailed, match="function failed: exit status 3"):
            await ex.invoker.invoke(call)
        assert b"boom" in call.log


async def test_a_function_past_its_deadline_is_504_and_its_container_removed(tmp_path):
    engine = FakeEngine({"fake/hang": hangs})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hang", "fake/hang")
        call = call_of(ex, "/hang", deadline=time.monotonic() + 0.2)
        with pytest.raises(FunctionTimedOut):
            await ex.invoker.invoke(call)
        await until(lambda: engine.removed == engine.created)


async def test_stdout_past_the_response_limit_is_502(tmp_path):
    async def floods(c: FakeContainer) -> int:
        c.print(b"x" * 2048)
        await asyncio.Event().wait()
        return 0

    engine = FakeEngine({"fake/flood": floods})
    async with fake_executor(tmp_path, engine, max_response_bytes=1024) as ex:
        await route(ex, "/flood", "fake/flood")
        with pytest.raises(ResponseTooLarge, match="limit 1024 bytes"):
            await ex.invoker.invoke(call_of(ex, "/flood"))
        await until(lambda: engine.removed == engine.created)


async def test_an_image_gone_from_the_engine_is_named(executor, engine):
    await route(executor, "/echo", "fake/echo")
    engine.fail["create"] = EngineError(404, "No such image: fake/echo")
    with pytest.raises(ImageMissing, match="image 'fake/echo' is not on the Docker engine"):
        await executor.invoker.invoke(call_of(executor, "/echo"))
    assert executor.admission.free == executor.admission.budget


async def test_an_engine_that_does_not_answer_is_503(executor, engine):
    await route(executor, "/echo", "fake/echo")
    engine.down = True
    with pytest.raises(EngineUnreachable, match="Docker engine unreachable"):
        await executor.invoker.invoke(call_of(executor, "/echo"))


async def test_another_engine_failure_says_the_container_could_not_be_started(executor, engine):
    await route(executor, "/echo", "fake/echo")
    engine.fail["start"] = EngineError(500, "OCI runtime create failed")
    with pytest.raises(FunctionFailed, match="could not be started: OCI runtime create failed"):
        await executor.invoker.invoke(call_of(executor, "/echo"))
    await until(lambda: engine.removed == engine.created)


async def test_a_call_still_running_past_the_shutdown_grace_is_stopped_with_503(tmp_path):
    engine = FakeEngine({"fake/hang": hangs, "fake/echo": echo})
    async with fake_executor(tmp_path, engine) as ex:
        await route(ex, "/hang", "fake/hang")
        running = asyncio.ensure_future(ex.invoker.invoke(call_of(ex, "/hang")))
        await until(lambda: engine.running())
        await ex.drain(grace=0.1)
        with pytest.raises(ShuttingDown, match="call stopped"):
            await running
        await until(lambda: not engine.live)


async def test_a_caller_that_goes_away_stops_its_function(executor, engine):
    engine.images["fake/hang"] = hangs
    await route(executor, "/hang", "fake/hang")
    running = asyncio.ensure_future(executor.invoker.invoke(call_of(executor, "/hang")))
    await until(lambda: engine.running())
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await until(lambda: not engine.live)
