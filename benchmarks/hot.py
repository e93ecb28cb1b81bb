"""Warm calls through the executor against their floor and ceiling, plus fresh and cold.

Warm, at each concurrency (closed loop: each client sends its next call when the last
one is answered), five targets in interleaved blocks so drift hits all alike:
- executor: POST /r/bench/warm to an `executor serve` process on loopback; the route's
  pool holds N warm containers (--containers, 4) of an aiohttp http-stream hello
  (benchmarks/functions/aiohttp-hello: the fastest Python function server here);
- executor-unobserved: a second executor, the same but with metrics and call records
  off: what they cost is the median over blocks of (executor p50 - this p50);
- direct: the floor, POST /call straight to the same containers' unix sockets, with the
  headers the executor sends (client i on container i mod N);
- aiohttp-proxy: the yardstick to beat, a minimal aiohttp proxy to the same sockets;
- bare-aiohttp: the ceiling for a Python server here, a bare aiohttp hello on loopback.
The executor's overhead is the median, over blocks, of (executor p50 - direct p50).

Then open loop (calls sent at a fixed rate whatever the answers, each latency measured
from its intended send time, so queueing is not hidden): executor, direct and bare at
fractions of the executor's best closed-loop rate. The start kinds are benchmarks/starts.py.

    python -m benchmarks.hot [--block 1.0] [--rounds 8] [--concurrency 1,8,32] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import aiohttp

from benchmarks.common import (
    executor_server,
    free_port,
    machine,
    put_json,
    summary,
    table,
    write_result,
)

WARM_IMAGE = "executor-bench/aiohttp-hello"
BODY = b'{"name": "bench"}'
OPEN_LOOP_FRACTIONS = (0.25, 0.5, 0.75)
OPEN_LOOP_TARGETS = ("executor", "direct", "bare-aiohttp")
BARE_SERVER = """
import sys
from aiohttp import web
async def hello(request):
    await request.read()
    return web.json_response({"message": "Hello bench!"})
app = web.Application()
app.router.add_post("/hello", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

# The issue's yardstick: a minimal aiohttp proxy to the containers' sockets (one client
# session per socket, the caller's body passed on with the Fn headers, the answer back).
PROXY_SERVER = """
import itertools, sys
import aiohttp
from aiohttp import web
HEADERS = {"Fn-Call-Id": "01BENCH", "Fn-Deadline": "2099-01-01T00:00:00.000Z",
           "Fn-Intent": "httprequest", "Fn-Http-Method": "POST",
           "Fn-Http-Request-Url": "http://127.0.0.1/r/bench/warm"}
sessions = []
turn = itertools.count()
async def start(app):
    for path in sys.argv[2:]:
        sessions.append(aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)))
async def stop(app):
    for session in sessions:
        await session.close()
async def proxy(request):
    body = await request.read()
    session = sessions[next(turn) % len(sessions)]
    async with session.post("http://localhost/call", data=body, headers=HEADERS) as r:
        answer = await r.read()
    return web.Response(body=answer, status=int(r.headers.get("Fn-Http-Status", "200")))
app = web.Application()
app.on_startup.append(start)
app.on_cleanup.append(stop)
app.router.add_post("/hello", proxy)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

Send = Callable[[int], Awaitable[None]]


async def closed_loop(send: Send, concurrency: int, seconds: float) -> tuple[list[float], float]:
    """`concurrency` clients calling back to back for `seconds`: latencies and calls/s."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(i: int) -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await send(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return latencies, len(latencies) / (time.perf_counter() - started)


async def open_loop(send: Send, rate: float, seconds: float) -> tuple[list[float], float]:
    """Calls sent at `rate` a second for `seconds`, each at its intended time whether or
    not the earlier ones were answered: latencies from the intended send time (a call
    that could not be sent on time counts its delay), and the calls/s answered."""
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    begin = time.perf_counter() + 0.01
    count = int(rate * seconds)

    async def one(i: int, intended: float) -> None:
        await send(i)
        latencies.append(time.perf_counter() - intended)

    tasks = []
    for i in range(count):
        intended = begin + i / rate
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i, intended)))
    await asyncio.gather(*tasks)
    return latencies, len(latencies) / (time.perf_counter() - begin)


