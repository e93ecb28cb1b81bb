"""Scale: a warm call's p50 and the executor's memory (RSS) with 1, 10 and 100 routes each
holding a warm container, then with 1,000 more registered routes (`min_warm: 0`).

    python -m benchmarks.scale [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Callable

import aiohttp

from benchmarks.common import executor_server, machine, put_json, summary, table, write_result
from benchmarks.hot import closed_loop

IMAGE = "executor-bench/aiohttp-hello"
BODY = b'{"name": "bench"}'


def executor_pid(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    found = subprocess.run(
        ["pgrep", "-f", f"serve --port {port}"], capture_output=True, text=True, check=True
    )
    return int(found.stdout.split()[0])


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def idle_containers(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("executor_pool_containers{") and 'state="idle"' in line
    )


async def measure(url: str, warm_counts: list[int], registered: int, seconds: float, progress):
    pid = executor_pid(url)
    rows: list[dict] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def warm_p50(routes: int) -> dict:
            async def send(i: int) -> None:
                async with session.post(f"{url}/r/scale/w{i % routes:04d}", data=BODY) as r:
                    await r.read()
                assert r.status == 200 and r.headers["Executor-Start"] == "warm", r.headers

            await closed_loop(send, 1, 0.3)  # warm-up
            latencies, _ = await closed_loop(send, 1, seconds)
            return summary(latencies)

        made = 0
        for count in warm_counts:
            began = time.perf_counter()
            for i in range(made, count):
                put_json(f"{url}/v1/apps/scale/routes/w{i:04d}",
                         {"route": {"image": IMAGE, "format": "http-stream", "memory": 64,
                                    "min_warm": 1, "max_containers": 1}})  # fmt: skip
            made = count
            for _ in range(1500):  # up to 5 minutes for the pools to fill
                if await idle_containers(session, url) >= count:
                    break
                await asyncio.sleep(0.2)
            ready = time.perf_counter() - began
            rows.append({"warm_routes": count, "registered_routes": count,
                         "ready_s": ready, "rss_mib": rss_mib(pid),
                         **await warm_p50(count)})  # fmt: skip
            progress()
        began = time.perf_counter()
        for i in range(registered):
            cold_pool = {"image": IMAGE, "format": "http-stream", "min_warm": 0}
            put_json(f"{url}/v1/apps/scale/routes/r{i:04d}", {"route": cold_pool})
        rows.append({"warm_routes": made, "registered_routes": made + registered,
                     "ready_s": time.perf_counter() - began, "rss_mib": rss_mib(pid),
                     **await warm_p50(made)})  # fmt: skip
        progress()
    return rows


def run(args: argparse.Namespace, progress: Callable[[], None] = lambda: None) -> dict:
    with executor_server(EXECUTOR_ACCESS_LOG="false", EXECUTOR_CALL_RECORDS="true") as url:
        rows = asyncio.run(measure(url, args.warm, args.registered, args.seconds, progress))
    return {"benchmark": "scale", "machine": machine(), "settings": vars(args), "results": rows}


def report(result: dict) -> str:
    rows = [["warm routes", "registered", "p50 ms", "p99 ms", "executor RSS MiB", "set-up s"]]
    for r in result["results"]:
        cells = [f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['rss_mib']:.1f}"]
        rows.append([str(r["warm_routes"]), str(r["registered_routes"]), *cells,
                     f"{r['ready_s']:.1f}"])  # fmt: skip
    return table(rows)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--warm", default="1,10,100", help="routes with a warm container, in steps")
    p.add_argument("--registered", type=int, default=1000, help="routes with min_warm 0 added")
    p.add_argument("--seconds", type=float, default=2.0, help="warm calls measured per step")
    p.add_argument("--quick", action="store_true")
    return p


def settings(argv: list[str] | None = None, quick: bool = False) -> argparse.Namespace:
    args = parser().parse_args(argv or [])
    args.warm = [int(n) for n in args.warm.split(",")]
    if args.quick or quick:
        args.quick = True
        args.warm, args.registered, args.seconds = [1, 5], 50, 1.0
    return args


def steps(args: argparse.Namespace) -> int:
    return len(args.warm) + 1


def main() -> None:
    args = settings(sys.argv[1:])
    result = run(args)
    print(report(result))
    print(f"written: {write_result('scale', result)}")


if __name__ == "__main__":
    main()
