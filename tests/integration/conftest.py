"""An executor per test, in process, on the real Docker engine."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from executor.app import create_app
from executor.config import Settings
from executor.state import EXECUTOR
from tests.conftest import GROUPS, remove_group_containers

IMAGES = [
    "executor/busybox",
    "executor/python3",
    "executor/hello",
    "executor/hello-stream",
    "executor/fdk-hello",
    "executor-test/echo",
    "executor-test/env",
    "executor-test/fail",
    "executor-test/flood",
    "executor-test/logflood",
    "executor-test/fdk",
    "executor-test/forkbomb",
    "executor-test/hot",
    "executor-test/oom",
    "executor-test/probe",
    "executor-test/sleep",
    "executor-test/stderr",
    "executor/go-http",
    "executor/go-hello",
    "executor-test/gohttp",
]


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session", autouse=True)
def docker_and_images():
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        pytest.fail(f"no Docker engine answers (`docker info`): {info.stderr.strip()}")
    missing = [
        image
        for image in IMAGES
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode
    ]
    if missing:
        pytest.fail(f"images missing, build them with images/build.sh: {', '.join(missing)}")


@dataclass
class Executor:
    """A running executor and a client for it."""

    app: web.Application
    client: TestClient

    @property
    def group(self) -> str:
        return self.app[EXECUTOR].identity.group

    @property
    def instance(self) -> str:
        return self.app[EXECUTOR].identity.instance

    @property
    def url(self) -> str:
        return str(self.client.make_url("/")).rstrip("/")

    async def json(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = await self.client.request(method, path, json=body)
        data = await response.json()
        assert response.status == status, data
        return data

    async def route(self, path: str, image: str, app: str = "t", **fields: Any) -> dict:
        """Creates (or replaces) a route, creating its app first if needed."""
        response = await self.client.get(f"/v1/apps/{app}")
        if response.status == 404:
            await self.json("POST", "/v1/apps", {"app": {"name": app}}, 200)
        response = await self.client.put(
            f"/v1/apps/{app}/routes{path}", json={"route": {"image": image, **fields}}
        )
        data = await response.json()
        assert response.status in (200, 201), data
        return data["route"]


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Executor]:
    app = create_app(settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    group = app[EXECUTOR].identity.group
    GROUPS.add(group)
    try:
        yield Executor(app, client)
    finally:
        await client.close()
        remove_group_containers(group)


def settings_for(db: Path, **overrides: Any) -> Settings:
    return Settings(db=db, shutdown_grace=5.0, **overrides)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "executor.db"


@pytest.fixture
async def executor(db: Path) -> AsyncIterator[Executor]:
    async with running(settings_for(db)) as ex:
        yield ex
