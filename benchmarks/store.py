"""The shared store (PostgreSQL) against the embedded one (SQLite), in the same run, on a
throw-away PostgreSQL cluster (tests/postgres.py: Debian's postgresql, loopback):

- warm calls (a hot route, 4 containers), closed loop at concurrency 1 and 32, blocks
  interleaved between an executor whose call records go to SQLite and one whose records
  go to PostgreSQL: p50 and calls/s, and their ratios;
- async calls: 202s and the drain of a burst (benchmarks/drain.py) on one node of each;
- route propagation: a route created through node A, then read back from node B (its
  route API answers from memory: the time until B knows the route), 20 times.

    python -m benchmarks.store [--block 1.0] [--rounds 3] [--calls 500] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path

import aiohttp
import orjson

from benchmarks import common, drain
from benchmarks.common import executor_server, machine, put_json, summary, table, write_result
from benchmarks.hot import closed_loop
from tests.postgres import Cluster, binaries

IMAGE = "executor-bench/aiohttp-hello"
BODY = b'{"name": "bench"}'
CONTAINERS = 4
PROPAGATION_TRIES = 20


async def warm(urls: dict[str, str], args: argparse.Namespace) -> dict:
    route = {"image": IMAGE, "format": "http-stream", "min_warm": CONTAINERS,
             "max_containers": CONTAINERS, "idle_timeout": 3600}  # fmt: skip
    for url in urls.values():
        put_json(f"{url}/v1/apps/store/routes/warm", {"route": route})
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for url in urls.values():
            await wait_idle(session, url, CONTAINERS)

        def post_to(url: str):
            async def send(i: int) -> None:
                async with session.post(f"{url}/r/store/warm", data=BODY) as response:
                    await response.read()
                assert response.status == 200, response.status

            return send

        sends = {name: post_to(url) for name, url in urls.items()}
        out: dict = {}
        for concurrency in args.concurrency:
            for send in sends.values():
                await closed_loop(send, concurrency, 0.2)  # warm-up
            blocks: dict[str, list[tuple[list[float], float]]] = {name: [] for name in sends}
            for _ in range(args.rounds):
                for name in random.sample(list(sends), len(sends)):
                    blocks[name].append(await closed_loop(sends[name], concurrency, args.block))
            by = {
                name: {
                    **summary([v for run, _ in runs for v in run]),
                    "calls_per_s": statistics.median(rate for _, rate in runs),
                }
                for name, runs in blocks.items()
            }
            by["p50_ratio"] = by["postgres"]["p50_ms"] / by["sqlite"]["p50_ms"]
            by["rate_ratio"] = by["postgres"]["calls_per_s"] / by["sqlite"]["calls_per_s"]
            out[str(concurrency)] = by
    return out


async def wait_idle(session: aiohttp.ClientSession, url: str, want: int) -> None:
    for _ in range(600):
        async with session.get(f"{url}/v1/apps/store/routes/warm") as response:
            if (await response.json())["route"]["pool"]["idle"] >= want:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url}: the warm containers never came up")


async def propagation(a: str, b: str, tries: int) -> dict:
    delays = []
    async with aiohttp.ClientSession() as session:
        for n in range(tries):
            path = f"/v1/apps/store/routes/p{n}"
            body = orjson.dumps({"route": {"image": "executor/hello"}})
            async with session.put(f"{a}{path}", data=body) as response:
                assert response.status in (200, 201), await response.text()
            began = time.perf_counter()
            while True:
                async with session.get(f"{b}{path}") as response:
                    if response.status == 200:
                        break
                if time.perf_counter() - began > 10:
                    raise RuntimeError(f"{path} never reached node B")
                await asyncio.sleep(0.001)
            delays.append(time.perf_counter() - began)
    return summary(delays) | {"max_ms": max(delays) * 1000}


def run(args: argparse.Namespace) -> dict:
    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    cluster = Cluster(bin_dir)
    quiet = {"EXECUTOR_ACCESS_LOG": "false"}
    try:
        cluster.init()
        cluster.start()
        db = cluster.url(cluster.create_database())
        with (
            executor_server(**quiet) as sqlite,
            executor_server(db, **quiet) as postgres,
            executor_server(db, **quiet) as second,
        ):
            urls = {"sqlite": sqlite, "postgres": postgres}
            results = {"warm": asyncio.run(warm(urls, args))}
            results["propagation"] = asyncio.run(propagation(postgres, second, args.tries))
        results["async"] = {}
        for name, where in (("sqlite", None), ("postgres", cluster.url(cluster.create_database()))):
            with executor_server(where, **quiet) as url:
                results["async"][name] = asyncio.run(drain.measure(url, args.calls, CONTAINERS))
    finally:
        cluster.remove()
    return results


def report(results: dict) -> str:
    rows = [["warm calls", "sqlite p50 ms", "postgres p50 ms", "p50 ratio", "sqlite calls/s",
             "postgres calls/s", "rate ratio"]]  # fmt: skip
    for concurrency, by in results["warm"].items():
        rows.append([f"concurrency {concurrency}", f"{by['sqlite']['p50_ms']:.3f}",
                     f"{by['postgres']['p50_ms']:.3f}", f"{by['p50_ratio']:.2f}",
                     f"{by['sqlite']['calls_per_s']:.0f}", f"{by['postgres']['calls_per_s']:.0f}",
                     f"{by['rate_ratio']:.2f}"])  # fmt: skip
    drains = [["async calls", "calls", "accepted s", "all ended s", "vs sync"]]
    for name, r in results["async"].items():
        drains.append([name, str(r["calls"]), f"{r['accepted_s']:.2f}", f"{r['drained_s']:.2f}",
                       f"{r['ratio_to_sync']:.2f}x"])  # fmt: skip
    p = results["propagation"]
    spread = f"route propagation A -> B: p50 {p['p50_ms']:.1f} ms, max {p['max_ms']:.1f} ms"
    return "\n".join([table(rows), "", table(drains), "", f"{spread} ({p['n']} tries)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", type=float, default=1.0, help="seconds per block")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per store")
    parser.add_argument("--calls", type=int, default=500, help="async calls of the drain")
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--out", type=Path, default=common.RESULTS, help="where results go")
    args = parser.parse_args()
    common.RESULTS = args.out
    args.concurrency, args.tries = [1, 32], PROPAGATION_TRIES
    if args.quick:
        args.block, args.rounds, args.calls, args.tries = 0.2, 1, 20, 3
    results = run(args)
    print(report(results))
    data = {"benchmark": "store", "quick": args.quick, "machine": machine(), "results": results}
    print(f"written: {write_result('store', data)}")


if __name__ == "__main__":
    main()
