"""Several executors (nodes) sharing one PostgreSQL store, on one Docker engine: routes
changed through any node are served by all, call records are read from any, and each
node's containers stay its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import pytest

from executor.config import Settings
from executor.errors import StoreLocked
from executor.pool.pools import iofs_root
from executor.runtime import RESYNC_EVERY
from tests.conftest import GROUPS, free_port, group_containers, remove_group_containers
from tests.integration.conftest import Executor, running, settings_for
from tests.integration.test_async import ended, record, submit
from tests.integration.test_hostile_functions import metric, metrics
from tests.integration.test_invoke_hot import wait_pool

# The bound: a change through one node is served by the others within this.
PROPAGATION = 1.0


@contextlib.asynccontextmanager
async def fleet(url: str, tmp_path: Path, nodes: int = 3) -> AsyncIterator[list[Executor]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                running(settings_for(url, data_dir=tmp_path / f"node{n}"))  # type: ignore[arg-type]
            )
            for n in range(nodes)
        ]


@contextlib.contextmanager
def node_processes(url: str, *data_dirs: Path, args: tuple[str, ...] = (), **env: str):
    """Nodes as processes of their own (so that one can be killed -9), started together:
    their URLs and processes."""
    nodes = []
    try:
        for data_dir in data_dirs:
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "executor", "serve", "--port", str(port), "--db", url,
                 "--data-dir", str(data_dir), *args],
                env={**os.environ, "EXECUTOR_LOG_LEVEL": "warning", **env},
            )  # fmt: skip
            nodes.append((f"http://127.0.0.1:{port}", process, data_dir))
        for base, process, data_dir in nodes:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, "the node exited before it was ready"
                try:
                    urllib.request.urlopen(f"{base}/health/ready", timeout=1)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the node was not ready in 30 s"
                    time.sleep(0.1)
            GROUPS.add((data_dir / "node.id").read_text().strip())
        yield [(base, process) for base, process, _ in nodes]
    finally:
        for _, process, data_dir in nodes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
            # Those of a node killed -9, left running (its next start would remove them),
            # and its iofs folder (the launcher's copy in it).
            if (data_dir / "node.id").exists():
                group = (data_dir / "node.id").read_text().strip()
                remove_group_containers(group)
                shutil.rmtree(iofs_root(Settings(), group), ignore_errors=True)


async def status_within(ex: Executor, path: str, want: int, within: float) -> float:
    """Seconds until a call of `path` on `ex` answers `want`."""
    began = time.monotonic()
    while True:
        response = await ex.client.post(f"/r/t{path}")
        await response.read()
        if response.status == want:
            return time.monotonic() - began
        assert time.monotonic() - began < within, f"{path}: {response.status}, not {want}"
        await asyncio.sleep(0.02)


async def test_a_route_created_on_one_node_answers_on_the_others_within_a_second(
    postgres_url, tmp_path
):
    async with fleet(postgres_url, tmp_path) as (a, b, c):
        await a.route("/hello", "executor/hello")
        for other in (b, c):
            await status_within(other, "/hello", 200, PROPAGATION)
        # Deleted on B: gone on A and C.
        await b.json("DELETE", "/v1/apps/t/routes/hello")
        for other in (a, c):
            await status_within(other, "/hello", 404, PROPAGATION)


async def test_a_route_changed_on_one_node_drains_the_pools_of_the_others(postgres_url, tmp_path):
    async with fleet(postgres_url, tmp_path, nodes=2) as (a, b):
        await a.route("/hot", "executor/hello-stream", format="http-stream", min_warm=1)
        await status_within(b, "/hot", 200, PROPAGATION)
        await wait_pool(b, "/hot", idle=1)
        (before,) = group_containers(b.group)
        await a.route("/hot", "executor/hello-stream", format="http-stream", min_warm=1, memory=96)
        deadline = time.monotonic() + 20
        while before in group_containers(b.group) or not group_containers(b.group):
            assert time.monotonic() < deadline, "B kept its container of the old route"
            await asyncio.sleep(0.05)
        assert (await b.json("GET", "/v1/apps/t/routes/hot"))["route"]["memory"] == 96


async def test_a_change_whose_notice_is_missed_is_taken_in_by_the_periodic_resync(
    postgres_url, tmp_path
):
    async with fleet(postgres_url, tmp_path, nodes=2) as (a, b):
        await a.route("/hello", "executor/hello")
        await status_within(b, "/hello", 200, PROPAGATION)
        # A row changed with no notice (as if B's listening connection had been down).
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute("DELETE FROM routes WHERE path = '/hello'")
        finally:
            await conn.close()
        await status_within(b, "/hello", 404, RESYNC_EVERY + 2)


async def test_any_node_reads_every_nodes_call_records_and_says_which_node_ran_them(
    postgres_url, tmp_path
):
    async with fleet(postgres_url, tmp_path, nodes=2) as (a, b):
        await a.route("/hello", "executor/hello")
        await status_within(b, "/hello", 200, PROPAGATION)
        response = await b.client.post("/r/t/hello")
        call_id = response.headers["Fn-Call-Id"]
        deadline = time.monotonic() + 5
        while (got := await a.client.get(f"/v1/apps/t/calls/{call_id}")).status != 200:
            assert time.monotonic() < deadline, "B's call never showed on A"
            await asyncio.sleep(0.05)
        call = (await got.json())["call"]
        assert call["node"] == b.group and call["state"] == "success"
        listed = (await a.json("GET", "/v1/apps/t/calls"))["calls"]
        assert call_id in [c["id"] for c in listed]


async def test_an_async_call_of_a_route_just_made_succeeds_on_whichever_node_claims_it(
    postgres_url, tmp_path
):
    # Submitted right after its route is made: another node may hear of the call before
    # it has the route, and must not end it as not found.
    async with fleet(postgres_url, tmp_path, nodes=2) as (a, b):
        for n in range(5):
            await a.route(f"/async{n}", "executor-test/echo", type="async")
            call_id = await submit(a, f"/async{n}", b"queued on A")
            call = await ended(b, call_id)  # read on B: the record is shared
            assert call["state"] == "success", call
            assert call["node"] in (a.group, b.group)


async def test_nodes_on_one_store_and_one_engine_never_remove_each_others_containers(
    postgres_url, tmp_path
):
    async with fleet(postgres_url, tmp_path, nodes=1) as (a,):
        await a.route("/hot", "executor/hello-stream", format="http-stream", min_warm=1)
        await wait_pool(a, "/hot", idle=1)
        (mine,) = group_containers(a.group)
        # A second node starts (its orphan clean-up runs) and stops (its pools go).
        async with fleet(postgres_url, tmp_path / "more", nodes=1) as (b,):
            assert b.group != a.group
            await status_within(b, "/hot", 200, PROPAGATION)
            await wait_pool(b, "/hot", idle=1)
        assert group_containers(a.group) == [mine]
        with pytest.raises(StoreLocked, match="data folder"):
            async with running(settings_for(postgres_url, data_dir=tmp_path / "node0")):  # type: ignore[arg-type]
                pass


async def test_with_the_database_gone_calls_go_on_writes_answer_503_and_all_heals_after(
    postgres_cluster, postgres_url, tmp_path
):
    async with fleet(postgres_url, tmp_path, nodes=1) as (a,):
        await a.route("/hot", "executor/hello-stream", format="http-stream", min_warm=1)
        await a.route("/hello", "executor/hello")
        await a.route("/async", "executor-test/echo", type="async")
        await wait_pool(a, "/hot", idle=1)
        postgres_cluster.stop()
        try:
            ready = await a.client.get("/health/ready")
            assert ready.status == 503 and "unavailable" in (await ready.text())
            # Calls are served from memory: warm and cold alike, and recorded later.
            during = []
            for path in ("/hot", "/hello"):
                response = await a.client.post(f"/r/t{path}")
                assert response.status == 200, await response.text()
                during.append(response.headers["Fn-Call-Id"])
            began = time.monotonic()
            write = await a.client.put(
                "/v1/apps/t/routes/new", json={"route": {"image": "executor/hello"}}
            )
            assert write.status == 503, await write.text()
            submitted = await a.client.post("/r/t/async", data=b"x")
            assert submitted.status == 503, await submitted.text()
            listed = await a.client.get("/v1/apps/t/calls")
            assert listed.status == 503
            assert time.monotonic() - began < 20  # answered, never hung
        finally:
            postgres_cluster.start()
        deadline = time.monotonic() + 20
        while (await a.client.get("/health/ready")).status != 200:
            assert time.monotonic() < deadline, "never ready again"
            await asyncio.sleep(0.2)
        await a.route("/new", "executor/hello")
        for call_id in during:  # kept back while the database was gone, written now
            deadline = time.monotonic() + 10
            while (await a.client.get(f"/v1/apps/t/calls/{call_id}")).status != 200:
                assert time.monotonic() < deadline, f"call {call_id} was never recorded"
                await asyncio.sleep(0.2)
        call_id = await submit(a, "/async", b"after")
        assert (await ended(a, call_id))["state"] == "success"


async def test_an_async_call_of_a_node_killed_9_ends_on_another_within_the_lease(
    postgres_url, tmp_path
):
    lease = 3.0
    with node_processes(postgres_url, tmp_path / "a", EXECUTOR_ASYNC_LEASE=str(lease)) as [(a, p)]:
        async with aiohttp.ClientSession(a) as http:
            route = {"route": {"image": "executor-test/sleep", "type": "async", "timeout": 60}}
            async with http.put("/v1/apps/t/routes/slow", json=route) as response:
                assert response.status in (200, 201), await response.text()
            async with http.post("/r/t/slow") as response:
                assert response.status == 202
                call_id = (await response.json())["call_id"]
            deadline = time.monotonic() + 20
            while True:
                async with http.get(f"/v1/apps/t/calls/{call_id}") as response:
                    call = (await response.json())["call"]
                if call["state"] == "running":
                    break
                assert time.monotonic() < deadline, call
                await asyncio.sleep(0.05)
        async with fleet(postgres_url, tmp_path, nodes=2) as (b, c):
            p.kill()  # kill -9: no shutdown, its lease is left to run out
            p.wait()
            killed = time.monotonic()
            call = await ended(b, call_id, within=lease + 10)
            took = time.monotonic() - killed
            assert call["state"] == "error" and "lost" in call["error"], call
            assert call["node"] in (b.group, c.group)
            print(f"ended {took:.2f} s after the kill (lease {lease:g} s)")
            assert took < lease + 2, f"ended {took:.1f} s after the kill"
            assert (await record(c, call_id))["state"] == "error"


async def test_async_calls_spread_over_three_nodes_all_end_and_each_runs_once(
    postgres_url, tmp_path
):
    async with fleet(postgres_url, tmp_path) as nodes:
        route = {"format": "http-stream", "type": "async", "min_warm": 2}
        await nodes[0].route("/many", "executor/hello-stream", **route)
        for node in nodes:
            await status_within(node, "/nothing", 404, PROPAGATION)
            await wait_pool(node, "/many", within=60, idle=2)
        ids = await asyncio.gather(*(submit(nodes[n % 3], "/many") for n in range(300)))
        for n, call_id in enumerate(ids):
            call = await ended(nodes[(n + 1) % 3], call_id, within=60)
            assert call["state"] == "success", call
        runs = [
            metric(await metrics(node), "executor_calls_total", route="/many") for node in nodes
        ]
        assert sum(runs) == 300, runs  # each call ran once, on one node or another


def test_one_routes_file_applied_by_nodes_starting_together_gives_one_set_of_routes(
    postgres_url, tmp_path
):
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "apps:\n  - name: t\n    config: {A: '1'}\n    routes:\n"
        "      - {path: /hello, image: executor/hello}\n"
        "      - {path: /echo, image: executor-test/echo, memory: 64}\n"
    )
    dirs = [tmp_path / f"node{n}" for n in range(3)]
    with node_processes(postgres_url, *dirs, args=("--routes", str(routes))) as nodes:
        seen = set()
        for base, _ in nodes:
            with urllib.request.urlopen(f"{base}/v1/apps/t/routes") as response:
                listed = orjson.loads(response.read())["routes"]
            seen.add(tuple(sorted((r["path"], r["memory"]) for r in listed)))
        assert seen == {(("/echo", 64), ("/hello", 128))}
