"""Noisy neighbours: what a route that floods its output costs another route's warm calls.

One `executor serve`, two routes: /warm (an aiohttp http-stream hello, one warm
container) measured by a closed loop at concurrency 1, and a flooder. In interleaved
blocks, so drift hits all alike:
- quiet: nothing else runs (the baseline);
- hot-yes: an idle hot container prints `yes` without pause (executor-test/hot, "yes S");
- cold-stderr: a cold call floods its stderr until its timeout (executor-test/logflood).
Per condition: warm p50/p99 over all its blocks, the ratio of its p50 to quiet's, and the
executor's CPU seconds per second of block (from /proc). The output budget
(EXECUTOR_OUTPUT_BURST / _RATE) is what keeps the floods cheap: --budget off sets it
out of reach, to show what the floods cost without it.

    python -m benchmarks.flood [--block 2.0] [--rounds 4] [--budget on|off] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

from benchmarks import common
from benchmarks.common import executor_server, machine, put_json, summary, table, write_result

WARM_IMAGE = "executor-bench/aiohttp-hello"
CONDITIONS = ("quiet", "hot-yes", "cold-stderr")
TICKS = os.sysconf("SC_CLK_TCK")


def server_pid(port: int) -> int:
    """The pid of the `executor serve` listening on `port` (its command line says so)."""
    wanted = f"--port\0{port}\0".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    raise RuntimeError(f"no executor process on port {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def measure(url: str, args: argparse.Namespace) -> dict:
    pid = server_pid(int(url.rsplit(":", 1)[1]))
    put_json(f"{url}/v1/apps", {"app": {"name": "flood"}}, method="POST")
    put_json(f"{url}/v1/apps/flood/routes/warm", {"route": {
        "image": WARM_IMAGE, "format": "http-stream", "min_warm": 1,
        "max_containers": 1}})  # fmt: skip
    put_json(f"{url}/v1/apps/flood/routes/yes", {"route": {
        "image": "executor-test/hot", "format": "http-stream", "min_warm": 1,
        "max_containers": 1, "idle_timeout": 3600}})  # fmt: skip
    timeout = max(1, round(args.block + 1))
    put_json(f"{url}/v1/apps/flood/routes/stderr", {"route": {
        "image": "executor-test/logflood", "timeout": timeout}})  # fmt: skip
    latencies: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    cpu: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    async with aiohttp.ClientSession() as session:
        for _ in range(50):  # both hot containers up and warm
            async with session.post(f"{url}/r/flood/warm", data=b"{}") as r:
                await r.read()
            async with session.post(f"{url}/r/flood/yes", data=b"") as r:
                await r.read()
        for _ in range(args.rounds):
            for condition in CONDITIONS:
                noise = None
                if condition == "hot-yes":
                    async with session.post(
                        f"{url}/r/flood/yes", data=f"yes {args.block + 0.5}".encode()
                    ) as r:
                        await r.read()
                elif condition == "cold-stderr":
                    noise = asyncio.ensure_future(session.post(f"{url}/r/flood/stderr"))
                    await asyncio.sleep(0.5)  # its container started, flooding
                began_cpu, began = cpu_seconds(pid), time.perf_counter()
                while time.perf_counter() - began < args.block:
                    t0 = time.perf_counter()
                    async with session.post(f"{url}/r/flood/warm", data=b"{}") as r:
                        await r.read()
                    latencies[condition].append(time.perf_counter() - t0)
                cpu[condition].append((cpu_seconds(pid) - began_cpu) / args.block)
                if noise is not None:
                    (await noise).release()
                await asyncio.sleep(1.0)  # the flood ends before the next block
    quiet = summary(latencies["quiet"])["p50_ms"]
    rows = []
    for condition in CONDITIONS:
        s = summary(latencies[condition])
        rows.append({"condition": condition, **s, "p50_ratio": s["p50_ms"] / quiet,
                     "executor_cpu_per_s": statistics.median(cpu[condition])})  # fmt: skip
    return {"budget": args.budget, "block_s": args.block, "rounds": args.rounds, "rows": rows}


def run(args: argparse.Namespace) -> dict:
    env = {}
    if args.budget == "off":
        env = {"EXECUTOR_OUTPUT_BURST": str(1 << 40), "EXECUTOR_OUTPUT_RATE": str(1 << 40)}
    with executor_server(**env) as url:
        result = asyncio.run(measure(url, args))
    return {"machine": machine(), **result}


def render(result: dict) -> str:
    rows = [["condition", "warm p50 ms", "p99 ms", "p50 / quiet", "executor CPU s/s", "calls"]]
    for r in result["rows"]:
        rows.append([r["condition"], f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}",
                     f"{r['p50_ratio']:.2f}", f"{r['executor_cpu_per_s']:.2f}",
                     str(r["n"])])  # fmt: skip
    return table(rows)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--block", type=float, default=2.0, help="seconds per block")
    p.add_argument("--rounds", type=int, default=4, help="blocks per condition")
    p.add_argument("--budget", choices=("on", "off"), default="on")
    p.add_argument("--quick", action="store_true", help="a smoke run (a few seconds)")
    p.add_argument("--out", type=Path, default=common.RESULTS, help="where results go")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.quick:
        args.block, args.rounds = 0.5, 1
    common.RESULTS = args.out
    result = run(args)
    print(render(result))
    name = "flood" if args.budget == "on" else "flood-unbudgeted"
    print(f"written: {write_result(name, result)}", file=sys.stderr)


if __name__ == "__main__":
    main()