def socket_paths(url: str, route: str) -> list[str]:
    """The sockets of the route's containers in the executor at `url`."""
    with urllib.request.urlopen(f"{url}/") as response:
        instance = json.loads(response.read())["instance"]
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=executor.instance={instance}",
         "--filter", f"label=executor.route={route}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    paths = []
    for cid in ids:
        mounts = subprocess.run(
            ["docker", "inspect", "-f", "{{json .HostConfig.Mounts}}", cid],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        paths.append(json.loads(mounts)[0]["Source"] + "/lsnr.sock")
    return paths


def direct_headers() -> dict[str, str]:
    # What the executor sends with a call (executor/formats/http_stream.py).
    return {
        "Fn-Call-Id": "01BENCH",
        "Fn-Deadline": "2099-01-01T00:00:00.000Z",
        "Fn-Intent": "httprequest",
        "Fn-Http-Method": "POST",
        "Fn-Http-Request-Url": "http://127.0.0.1/r/bench/warm",
        "Content-Type": "application/json",
    }


async def wait_pool(session: aiohttp.ClientSession, url: str, idle: int) -> None:
    for _ in range(600):
        async with session.get(url) as response:
            pool = (await response.json())["route"]["pool"]
        if pool["idle"] >= idle:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"pool never reached {idle} idle containers: {pool}")


async def warm(
    url: str, unobserved_url: str, args: argparse.Namespace, progress: Callable[[], None]
) -> dict:
    for base in (url, unobserved_url):
        put_json(
            f"{base}/v1/apps/bench/routes/warm",
            {"route": {"image": WARM_IMAGE, "format": "http-stream", "min_warm": args.containers,
                       "max_containers": args.containers, "idle_timeout": 3600}},
        )  # fmt: skip
    bare_port, proxy_port = free_port(), free_port()
    bare = python_server(BARE_SERVER, bare_port)
    proxy = None
    results: dict = {}
    try:
        async with AsyncExitStack() as stack:
            session = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            )
            for base in (url, unobserved_url):
                await wait_pool(session, f"{base}/v1/apps/bench/routes/warm", args.containers)
            sockets = socket_paths(url, "/warm")
            assert len(sockets) == args.containers, sockets
            proxy = python_server(PROXY_SERVER, proxy_port, *sockets)
            direct = [
                await stack.enter_async_context(
                    aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=p, limit=0))
                )
                for p in sockets
            ]
            headers = direct_headers()
            for port in (bare_port, proxy_port):  # both answer before the clock starts
                await wait_answer(session, f"http://127.0.0.1:{port}/hello")

            def post_to(target: str) -> Send:
                async def send(i: int) -> None:
                    async with session.post(target, data=BODY) as response:
                        await response.read()
                    assert response.status == 200, response.status

                return send

            async def direct_call(i: int) -> None:
                async with direct[i % len(direct)].post(
                    "http://localhost/call", data=BODY, headers=headers
                ) as response:
                    await response.read()
                assert response.status == 200, response.status

            targets = {
                "executor": post_to(f"{url}/r/bench/warm"),
                "executor-unobserved": post_to(f"{unobserved_url}/r/bench/warm"),
                "direct": direct_call,
                "aiohttp-proxy": post_to(f"http://127.0.0.1:{proxy_port}/hello"),
                "bare-aiohttp": post_to(f"http://127.0.0.1:{bare_port}/hello"),
            }
            closed: dict = {}
            for concurrency in args.concurrency:
                for send in targets.values():  # warm-up
                    await closed_loop(send, concurrency, 0.2)
                blocks: dict[str, list[tuple[list[float], float]]] = {t: [] for t in targets}
                for _ in range(args.rounds):
                    order = list(targets)
                    random.shuffle(order)
                    for name in order:
                        blocks[name].append(
                            await closed_loop(targets[name], concurrency, args.block)
                        )
                    progress()
                closed[str(concurrency)] = summarise(blocks)
            # Open loop at fractions of the executor's best closed-loop rate.
            best = max(c["executor"]["calls_per_s"] for c in closed.values())
            opened: dict = {}
            for fraction in OPEN_LOOP_FRACTIONS:
                rate = best * fraction
                opened[f"{fraction:.2f}"] = by_target = {"rate_per_s": rate}
                for name in random.sample(OPEN_LOOP_TARGETS, len(OPEN_LOOP_TARGETS)):
                    latencies, answered = await open_loop(targets[name], rate, args.open_seconds)
                    by_target[name] = summary(latencies) | {"calls_per_s": answered}
                progress()
            results = {"closed_loop": closed, "open_loop": opened}
    finally:
        for process in (bare, proxy):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
    return results


def python_server(script: str, port: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, str(port), *args])


