"""An executor on the fake engine (tests/fake_engine.py): the real parts and wiring
(runtime.py), no Docker, each test in well under a second."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from executor.calls import Call
from executor.config import Settings
from executor.pool import launcher
from executor.runtime import Executor
from tests.fake_engine import FakeEngine, HotProgram, echo, hot_echo


@pytest.fixture(autouse=True)
def launcher_stand_in(tmp_path_factory: pytest.TempPathFactory, monkeypatch: Any) -> None:
    """The fake engine runs no binary: any file stands in for the built launcher, so
    these tests need no images/build.sh."""
    stand_in = tmp_path_factory.getbasetemp() / "launch"
    stand_in.write_bytes(b"fake launcher")
    monkeypatch.setattr(launcher, "PACKAGED", stand_in)


def fake_settings(tmp_path: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "iofs_tmpfs": False,  # unit tests run unprivileged too
        "hot_sched_batch": False,
        "memory_budget": 1024,
        "shutdown_grace": 2.0,
    }
    return Settings(db=tmp_path / "executor.db", **{**defaults, **overrides})


@contextlib.asynccontextmanager
async def fake_executor(
    tmp_path: Path, engine: FakeEngine | None = None, **overrides: Any
) -> AsyncIterator[Executor]:
    engine = engine or FakeEngine({"fake/echo": echo, "fake/hot": HotProgram(hot_echo)})
    async with Executor(fake_settings(tmp_path, **overrides), engine) as executor:
        yield executor


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine({"fake/echo": echo, "fake/hot": HotProgram(hot_echo)})


@pytest.fixture
async def executor(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[Executor]:
    async with fake_executor(tmp_path, engine) as executor:
        yield executor


async def route(executor: Executor, path: str, image: str, **fields: Any) -> Any:
    saved, _ = await executor.registry.put_route("t", path, {"image": image, **fields})
    return saved


async def until(condition: Callable[[], Any], within: float = 3.0) -> None:
    """Polls `condition` (a fake engine's or a pool's state) until it holds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (plain state, no event to wait on)
            await asyncio.sleep(0.005)


def call_of(executor: Executor, path: str, body: bytes = b"", **fields: Any) -> Call:
    route = executor.registry.route("t", path)
    fields = {"method": "POST", "url": f"http://localhost/r/t{path}", "headers": [], **fields}
    return Call(app=executor.registry.app("t"), route=route, body=body, **fields)
