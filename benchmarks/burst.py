"""Bursts from zero: many calls at once to a hot route with no container (its pool measured
by one earlier call, then left to empty), with `max_containers` 8 and 1, for a function that
answers at once and one that works 500 ms a call (benchmarks/functions/aiohttp-hello,
X-Sleep). With `--baseline REF`, the executor at that git commit takes the same bursts in
the same run, interleaved (a git worktree on PYTHONPATH): how starts that follow the
expected drain (executor/pool/policy.py `_uncovered`) compare with a start per waiting call.

    python -m benchmarks.burst [--rounds 3] [--baseline REF] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from benchmarks import common
from benchmarks.common import ROOT, executor_server, machine, put_json, summary, table, write_result
from benchmarks.starts import wait_empty

IMAGE = "executor-bench/aiohttp-hello"
# name -> (max_containers, seconds of work a call, calls in the burst)
BURSTS = {
    "fast, max 8": (8, 0.0, 200),
    "fast, max 1": (1, 0.0, 200),
    "slow, max 8": (8, 0.5, 64),
}


def route_path(name: str) -> str:
    return "/" + name.replace(", ", "-").replace(" ", "")


def deploy(url: str) -> None:
    for name, (max_containers, _, _) in BURSTS.items():
        route = {
            "image": IMAGE,
            "format": "http-stream",
            "min_warm": 0,
            "max_containers": max_containers,
            "idle_timeout": 1,
        }
        put_json(f"{url}/v1/apps/burst/routes{route_path(name)}", {"route": route})


async def burst(session: aiohttp.ClientSession, url: str, name: str) -> dict:
    _, work, calls = BURSTS[name]
    path = route_path(name)
    headers = {"X-Sleep": str(work)} if work else {}

    async def one() -> float:
        began = time.perf_counter()
        async with session.post(f"{url}/r/burst{path}", headers=headers) as response:
            await response.read()
            assert response.status == 200, (response.status, await response.text())
        return time.perf_counter() - began

    await wait_empty(session, f"{url}/v1/apps/burst/routes{path}")
    began = time.perf_counter()
    latencies = await asyncio.gather(*(one() for _ in range(calls)))
    return {"latencies": latencies, "makespan_s": time.perf_counter() - began}


@contextlib.contextmanager
def baseline_tree(ref: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="executor-baseline-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), ref],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
                       capture_output=True)  # fmt: skip


async def measure(urls: dict[str, str], rounds: int) -> dict:
    samples: dict[str, dict[str, list]] = {who: {name: [] for name in BURSTS} for who in urls}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        for url in urls.values():  # each pool measures one call first
            for name in BURSTS:
                async with session.post(f"{url}/r/burst{route_path(name)}") as response:
                    await response.read()
        for _ in range(rounds):
            order = [(who, name) for who in urls for name in BURSTS]
            random.shuffle(order)
            for who, name in order:
                samples[who][name].append(await burst(session, urls[who], name))
    results: dict[str, dict] = {}
    for who, by_name in samples.items():
        results[who] = {}
        for name, runs in by_name.items():
            latencies = [x for run in runs for x in run["latencies"]]
            makespans = sorted(run["makespan_s"] for run in runs)
            results[who][name] = summary(latencies) | {
                "makespan_median_s": makespans[len(makespans) // 2]
            }
    return results


def report(results: dict) -> str:
    rows = [["executor", "burst", "p50 ms", "p99 ms", "makespan s"]]
    for who, by_name in results.items():
        for name, r in by_name.items():
            rows.append([who, name, f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
                         f"{r['makespan_median_s']:.2f}"])  # fmt: skip
    lines = [table(rows), ""]
    for who, by_name in results.items():
        ratio = by_name["fast, max 8"]["p50_ms"] / by_name["fast, max 1"]["p50_ms"]
        lines.append(f"{who}: fast burst p50, max 8 / max 1: x{ratio:.2f}")
    if len(results) == 2:
        (a, ra), (b, rb) = results.items()
        slow = ra["slow, max 8"]["makespan_median_s"] / rb["slow, max 8"]["makespan_median_s"]
        lines.append(f"slow burst makespan, {a} / {b}: x{slow:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="a git commit to compare with, in the same run")
    parser.add_argument("--quick", action="store_true", help="one round of small bursts")
    parser.add_argument("--out", type=Path, default=common.RESULTS, help="where results go")
    args = parser.parse_args()
    common.RESULTS = args.out
    if args.quick:
        args.rounds = 1
        for name, (max_containers, work, calls) in BURSTS.items():
            BURSTS[name] = (max_containers, work and 0.1, min(calls, 16))
    with contextlib.ExitStack() as stack:
        urls = {"this": stack.enter_context(executor_server(EXECUTOR_ACCESS_LOG="false"))}
        if args.baseline:
            tree = stack.enter_context(baseline_tree(args.baseline))
            env = {"EXECUTOR_ACCESS_LOG": "false", "PYTHONPATH": str(tree)}
            urls[f"baseline {args.baseline}"] = stack.enter_context(executor_server(**env))
        for url in urls.values():
            deploy(url)
        results = asyncio.run(measure(urls, args.rounds))
    print(report(results))
    result = {"benchmark": "burst", "quick": args.quick, "machine": machine(),
              "rounds": args.rounds, "bursts": BURSTS}  # fmt: skip
    print(f"written: {write_result('burst', result | {'results': results})}")


if __name__ == "__main__":
    main()