async def wait_answer(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(100):
        try:
            async with session.post(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def summarise(blocks: dict[str, list[tuple[list[float], float]]]) -> dict:
    out: dict = {}
    for name, runs in blocks.items():
        latencies = [value for run, _ in runs for value in run]
        out[name] = {
            **summary(latencies),
            "calls_per_s": statistics.median(rate for _, rate in runs),
            "block_calls_per_s": [round(rate) for _, rate in runs],
            "block_p50_ms": [summary(run)["p50_ms"] for run, _ in runs],
        }
    differences = [
        e - d
        for e, d in zip(out["executor"]["block_p50_ms"], out["direct"]["block_p50_ms"], strict=True)
    ]
    out["overhead_p50_ms"] = statistics.median(differences)
    proxy_differences = [
        p - d
        for p, d in zip(
            out["aiohttp-proxy"]["block_p50_ms"], out["direct"]["block_p50_ms"], strict=True
        )
    ]
    out["proxy_overhead_p50_ms"] = statistics.median(proxy_differences)
    out["throughput_vs_bare"] = out["executor"]["calls_per_s"] / out["bare-aiohttp"]["calls_per_s"]
    # What metrics and call records cost: the same executor with both off.
    observe_differences = [
        e - u
        for e, u in zip(
            out["executor"]["block_p50_ms"],
            out["executor-unobserved"]["block_p50_ms"],
            strict=True,
        )
    ]
    out["observe_cost_p50_ms"] = statistics.median(observe_differences)
    out["observe_cost_share"] = out["observe_cost_p50_ms"] / statistics.median(
        out["executor-unobserved"]["block_p50_ms"]
    )
    out["observe_throughput_ratio"] = (
        out["executor"]["calls_per_s"] / out["executor-unobserved"]["calls_per_s"]
    )
    return out


def report(result: dict) -> str:
    rows = [["concurrency", "target", "n", "p50 ms", "p90 ms", "p99 ms", "calls/s"]]
    closed = result["warm"]["closed_loop"]
    for concurrency, by_target in closed.items():
        for name in ("executor", "executor-unobserved", "direct", "aiohttp-proxy", "bare-aiohttp"):
            s = by_target[name]
            cells = [s["p50_ms"], s["p90_ms"], s["p99_ms"]]
            rows.append([concurrency, name, str(s["n"]), *(f"{v:.3f}" for v in cells),
                         f"{s['calls_per_s']:.0f}"])  # fmt: skip
    lines = ["closed loop:", table(rows), ""]
    for concurrency, by_target in closed.items():
        lines.append(
            f"concurrency {concurrency}: executor - direct p50 = "
            f"{by_target['overhead_p50_ms']:.3f} ms, aiohttp-proxy - direct = "
            f"{by_target['proxy_overhead_p50_ms']:.3f} ms (medians of per-block differences); "
            f"executor calls/s = {by_target['throughput_vs_bare']:.0%} of bare aiohttp; "
            f"metrics + call records cost {by_target['observe_cost_p50_ms']:.3f} ms "
            f"({by_target['observe_cost_share']:+.1%} of the p50 without them), calls/s "
            f"{by_target['observe_throughput_ratio']:.0%} of without"
        )
    rows = [["rate/s", "target", "n", "p50 ms", "p90 ms", "p99 ms"]]
    for by_target in result["warm"]["open_loop"].values():
        for name in OPEN_LOOP_TARGETS:
            s = by_target[name]
            cells = [f"{s[k]:.3f}" for k in ("p50_ms", "p90_ms", "p99_ms")]
            rows.append([f"{by_target['rate_per_s']:.0f}", name, str(s["n"]), *cells])
    lines += ["", "open loop (latency from the intended send time):", table(rows)]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--block", type=float, default=1.0, help="seconds per block")
    p.add_argument("--rounds", type=int, default=3, help="blocks per target")
    p.add_argument("--concurrency", default="1,8,32,64")
    p.add_argument("--open-seconds", type=float, default=2.0, help="seconds per open-loop run")
    p.add_argument(
        "--containers", type=int, default=4, help="warm containers (min_warm = max_containers)"
    )
    p.add_argument("--quick", action="store_true", help="a smoke run (a few seconds)")
    return p


def settings(argv: list[str] | None = None, quick: bool = False) -> argparse.Namespace:
    args = parser().parse_args(argv or [])
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.quick or quick:
        args.quick = True
        args.block, args.rounds, args.open_seconds, args.concurrency = 0.3, 2, 0.5, [1, 8]
    return args


def steps(args: argparse.Namespace) -> int:
    """How many times `run` calls `progress`."""
    return len(args.concurrency) * args.rounds + len(OPEN_LOOP_FRACTIONS)


def run(args: argparse.Namespace, progress: Callable[[], None] = lambda: None) -> dict:
    # Both without the access log; the second without metrics and call records either.
    quiet = {"EXECUTOR_ACCESS_LOG": "false"}
    off = {**quiet, "EXECUTOR_METRICS": "false", "EXECUTOR_CALL_RECORDS": "false"}
    with executor_server(**quiet) as url, executor_server(**off) as unobserved_url:
        warm_result = asyncio.run(warm(url, unobserved_url, args, progress))
    return {
        "benchmark": "hot",
        "machine": machine(),
        "settings": {k: v for k, v in vars(args).items()},
        "warm": warm_result,
    }


def main() -> None:
    args = settings(sys.argv[1:])
    result = run(args)
    print(report(result))
    print(f"\nwritten: {write_result('hot', result)}")


if __name__ == "__main__":
    main()
