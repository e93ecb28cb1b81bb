"""The per-request lag trade-off: what a warm pool saves in latency against what its idle
containers cost in memory, over a grid of `min_warm` x `idle_timeout` (and always cold).

A seeded day of calls shaped like the Azure Functions 2019 trace (benchmarks/workload.py)
is replayed through the pool policy in simulated time (benchmarks/simulate.py), each start
kind's latency drawn from benchmarks/starts.py's measurements. Then a check of the
simulator: a slice of the same workload is replayed live against a real executor for two
settings at once (two apps, the same calls), and the warm shares are compared.

    python -m benchmarks.tradeoff [--functions 200] [--live-minutes 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import aiohttp

from benchmarks import common
from benchmarks.common import executor_server, machine, put_json, table, write_result
from benchmarks.simulate import Outcome, Setting, StartLatencies, simulate
from benchmarks.workload import FunctionLoad, arrivals, exec_time, generate

IMAGE = "executor-bench/aiohttp-hello"
# Measured on this machine (benchmarks/starts.py, 2026-11-26), used when no starts.json.
DEFAULT_LATENCIES = StartLatencies(cold=[0.317, 0.30, 0.35], fresh=[0.334, 0.41, 0.43],
                                   warm=[0.002, 0.0021, 0.0027])  # fmt: skip
IDLE_TIMEOUTS = (10.0, 60.0, 300.0, 1200.0)
MIN_WARM = (0, 1, 2)
PRESTARTED_MIN_WARM = (1, 2)
LIVE_SETTINGS = (Setting("idle 10 s", 0, 10.0), Setting("idle 120 s", 0, 120.0))
LIVE_MAX_EXEC = 1.0  # live calls work at most this long (seconds)


def grid(quick: bool) -> list[Setting]:
    settings = [Setting("always cold", cold=True)]
    for min_warm in MIN_WARM[:2] if quick else MIN_WARM:
        for idle in IDLE_TIMEOUTS[::2] if quick else IDLE_TIMEOUTS:
            settings.append(Setting(f"min_warm {min_warm}, idle {idle:g} s", min_warm, idle))
    # idle_timeout "auto": each function kept by its own rhythm, learnt during the day.
    settings.append(Setting("min_warm 0, idle auto", 0, None))
    # `default` functions: pre-started single-use containers (min_warm at least 1).
    for min_warm in PRESTARTED_MIN_WARM[:1] if quick else PRESTARTED_MIN_WARM:
        for idle in IDLE_TIMEOUTS[:1] if quick else IDLE_TIMEOUTS[::2]:
            name = f"default, pre-started {min_warm}, idle {idle:g} s"
            settings.append(Setting(name, min_warm, idle, prestarted=True))
    return settings


def latencies_from(starts: dict | None) -> StartLatencies:
    if not starts:
        return DEFAULT_LATENCIES
    r = starts["results"]
    latencies = StartLatencies(
        r["cold"]["samples_s"], r["fresh"]["samples_s"], r["warm"]["samples_s"]
    )
    if "sh-prestarted" in r:
        latencies = replace(latencies, prestarted=r["sh-prestarted"]["samples_s"])
    return latencies


def sweep_in_background(
    loads: list[FunctionLoad], settings: list[Setting], latencies: StartLatencies, cap: int
) -> tuple[ProcessPoolExecutor, list[Future[Outcome]]]:
    """Every setting over the same calls (the same seed), in one worker process: it runs
    while the live check replays its slice, leaving a core to the executor."""
    pool = ProcessPoolExecutor(max_workers=1)
    return pool, [pool.submit(simulate, loads, s, latencies, 1, cap) for s in settings]


def live_slice(loads: list[FunctionLoad], minutes: int, cap: int, seed: int = 2):
    """A `minutes`-long slice of the day from its busiest hour on, keeping the functions
    with at least one call in it; each call as (arrival, work seconds)."""
    rng = random.Random(seed)
    start = 9 * 60  # the daily swing peaks mid-morning in the generator's clock
    chosen: list[FunctionLoad] = []
    calls: dict[str, list[tuple[float, float]]] = {}
    for load in loads:
        part = FunctionLoad(
            load.name,
            load.trigger,
            load.per_minute[start : start + minutes],
            min(load.exec_median, LIVE_MAX_EXEC / 4),
            load.exec_sigma,
            load.memory_mib,
        )
        times = list(arrivals(part, rng, cap))
        if times:
            chosen.append(part)
            calls[part.name] = [(t, min(exec_time(part, rng), LIVE_MAX_EXEC)) for t in times]
    return chosen, calls


async def replay_live(
    url: str, loads: list[FunctionLoad], calls, progress
) -> tuple[dict[str, Outcome], dict[str, dict[str, int]]]:
    """The calls, at their times, to one app per setting (the same calls to each)."""
    apps = {s.name: f"live{i}" for i, s in enumerate(LIVE_SETTINGS)}
    for setting in LIVE_SETTINGS:
        for load in loads:
            put_json(
                f"{url}/v1/apps/{apps[setting.name]}/routes/{load.name}",
                {"route": {"image": IMAGE, "format": "http-stream", "memory": 64,
                           "min_warm": setting.min_warm, "max_containers": 16,
                           "idle_timeout": int(setting.idle_timeout), "timeout": 60}},
            )  # fmt: skip
    outcomes = {s.name: Outcome(s.name) for s in LIVE_SETTINGS}
    statuses: dict[str, dict[str, int]] = {s.name: {} for s in LIVE_SETTINGS}
    schedule = sorted((at, name, work) for name, items in calls.items() for at, work in items)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(setting: Setting, name: str, work: float) -> None:
            app = apps[setting.name]
            headers = {"X-Sleep": f"{work:.3f}"}
            async with session.post(f"{url}/r/{app}/{name}", headers=headers) as response:
                await response.read()
            outcome = outcomes[setting.name]
            code = str(response.status)
            statuses[setting.name][code] = statuses[setting.name].get(code, 0) + 1
            if response.status != 200:
                return  # counted apart: a failed call has no start kind to compare
            outcome.calls += 1
            start = response.headers["Executor-Start"]
            setattr(outcome, start, getattr(outcome, start) + 1)

        began = time.perf_counter()
        tasks = []
        last_minute = -1
        for at, name, work in schedule:
            delay = began + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if int(at // 60) != last_minute:
                last_minute = int(at // 60)
                progress()
            for setting in LIVE_SETTINGS:
                tasks.append(asyncio.create_task(one(setting, name, work)))
        await asyncio.gather(*tasks)
    return outcomes, statuses


def plot(outcomes: list[Outcome], path: Path) -> None:
    """The trade-off curve: each setting's lag (mean and p99) and share of calls that
    waited for a start, against the memory-time its idle containers held."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lag, starts) = plt.subplots(1, 2, figsize=(13, 5.4))
    for o in outcomes:
        x = o.idle_mib_seconds / 3600 / 1024  # GiB-hours of idle containers
        shares = o.shares()
        started = 100 * (shares["cold"] + shares["fresh"])
        auto = "auto" in o.setting  # idle_timeout "auto": a green star beside the fixed
        lag.scatter([x], [o.lag_mean_ms], color="tab:green" if auto else "tab:blue",
                    marker="*" if auto else "o", s=120 if auto else 36)  # fmt: skip
        lag.scatter([x], [o.lag_p99_ms], color="tab:green" if auto else "tab:red", marker="^")
        starts.scatter([x], [started], color="tab:green" if auto else "tab:purple",
                       marker="*" if auto else "o", s=120 if auto else 36)  # fmt: skip
        for ax, y in ((lag, o.lag_mean_ms), (starts, started)):
            ax.annotate(o.setting, (x, y), fontsize=7, textcoords="offset points", xytext=(5, 2))
    lag.set(xlabel="idle containers, GiB-hours a day", ylabel="lag added to a call, ms",
            title="mean (blue) and p99 (red) lag against idle memory", yscale="log")  # fmt: skip
    starts.set(xlabel="idle containers, GiB-hours a day", ylabel="calls that waited for a start, %",
               title="cold + fresh starts against idle memory", yscale="log")  # fmt: skip
    for ax in (lag, starts):
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace, progress: Callable[[], None] = lambda: None) -> dict:
    starts_json = common.RESULTS / "starts.json"
    starts = None
    if starts_json.exists():
        import orjson

        starts = orjson.loads(starts_json.read_bytes())
    latencies = latencies_from(starts)
    loads = generate(args.functions, minutes=args.hours * 60, seed=args.seed)
    settings = grid(args.quick)
    pool, futures = sweep_in_background(loads, settings, latencies, args.cap)
    with pool:
        slice_loads, calls = live_slice(loads, args.live_minutes, args.live_cap)
        # The simulator models each pool, not the host's memory budget: a budget far above
        # what these containers reserve keeps evictions out of the comparison (the live
        # run's two settings share one executor; at the default budget the long idle
        # timeout's containers were evicted for the short one's starts).
        unbounded = {"EXECUTOR_ACCESS_LOG": "false", "EXECUTOR_MEMORY_BUDGET": str(1 << 20)}
        with executor_server(**unbounded) as url:
            live, statuses = asyncio.run(replay_live(url, slice_loads, calls, progress))
        outcomes = []
        for future in futures:
            outcomes.append(future.result())
            progress()
    simulated = {
        s.name: simulate(slice_loads, s, latencies, seed=3, given=calls) for s in LIVE_SETTINGS
    }
    plot(outcomes, common.RESULTS / "plots" / "tradeoff.png")
    return {
        "benchmark": "tradeoff",
        "machine": machine(),
        "settings": vars(args),
        "latencies_from": "starts.json" if starts else "defaults",
        "workload": {
            "functions": len(loads),
            "hours": args.hours,
            "calls_capped_per_minute": args.cap,
            "daily_calls": sum(load.daily for load in loads),
        },
        "sweep": [asdict(o) | {"shares": o.shares()} for o in outcomes],
        "live_check": {
            "minutes": args.live_minutes,
            "functions": len(slice_loads),
            "calls": sum(len(c) for c in calls.values()),
            "settings": {
                name: {
                    "simulated": simulated[name].shares(),
                    "live": live[name].shares(),
                    "live_calls": live[name].calls,
                    "live_statuses": statuses[name],
                }
                for name in simulated
            },
        },
    }


