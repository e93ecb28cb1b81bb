"""The task group: background work logged when it crashes, stopped at close."""

from __future__ import annotations

import asyncio
import logging

from executor.tasks import TaskGroup


async def test_a_crashed_task_is_logged_with_its_name_and_group(caplog):
    group = TaskGroup("work")

    async def crash() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR):
        task = group.spawn(crash(), "crasher")
        await asyncio.wait({task})
    assert "background task crasher (work) crashed" in caplog.text
    assert "boom" in caplog.text and len(group) == 0


async def test_close_waits_for_tasks_within_the_grace_then_cancels_the_rest():
    group = TaskGroup("work")
    done: list[str] = []

    async def quick() -> None:
        await asyncio.sleep(0.01)
        done.append("quick")

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            done.append("cancelled")
            raise

    group.spawn(quick(), "quick")
    group.spawn(slow(), "slow")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await group.close(0.2)
    assert sorted(done) == ["cancelled", "quick"]
    assert 0.2 <= loop.time() - started < 1.0 and len(group) == 0


async def test_close_also_waits_for_tasks_spawned_while_it_waits():
    group = TaskGroup("work")
    done: list[str] = []

    async def second() -> None:
        await asyncio.sleep(0.01)
        done.append("second")

    async def first() -> None:
        await asyncio.sleep(0.01)
        group.spawn(second(), "second")  # a removal started by a drain, say

    group.spawn(first(), "first")
    await group.close(2.0)
    assert done == ["second"]


async def test_a_step_runs_every_interval_until_its_group_closes():
    group = TaskGroup("test")
    runs = []

    async def step() -> None:
        runs.append(1)

    group.every(0.01, step, "tick")
    await asyncio.sleep(0.1)
    await group.close(0)
    counted = len(runs)
    await asyncio.sleep(0.05)
    assert counted >= 3 and len(runs) == counted and not group
