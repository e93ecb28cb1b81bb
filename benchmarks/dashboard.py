"""The dashboard at scale (issue: 1,000 routes and 20 warm pools): how soon the routes
page is interactive in a real headless Chromium, and what a live update costs the
executor, against a baseline executor of 10 routes and no pool, rounds interleaved.

- **routes page**: a fresh load of `/ui/#/routes`, in ms from the navigation's start,
  by the Performance API: `routes-ready` (the table of every route built, the filter
  live), `routes-interactive` (that table painted and the task after the paint run: the
  page answers input from there) and the first live update of its pools' cells.
- **live update**: `GET /v1/stats?after=<the last second>`, what the page polls each
  second, while callers keep the warm pools busy: the CPU the answer cost as the
  executor reports it (`Server-Timing: cpu;dur=`, the handler's thread time), and the
  executor process's whole CPU (utime + stime from /proc) per poll, its HTTP handling
  included, less the same process's CPU over as long a wait without polls.

    python -m benchmarks.dashboard [--rounds 5] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks import common
from benchmarks.common import executor_process, put_json, table

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must fetch nothing

HOT_IMAGE = "executor-test/gohttp"  # IronFunctions' `http` format, Go: 32 MiB a container
COLD_IMAGE = "executor/hello"
POLLS = 200


def deploy(url: str, routes: int, pools: int) -> None:
    for i in range(routes):
        app = f"app{i % 10}"
        if i < pools:
            route = {"image": HOT_IMAGE, "format": "http", "memory": 32, "min_warm": 1}
        else:
            route = {"image": COLD_IMAGE, "memory": 64}
        put_json(f"{url}/v1/apps/{app}/routes/fn{i}", {"route": route})
    deadline = time.monotonic() + 120
    while True:
        stats = common.get_json(f"{url}/v1/stats?after=9999999999")
        if sum(p["idle"] + p["busy"] for p in stats["pools"]) >= pools:
            return
        assert time.monotonic() < deadline, f"pools not warm in 120 s: {stats['pools']}"
        time.sleep(0.5)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def load_routes_page(driver, url: str) -> dict[str, float]:
    driver.get("about:blank")
    driver.get(f"{url}/ui/#/routes")
    deadline = time.monotonic() + 30
    script = """
        const mark = (name) => performance.getEntriesByName(name)[0];
        const names = ['routes-ready', 'routes-interactive', 'routes-live'];
        const [ready, painted, live] = names.map(mark);
        if (!ready || !painted || !live) return null;
        const rows = document.querySelectorAll('#routes tbody tr').length;
        return [ready.startTime, painted.startTime, live.startTime, rows];
    """
    while (found := driver.execute_script(script)) is None:
        assert time.monotonic() < deadline, "the routes page never marked routes-ready"
        time.sleep(0.05)
    ready, interactive, live, rows = found
    return {"ready_ms": ready, "interactive_ms": interactive, "live_ms": live, "rows": rows}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def polls(url: str, pid: int, count: int) -> dict[str, float]:
    """`count` live updates back to back: the handler's CPU (Server-Timing) of each, and
    the process's CPU per poll beyond what it spends in as long a wait."""
    last = common.get_json(f"{url}/v1/stats?after=9999999999")["now"] or 0
    reported = []
    began_cpu, began = cpu_seconds(pid), time.perf_counter()
    for _ in range(count):
        with urllib.request.urlopen(f"{url}/v1/stats?after={last}", timeout=5) as response:
            response.read()
            reported.append(float(response.headers["Server-Timing"].split("=")[1]))
    spent_cpu, spent = cpu_seconds(pid) - began_cpu, time.perf_counter() - began
    idle_cpu = cpu_seconds(pid)
    time.sleep(spent)
    idle_cpu = cpu_seconds(pid) - idle_cpu
    reported.sort()
    return {
        "handler_cpu_p50_ms": statistics.median(reported),
        "handler_cpu_p99_ms": reported[int(len(reported) * 0.99) - 1],
        "process_cpu_ms": max(0.0, spent_cpu - idle_cpu) * 1000 / count,
    }


def callers(url: str, pools: int, stop: threading.Event) -> list[threading.Thread]:
    """Two threads calling the warm routes in turn: seconds with calls in them."""

    def loop(offset: int) -> None:
        i = offset
        while not stop.is_set():
            path = f"/r/app{i % pools % 10}/fn{i % pools}"
            with contextlib.suppress(OSError):
                urllib.request.urlopen(urllib.request.Request(url + path, data=b"x"), timeout=10)
            i += 1
            time.sleep(0.01)

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(2)]
    for thread in threads:
        thread.start()
    return threads


def screenshot(driver, url: str, routes: int, pools: int, seconds: float, path: Path) -> None:
    """The live view after `seconds` more of the warm callers and a cold call a second."""
    driver.get(f"{url}/ui/#/")
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        n = pools + i % (routes - pools)
        with contextlib.suppress(OSError):
            urllib.request.urlopen(urllib.request.Request(f"{url}/r/app{n % 10}/fn{n}"), timeout=10)
        i += 1
        time.sleep(1)
    driver.save_screenshot(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--screenshot", type=Path, help="saves the large executor's live view")
    parser.add_argument("--screenshot-after", type=float, default=90.0,
                        help="seconds of calls before the screenshot")  # fmt: skip
    args = common.arguments(parser)
    routes, pools, rounds = (100, 2, 1) if args.quick else (1000, 20, args.rounds)
    count = 20 if args.quick else POLLS
    shapes = {"large": (routes, pools), "baseline": (10, 0)}
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in shapes}
    with (
        executor_process() as (large_url, large),
        executor_process() as (small_url, small),
    ):
        servers = {"large": (large_url, large.pid), "baseline": (small_url, small.pid)}
        for name, (routes_n, pools_n) in shapes.items():
            deploy(servers[name][0], routes_n, pools_n)
        stop = threading.Event()
        callers(large_url, pools, stop)
        driver = browser()
        try:
            for _ in range(rounds):
                order = list(shapes)
                random.shuffle(order)
                for name in order:
                    url, pid = servers[name]
                    measured = {**load_routes_page(driver, url), **polls(url, pid, count)}
                    for key, value in measured.items():
                        samples[name].setdefault(key, []).append(value)
            if args.screenshot:
                screenshot(driver, large_url, routes, pools, args.screenshot_after, args.screenshot)
        finally:
            driver.quit()
            stop.set()

    medians = {n: {k: statistics.median(v) for k, v in s.items()} for n, s in samples.items()}
    rows = [["", f"{routes} routes, {pools} warm pools", "10 routes, no pool", "ratio"]]
    labels = {
        "ready_ms": "routes page: table ready (ms)",
        "interactive_ms": "routes page: painted, interactive (ms)",
        "live_ms": "routes page: first live update (ms)",
        "handler_cpu_p50_ms": "live update: handler CPU p50 (ms)",
        "handler_cpu_p99_ms": "live update: handler CPU p99 (ms)",
        "process_cpu_ms": "live update: process CPU per poll (ms)",
    }
    for key, label in labels.items():
        big, base = medians["large"][key], medians["baseline"][key]
        ratio = f"x{big / base:.2f}" if base else "-"
        rows.append([label, f"{big:.3f}", f"{base:.3f}", ratio])
    text = table(rows) + f"\nmedians of {rounds} round(s), {count} polls a round, interleaved"
    setup = {"routes": routes, "pools": pools, "rounds": rounds, "polls": count}
    common.publish("dashboard", args, text, **setup, results=medians, samples=samples)


if __name__ == "__main__":
    main()