def report(result: dict) -> str:
    rows = [["setting", "cold %", "fresh %", "warm %", "p50 ms", "p99 ms", "lag mean ms",
             "lag p99 ms", "idle GiB-h"]]  # fmt: skip
    for o in result["sweep"]:
        shares = [f"{100 * o['shares'][k]:.2f}" for k in ("cold", "fresh", "warm")]
        times = [f"{o[k]:.1f}" for k in ("p50_ms", "p99_ms", "lag_mean_ms", "lag_p99_ms")]
        rows.append([o["setting"], *shares, *times, f"{o['idle_mib_seconds'] / 3600 / 1024:.1f}"])
    check = result["live_check"]
    rows2 = [["setting", "simulated warm %", "live warm %", "live answers by status"]]
    for name, s in check["settings"].items():
        answers = ", ".join(f"{n} x {code}" for code, n in sorted(s["live_statuses"].items()))
        rows2.append([name, f"{100 * s['simulated']['warm']:.1f}",
                      f"{100 * s['live']['warm']:.1f}", answers])  # fmt: skip
    return "\n".join([
        table(rows), "",
        f"live check: {check['minutes']} min, {check['functions']} functions, "
        f"{check['calls']} calls to each setting",
        table(rows2),
    ])  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--functions", type=int, default=200)
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--cap", type=int, default=30, help="calls a minute at most per function")
    p.add_argument("--live-minutes", type=int, default=10)
    p.add_argument("--live-cap", type=int, default=6, help="live calls a minute per function")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    return p


def settings(argv: list[str] | None = None, quick: bool = False) -> argparse.Namespace:
    args = parser().parse_args(argv or [])
    if args.quick or quick:
        args.quick = True
        args.functions, args.hours, args.cap, args.live_minutes = 40, 12, 10, 1
    return args


def steps(args: argparse.Namespace) -> int:
    return len(grid(args.quick)) + args.live_minutes


def main() -> None:
    import sys

    args = settings(sys.argv[1:])
    result = run(args)
    print(report(result))
    print(f"written: {write_result('tradeoff', result)}")


if __name__ == "__main__":
    main()
