"""Pausing idle hot containers (pause_idle_after) on the real engine: paused once idle,
resumed for a call, and never left paused: removal at shutdown and orphan cleanup at
the next start work on paused containers."""

import asyncio
import json
import subprocess
import time

import pytest

from executor.docker.engine import FREEZER
from executor.store.store import Store
from tests.conftest import GROUPS, group_containers
from tests.integration.conftest import running, settings_for
from tests.integration.test_lifecycle import create_container


def paused(container: str) -> bool:
    """Paused through the engine, or frozen by the executor through the freezer itself."""
    inspect = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    )
    (info,) = json.loads(inspect.stdout)
    freezer = FREEZER / info["Id"] / "freezer.state"
    if info["State"]["Paused"]:
        return True
    try:
        return freezer.read_text().strip() == "FROZEN"
    except FileNotFoundError:  # not started yet
        return False


async def until_paused(group: str, within: float = 20.0) -> str:
    deadline = time.monotonic() + within
    while True:
        containers = group_containers(group)
        if containers and paused(containers[0]):
            return containers[0]
        assert time.monotonic() < deadline, "no container was paused"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("direct", [True, False], ids=["freezer", "engine API"])
async def test_an_idle_hot_container_is_paused_and_resumed_for_its_next_call(db, direct):
    settings = settings_for(db, pause_idle_after=0.1, pause_direct=direct)
    async with running(settings) as executor:
        await executor.route("/hot", "executor/hello-stream", format="http-stream")
        container = await until_paused(executor.group)
        response = await executor.client.post("/r/t/hot", data=b'{"name": "paused"}')
        assert await response.text() == "Hello paused!\n"
        assert response.headers["Executor-Start"] == "warm"
        assert await until_paused(executor.group) == container  # idle again: paused again
        await executor.client.close()  # the shutdown removes it, paused as it is
        assert group_containers(executor.group) == []


@pytest.mark.parametrize("direct", [True, False], ids=["freezer", "engine API"])
async def test_a_paused_container_left_by_a_killed_executor_is_removed_at_the_next_start(
    db, direct
):
    store = await Store.open(str(db), db.parent)
    group = store.group_id
    await store.close()
    GROUPS.add(group)
    orphan = create_container(group, "a-killed-process")
    subprocess.run(["docker", "start", orphan], check=True, capture_output=True)
    if direct:
        inspect = ["docker", "inspect", "-f", "{{.Id}}", orphan]
        full = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip()
        (FREEZER / full / "freezer.state").write_text("FROZEN")
    else:
        subprocess.run(["docker", "pause", orphan], check=True, capture_output=True)
    assert paused(orphan)
    async with running(settings_for(db)):
        assert group_containers(group) == []
