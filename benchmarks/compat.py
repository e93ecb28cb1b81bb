"""IronFunctions' shapes on the warm path: its `http` hot format beside `http-stream`, and
route parameters beside exact paths among 1,000 routes.

Two `executor serve` processes on loopback, measured by one closed loop at concurrency 1
in interleaved blocks (so drift hits all alike):
- formats: one executor with two warm routes, /go (examples/go-http: Go, format `http`,
  calls over the container's stdin and stdout) and /stream (the aiohttp http-stream hello
  of benchmarks/hot.py, calls over its unix socket): what each format costs per call;
- routing: a second executor with 1,000 routes in one app, half of them with `:name`
  segments (the other 998 are `default` routes never called), where /users/:id (the same
  Go function) is called as /users/42, against /exact (the same function, an exact path)
  on the same executor: what matching a parameter among many costs over a dict read.
Per target: p50/p99 over all its blocks, and the ratio of medians.

    python -m benchmarks.compat [--block 1.0] [--rounds 6] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import aiohttp

from benchmarks import common
from benchmarks.common import executor_server, machine, put_json, summary, table, write_result

GO_HTTP = "executor/go-http"
STREAM = "executor-bench/aiohttp-hello"
ROUTES = 1000
BODY = b'{"name": "bench"}'


def register(url: str, app: str, path: str, route: dict) -> None:
    put_json(f"{url}/v1/apps/{app}/routes{path}", {"route": route})


def many_routes(url: str, count: int) -> None:
    """`count` routes in app `many`, half with parameters, all but /users/:id cold."""
    put_json(f"{url}/v1/apps", {"app": {"name": "many"}}, method="POST")
    for i in range(count - 2):
        path = f"/r{i}/:id/items" if i % 2 else f"/r{i}/items"
        register(url, "many", path, {"image": "executor/hello", "memory": 16})
    for path in ("/users/:id", "/exact"):
        register(url, "many", path, {"image": GO_HTTP, "format": "http", "memory": 32})


async def block(session: aiohttp.ClientSession, url: str, seconds: float) -> list[float]:
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        began = time.perf_counter()
        async with session.post(url, data=BODY) as response:
            await response.read()
            assert response.status == 200, response.status
        latencies.append(time.perf_counter() - began)
    return latencies


async def measure(targets: dict[str, str], args: argparse.Namespace) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in targets}
    medians: dict[str, list[float]] = {name: [] for name in targets}
    async with aiohttp.ClientSession() as session:
        for url in targets.values():  # warm up: containers up, connections open
            await block(session, url, 0.3)
        for _ in range(args.rounds):
            for name, url in targets.items():
                latencies = await block(session, url, args.block)
                samples[name] += latencies
                medians[name].append(statistics.median(latencies))
    return {"samples": samples, "block_medians": medians}


def run(args: argparse.Namespace) -> dict:
    with ExitStack() as stack:
        plain = stack.enter_context(executor_server())
        many = stack.enter_context(executor_server())
        put_json(f"{plain}/v1/apps", {"app": {"name": "bench"}}, method="POST")
        register(plain, "bench", "/go", {"image": GO_HTTP, "format": "http", "memory": 32})
        register(plain, "bench", "/stream", {"image": STREAM, "format": "http-stream"})
        many_routes(many, args.routes)
        targets = {
            "http (Go, stdin/stdout)": f"{plain}/r/bench/go",
            "http-stream (aiohttp, socket)": f"{plain}/r/bench/stream",
            f"http, /users/:id among {args.routes} routes": f"{many}/r/many/users/42",
            f"http, /exact among {args.routes} routes": f"{many}/r/many/exact",
        }
        measured = asyncio.run(measure(targets, args))
    rows = [["target", "n", "p50 ms", "p99 ms"]]
    results = {}
    for name, latencies in measured["samples"].items():
        s = summary(latencies)
        results[name] = s
        rows.append([name, str(s["n"]), f"{s['p50_ms']:.3f}", f"{s['p99_ms']:.3f}"])
    names = list(targets)
    ratio_formats = results[names[0]]["p50_ms"] / results[names[1]]["p50_ms"]
    ratio_routing = results[names[2]]["p50_ms"] / results[names[3]]["p50_ms"]
    print(table(rows))
    print(
        f"\nhttp / http-stream p50: x{ratio_formats:.2f}; among {args.routes} routes, a "
        f"parameter / an exact path: x{ratio_routing:.2f}"
    )
    data = {
        "benchmark": "compat",
        "quick": args.quick,
        "machine": machine(),
        "settings": {"block_s": args.block, "rounds": args.rounds, "routes": args.routes},
        "results": results,
        "ratios": {"http_over_http_stream": ratio_formats, "parameter_over_exact": ratio_routing},
        "block_medians_ms": {
            name: [m * 1000 for m in values] for name, values in measured["block_medians"].items()
        },
    }
    print(f"written: {write_result('compat', data)}")
    return data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--block", type=float, default=1.0, help="seconds per block")
    p.add_argument("--rounds", type=int, default=6, help="blocks per target")
    p.add_argument("--routes", type=int, default=ROUTES)
    p.add_argument("--quick", action="store_true", help="a smoke run (a few seconds)")
    p.add_argument("--out", type=Path, default=common.RESULTS)
    args = p.parse_args()
    if args.quick:
        args.block, args.rounds, args.routes = 0.2, 2, 20
    common.RESULTS = args.out
    run(args)


if __name__ == "__main__":
    sys.exit(main())
