"""Async drain: how long a burst of async calls takes to be accepted (202, each committed)
and to run on warm containers, against the same calls made sync through the same number
of warm containers (the baseline, measured in the same run).

    python -m benchmarks.drain [--calls 500] [--containers 4] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable

import aiohttp

from benchmarks.common import executor_server, machine, put_json, table, write_result

IMAGE = "executor-bench/aiohttp-hello"
BODY = b'{"name": "bench"}'


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples that carry these labels."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def measure(url: str, calls: int, containers: int) -> dict:
    for path, kind in (("sync", "sync"), ("drain", "async")):
        put_json(f"{url}/v1/apps/bench/routes/{path}",
                 {"route": {"image": IMAGE, "format": "http-stream", "type": kind, "memory": 64,
                            "min_warm": containers, "max_containers": containers}})  # fmt: skip
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(url, connector=connector) as http:

        async def scrape() -> str:
            async with http.get("/metrics") as r:
                return await r.text()

        deadline = time.monotonic() + 120
        while metric(await scrape(), "executor_pool_containers", state="idle") < 2 * containers:
            if time.monotonic() > deadline:
                raise RuntimeError("the warm containers never came up")
            await asyncio.sleep(0.1)

        async def send_all(path: str, status: int, at_once: int) -> float:
            """Seconds to send `calls` calls, `at_once` in flight, each answered `status`."""
            gate = asyncio.Semaphore(at_once)

            async def send() -> None:
                async with gate, http.post(path, data=BODY) as r:
                    await r.read()
                    assert r.status == status, r.status

            began = time.perf_counter()
            await asyncio.gather(*(send() for _ in range(calls)))
            return time.perf_counter() - began

        # The baseline: the same calls made sync, as many at once as there are containers.
        sync_s = await send_all("/r/bench/sync", 200, containers)
        began = time.perf_counter()
        accepted_s = await send_all("/r/bench/drain", 202, 32)
        while True:
            text = await scrape()
            if metric(text, "executor_async_calls") == 0:
                break
            await asyncio.sleep(0.005)
        drained_s = time.perf_counter() - began
        warm = metric(text, "executor_calls_total", route="/drain", start="warm", status="200")
    return {
        "calls": calls,
        "containers": containers,
        "accepted_s": accepted_s,
        "drained_s": drained_s,
        "warm_calls": int(warm),
        "sync_baseline_s": sync_s,
        "ratio_to_sync": drained_s / sync_s,
    }


def run(args: argparse.Namespace, progress: Callable[[], None] = lambda: None) -> dict:
    # The default flush interval: async steps commit when they are waited for, not on it.
    with executor_server(EXECUTOR_ACCESS_LOG="false") as url:
        result = asyncio.run(measure(url, args.calls, args.containers))
    progress()
    return {"benchmark": "drain", "machine": machine(), "settings": vars(args), "results": result}


def report(result: dict) -> str:
    r = result["results"]
    rows = [
        ["", "calls", "seconds", "calls/s", "vs sync"],
        ["async: accepted (202)", str(r["calls"]), f"{r['accepted_s']:.2f}",
         f"{r['calls'] / r['accepted_s']:.0f}", ""],
        ["async: all ended", str(r["calls"]), f"{r['drained_s']:.2f}",
         f"{r['calls'] / r['drained_s']:.0f}", f"{r['ratio_to_sync']:.2f}x"],
        [f"sync, {r['containers']} at once", str(r["calls"]), f"{r['sync_baseline_s']:.2f}",
         f"{r['calls'] / r['sync_baseline_s']:.0f}", "1.00x"],
    ]  # fmt: skip
    return table(rows) + f"\n{r['warm_calls']} of {r['calls']} async calls ran warm"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--containers", type=int, default=4, help="warm containers of the route")
    p.add_argument("--quick", action="store_true")
    return p


def settings(argv: list[str] | None = None, quick: bool = False) -> argparse.Namespace:
    args = parser().parse_args(argv or [])
    if args.quick or quick:
        args.quick = True
        args.calls = 100
    return args


def steps(args: argparse.Namespace) -> int:
    return 1


def main() -> None:
    args = settings(sys.argv[1:])
    result = run(args)
    print(report(result))
    print(f"written: {write_result('drain', result)}")


if __name__ == "__main__":
    main()
