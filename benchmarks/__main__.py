"""Every benchmark in one run, with a progress bar: JSON, plots and a markdown summary in
benchmarks/results/ (or --out), each tagged with the machine and the git commit.

1. starts    cold, fresh and warm calls of one function, docker run, the socket floor
2. hot       warm calls against concurrency 1-64, closed and open loop, against the floor
             and a bare aiohttp server
3. tradeoff  latency won against idle memory spent over min_warm x idle_timeout, by
             simulation of an Azure-shaped day, checked live
4. scale     warm p50 and executor RSS with 1, 10, 100 warm routes and 1,000 registered
5. drain     500 async calls accepted and run on warm containers, against the same calls
             made sync

    python -m benchmarks [--quick] [--only starts,hot,tradeoff,scale,drain] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks import common, drain, hot, scale, starts, tradeoff
from benchmarks.summary import write_summary

PARTS = ("starts", "hot", "tradeoff", "scale", "drain")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, under 2 minutes")
    parser.add_argument("--only", default=",".join(PARTS), help="parts to run, in order")
    parser.add_argument("--out", type=Path, default=common.RESULTS, help="where results go")
    args = parser.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    common.RESULTS = args.out  # every part writes there
    settings = {
        "hot": hot.settings(quick=args.quick),
        "tradeoff": tradeoff.settings(quick=args.quick),
        "scale": scale.settings(quick=args.quick),
        "drain": drain.settings(quick=args.quick),
    }
    start_calls = 2 if args.quick else 15
    total = {
        "starts": start_calls,
        "hot": hot.steps(settings["hot"]),
        "tradeoff": tradeoff.steps(settings["tradeoff"]),
        "scale": scale.steps(settings["scale"]),
        "drain": drain.steps(settings["drain"]),
    }
    began = time.monotonic()
    results = {}
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, transient=False) as progress:
        tasks = {part: progress.add_task(part, total=total[part]) for part in parts}
        for part in parts:
            step = lambda part=part: progress.advance(tasks[part])  # noqa: E731
            if part == "starts":
                results[part] = starts.run(start_calls, step)
            elif part == "tradeoff":
                # After starts: it draws each start kind's latency from starts.json.
                results[part] = tradeoff.run(settings[part], step)
            else:
                results[part] = {"hot": hot.run, "scale": scale.run, "drain": drain.run}[part](
                    settings[part], step
                )
            results[part]["quick"] = args.quick
            common.write_result(part, results[part])
            progress.update(tasks[part], completed=total[part])
    for part in PARTS:  # parts not run this time keep their last results in the summary
        saved = args.out / f"{part}.json"
        if part not in results and saved.exists():
            results[part] = orjson.loads(saved.read_bytes())
    results = {part: results[part] for part in PARTS if part in results}
    path = write_summary(results, args.out, time.monotonic() - began)
    print(path.read_text())
    print(f"written: {args.out}/*.json, {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
