"""The engine wrapper on the real engine: long-lived streams never starve short calls."""

import asyncio

import pytest

from executor.docker.engine import DockerEngine
from executor.tasks import TaskGroup
from tests.conftest import GROUPS, remove_group_containers

GROUP = "test-docker-engine"


@pytest.fixture
async def engine():
    GROUPS.add(GROUP)
    work = TaskGroup("test")
    engine = DockerEngine("unix:///var/run/docker.sock", work)
    try:
        yield engine
    finally:
        await work.close(10)
        await engine.close()
        remove_group_containers(GROUP)


def config(image: str) -> dict:
    return {
        "Image": image,
        "Labels": {"executor.managed": "true", "executor.group": GROUP},
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": True,
        "OpenStdin": True,
        "StdinOnce": True,
        "HostConfig": {"NetworkMode": "none", "LogConfig": {"Type": "none"}},
    }


async def test_110_open_attach_streams_do_not_starve_create_and_start(engine):
    # More open attach streams than aiodocker's default pool has connections (100):
    # were they on the pool that create/start use, this would wait forever.
    streams = []
    try:
        async with asyncio.timeout(60):
            echo = config("executor-test/echo")
            created = await asyncio.gather(*(engine.create(echo) for _ in range(110)))
            streams = await asyncio.gather(*(engine.attach(cid) for cid in created))

            container_id = await engine.create(echo)
            stdio = await engine.attach(container_id)
            await engine.start(container_id)
            await stdio.write(b"still answering")
            stdio.end_input()
            out = b""
            while (chunk := await stdio.read()) is not None:
                out += chunk[1]
            await stdio.close()
        assert out == b"still answering"
    finally:
        await asyncio.gather(*(s.close() for s in streams))
