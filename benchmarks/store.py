"""The shared store (PostgreSQL) against the embedded one (SQLite), in the same run, on a
throw-away PostgreSQL cluster (tests/postgres.py: Debian's postgresql, loopback):

- warm calls (a hot route, 4 containers), closed loop at concurrency 1 and 32, blocks
  interleaved between an executor whose call records go to SQLite and one whose records
  go to PostgreSQL: p50 and calls/s, and their ratios;
- async calls: 202s and the drain of a burst (benchmarks/drain.py) on one node of each,
  on three nodes sharing PostgreSQL, and (with `--baseline REF`) on one SQLite node of
  the executor at that commit, rounds interleaved;
- route propagation: a route created through node A, then read back from node B (its
  route API answers from memory: the time until B knows the route), 20 times.

    python -m benchmarks.store [--block 1.0] [--rounds 3] [--calls 500] [--baseline REF]
                               [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import time
from pathlib import Path

import aiohttp
import orjson

from benchmarks import common, drain
from benchmarks.burst import baseline_tree
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


async def drain_fleet(urls: list[str], calls: int, containers: int) -> dict:
    """drain.measure's burst, sent round robin to nodes sharing one store."""
    route = {"image": IMAGE, "format": "http-stream", "type": "async", "memory": 64,
             "min_warm": containers, "max_containers": containers}  # fmt: skip
    put_json(f"{urls[0]}/v1/apps/bench/routes/drain", {"route": route})
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def scrape(url: str) -> str:
            async with http.get(f"{url}/metrics") as r:
                return await r.text()

        deadline = time.monotonic() + 120
        for url in urls:
            while drain.metric(await scrape(url), "executor_pool_containers", state="idle") < (
                containers
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the warm containers never came up")
                await asyncio.sleep(0.1)
        gate = asyncio.Semaphore(32)

        async def send(n: int) -> None:
            async with gate, http.post(f"{urls[n % len(urls)]}/r/bench/drain", data=BODY) as r:
                await r.read()
                assert r.status == 202, r.status

        began = time.perf_counter()
        await asyncio.gather(*(send(n) for n in range(calls)))
        accepted_s = time.perf_counter() - began
        while True:
            texts = [await scrape(url) for url in urls]
            ran = sum(drain.metric(t, "executor_calls_total", route="/drain") for t in texts)
            if ran >= calls:
                break
            await asyncio.sleep(0.005)
        drained_s = time.perf_counter() - began
    per_node = [int(drain.metric(t, "executor_calls_total", route="/drain")) for t in texts]
    return {"calls": calls, "accepted_s": accepted_s, "drained_s": drained_s, "runs": int(ran),
            "per_node": per_node}  # fmt: skip


async def accept_p50(url: str, n: int = 50) -> float:
    """p50 ms of one 202 at a time (a route with no container: only the commit counts)."""
    route = {"image": IMAGE, "format": "http-stream", "type": "async", "max_containers": 1}
    put_json(f"{url}/v1/apps/bench/routes/accept", {"route": route})
    latencies = []
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            began = time.perf_counter()
            async with http.post(f"{url}/r/bench/accept", data=BODY) as r:
                await r.read()
                assert r.status == 202, r.status
            latencies.append(time.perf_counter() - began)
    return summary(latencies)["p50_ms"]


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
        results["async"] = asynchronous(cluster, args)
    finally:
        cluster.remove()
    return results


def asynchronous(cluster: Cluster, args: argparse.Namespace) -> dict:
    quiet = {"EXECUTOR_ACCESS_LOG": "false"}
    with contextlib.ExitStack() as stack:
        setups = {"sqlite": {}, "postgres": {}, "postgres, 3 nodes": {}}
        if args.baseline:
            tree = stack.enter_context(baseline_tree(args.baseline))
            setups[f"sqlite at {args.baseline}"] = {"PYTHONPATH": str(tree)}
        runs: dict[str, list[dict]] = {name: [] for name in setups}
        for _ in range(args.rounds):
            for name in random.sample(list(setups), len(setups)):
                env = {**quiet, **setups[name]}
                if name.startswith("sqlite"):
                    with executor_server(**env) as url:
                        r = asyncio.run(drain.measure(url, args.calls, CONTAINERS))
                        r["accept_p50_ms"] = asyncio.run(accept_p50(url))
                elif name == "postgres":
                    with executor_server(cluster.url(cluster.create_database()), **env) as url:
                        r = asyncio.run(drain.measure(url, args.calls, CONTAINERS))
                        r["accept_p50_ms"] = asyncio.run(accept_p50(url))
                else:
                    db = cluster.url(cluster.create_database())
                    with (
                        executor_server(db, **env) as a,
                        executor_server(db, **env) as b,
                        executor_server(db, **env) as c,
                    ):
                        r = asyncio.run(drain_fleet([a, b, c], args.calls, CONTAINERS))
                        r["accept_p50_ms"] = asyncio.run(accept_p50(a))
                runs[name].append(r)
    return {
        name: {
            "calls": args.calls,
            "accepted_s": statistics.median(r["accepted_s"] for r in rs),
            "drained_s": statistics.median(r["drained_s"] for r in rs),
            "accept_p50_ms": statistics.median(r["accept_p50_ms"] for r in rs),
            "runs": rs,
        }
        for name, rs in runs.items()
    }


def report(results: dict) -> str:
    rows = [["warm calls", "sqlite p50 ms", "postgres p50 ms", "p50 ratio", "sqlite calls/s",
             "postgres calls/s", "rate ratio"]]  # fmt: skip
    for concurrency, by in results["warm"].items():
        rows.append([f"concurrency {concurrency}", f"{by['sqlite']['p50_ms']:.3f}",
                     f"{by['postgres']['p50_ms']:.3f}", f"{by['p50_ratio']:.2f}",
                     f"{by['sqlite']['calls_per_s']:.0f}", f"{by['postgres']['calls_per_s']:.0f}",
                     f"{by['rate_ratio']:.2f}"])  # fmt: skip
    drains = [["async calls (medians)", "calls", "202 p50 ms", "all accepted s",
               "all ended s", "vs sqlite"]]  # fmt: skip
    base = results["async"]["sqlite"]["drained_s"]
    for name, r in results["async"].items():
        drains.append([name, str(r["calls"]), f"{r['accept_p50_ms']:.2f}",
                       f"{r['accepted_s']:.2f}", f"{r['drained_s']:.2f}",
                       f"{r['drained_s'] / base:.2f}x"])  # fmt: skip
    p = results["propagation"]
    spread = f"route propagation A -> B: p50 {p['p50_ms']:.1f} ms, max {p['max_ms']:.1f} ms"
    return "\n".join([table(rows), "", table(drains), "", f"{spread} ({p['n']} tries)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", type=float, default=1.0, help="seconds per block")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per store")
    parser.add_argument("--calls", type=int, default=500, help="async calls of the drain")
    parser.add_argument("--baseline", help="a git commit whose SQLite drain runs alongside")
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
