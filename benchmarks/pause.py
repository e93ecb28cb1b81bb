"""Pausing idle hot containers (`EXECUTOR_PAUSE_IDLE_AFTER`), measured against not pausing,
in the same run: three executors on the same engine, two pausing after 50 ms (one writing
the cgroup freezer itself, one through the engine's API), one not.

- What it adds to a warm call: calls to a route with one warm container, spaced 300 ms
  (so each finds the pausing executor's container paused), interleaved between the two.
- What it saves: the CPU that 8 idle containers of a route use over 10 s (their cgroups'
  cpuacct.usage), for a function that does nothing while idle and one that works a little
  every 10 ms (benchmarks/functions/aiohttp-hello with BACKGROUND_WORK).

    python -m benchmarks.pause [--calls 40] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import time
from pathlib import Path

import aiohttp

from benchmarks import common
from benchmarks.common import executor_server, machine, put_json, summary, table, write_result

IMAGE = "executor-bench/aiohttp-hello"
IDLE_CONTAINERS = 8
CPU_WINDOW = 10.0
SPACING = 0.3
CPUACCT = Path("/sys/fs/cgroup/cpuacct/docker")


def deploy(url: str) -> None:
    hot = {"image": IMAGE, "format": "http-stream", "idle_timeout": 3600}
    put_json(f"{url}/v1/apps/pause/routes/call", {"route": {**hot, "min_warm": 1}})
    for name, config in (("quiet", {}), ("busy", {"BACKGROUND_WORK": "1"})):
        route = {**hot, "min_warm": IDLE_CONTAINERS, "max_containers": IDLE_CONTAINERS}
        put_json(f"{url}/v1/apps/pause/routes/{name}", {"route": {**route, "config": config}})


async def ready(session: aiohttp.ClientSession, url: str) -> None:
    wanted = {"call": 1, "quiet": IDLE_CONTAINERS, "busy": IDLE_CONTAINERS}
    for _ in range(900):
        counts = {}
        for name in wanted:
            async with session.get(f"{url}/v1/apps/pause/routes/{name}") as response:
                counts[name] = (await response.json())["route"]["pool"]["idle"]
        if all(counts[name] >= n for name, n in wanted.items()):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url}: pools never filled: {counts}")


def containers(instance: str, route: str) -> list[str]:
    args = ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=executor.instance={instance}",
            "--filter", f"label=executor.route=/{route}"]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()


def cpu_ns(ids: list[str]) -> int:
    return sum(int((CPUACCT / cid / "cpuacct.usage").read_text()) for cid in ids)


async def measure(urls: dict[str, str], calls: int) -> dict:
    latencies: dict[str, list[float]] = {who: [] for who in urls}
    instances: dict[str, str] = {}
    async with aiohttp.ClientSession() as session:
        for who, url in urls.items():
            await ready(session, url)
            async with session.post(f"{url}/r/pause/call") as response:  # first connection
                await response.read()
                instances[who] = response.headers["Executor-Instance"]
        for _ in range(calls):
            for who in random.sample(list(urls), len(urls)):
                await asyncio.sleep(SPACING)
                began = time.perf_counter()
                async with session.post(f"{urls[who]}/r/pause/call") as response:
                    await response.read()
                    assert response.headers["Executor-Start"] == "warm"
                latencies[who].append(time.perf_counter() - began)
    await asyncio.sleep(1.0)  # every idle container paused by now, where it pauses
    ids = {(who, route): containers(instances[who], route) for who in urls for route in
           ("quiet", "busy")}  # fmt: skip
    before = {key: cpu_ns(found) for key, found in ids.items()}
    await asyncio.sleep(CPU_WINDOW)
    cpu = {
        f"{who}, {route}": {
            "containers": len(ids[(who, route)]),
            "cpu_ms_per_s": (cpu_ns(ids[(who, route)]) - before[(who, route)]) / 1e6 / CPU_WINDOW,
        }
        for who, route in ids
    }
    return {"calls": {who: summary(values) for who, values in latencies.items()}, "cpu": cpu}


def report(results: dict) -> str:
    rows = [["warm call", "n", "p50 ms", "p90 ms", "p99 ms"]]
    for who, s in results["calls"].items():
        rows.append([who, str(s["n"]), f"{s['p50_ms']:.3f}", f"{s['p90_ms']:.3f}",
                     f"{s['p99_ms']:.3f}"])  # fmt: skip
    calls = results["calls"]
    added = ", ".join(
        f"{who} +{calls[who]['p50_ms'] - calls['not paused']['p50_ms']:.3f} ms"
        for who in calls
        if who != "not paused"
    )
    cpu_rows = [["idle containers", "count", "CPU ms/s (all of them)"]]
    for name, c in results["cpu"].items():
        cpu_rows.append([name, str(c["containers"]), f"{c['cpu_ms_per_s']:.2f}"])
    return "\n".join([table(rows), f"added to the p50: {added}", "",
                      table(cpu_rows)])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="a few calls, 2 idle containers")
    parser.add_argument("--out", type=Path, default=common.RESULTS, help="where results go")
    args = parser.parse_args()
    common.RESULTS = args.out
    if args.quick:
        global IDLE_CONTAINERS, CPU_WINDOW
        args.calls, IDLE_CONTAINERS, CPU_WINDOW = 3, 2, 1.0
    quiet = {"EXECUTOR_ACCESS_LOG": "false"}
    pausing = {**quiet, "EXECUTOR_PAUSE_IDLE_AFTER": "0.05"}
    with (
        executor_server(**pausing) as freezer,
        executor_server(**pausing, EXECUTOR_PAUSE_DIRECT="false") as api,
        executor_server(**quiet) as plain,
    ):
        urls = {"paused (freezer)": freezer, "paused (engine API)": api, "not paused": plain}
        for url in urls.values():
            deploy(url)
        results = asyncio.run(measure(urls, args.calls))
    print(report(results))
    data = {"benchmark": "pause", "quick": args.quick, "machine": machine(), "results": results}
    print(f"written: {write_result('pause', data)}")


if __name__ == "__main__":
    main()
