"""A 60 s loopback load against a hot route while its containers are killed from outside:
every call is answered 200, 502 or 503 (none hanging, none 500), and the pool comes back
to min_warm. EXECUTOR_CHAOS_SECONDS shortens it for a quick run."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import subprocess
import time

import aiohttp

from tests.integration.test_invoke_hot import HOT, hot_containers, wait_pool

SECONDS = float(os.environ.get("EXECUTOR_CHAOS_SECONDS", "60"))
CLIENTS = 6
CALL_LIMIT = 10.0  # a call taking longer than this counts as hanging


async def test_calls_keep_being_answered_while_containers_are_killed(executor):
    await executor.route(
        "/hot", HOT, format="http-stream", min_warm=2, max_containers=4, timeout=5, idle_timeout=2
    )
    await wait_pool(executor, "/hot", idle=2)
    statuses: collections.Counter[int] = collections.Counter()
    hanging = 0
    kills = 0
    stop_at = time.monotonic() + SECONDS

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal hanging
        while time.monotonic() < stop_at:
            body = random.choice([b"", b"sleep 0.05", b"sleep 0.2"])
            try:
                async with asyncio.timeout(CALL_LIMIT):
                    async with session.post(f"{executor.url}/r/t/hot", data=body) as r:
                        await r.read()
                        statuses[r.status] += 1
            except TimeoutError:
                hanging += 1

    async def killer() -> None:
        nonlocal kills
        while time.monotonic() < stop_at:
            await asyncio.sleep(random.uniform(0.5, 2.0))
            running = hot_containers(executor)
            if running:
                subprocess.run(["docker", "kill", random.choice(running)], capture_output=True)
                kills += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(killer(), *(client(session) for _ in range(CLIENTS)))
    print(f"chaos: {SECONDS:.0f} s, {kills} kills, statuses {dict(statuses)}, hanging {hanging}")
    assert hanging == 0
    assert set(statuses) <= {200, 502, 503}, statuses
    assert statuses[200] > statuses[502] + statuses[503]
    assert kills >= SECONDS / 3
    await wait_pool(executor, "/hot", idle=2, busy=0, starting=0)
