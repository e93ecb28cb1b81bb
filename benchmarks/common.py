"""What every benchmark shares: machine facts, percentiles, the table and the JSON."""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

RESULTS = Path(__file__).parent / "results"
EXECUTOR = [sys.executable, "-m", "executor"]
ROOT = Path(__file__).parent.parent


def arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """A benchmark's arguments with the two every one takes, --quick and --out (where
    write_result writes)."""
    global RESULTS
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    args = parser.parse_args()
    RESULTS = args.out
    return args


def publish(name: str, args: argparse.Namespace, text: str, **data: Any) -> None:
    """Prints a benchmark's table and writes its JSON (results/NAME.json)."""
    print(text)
    record = {"benchmark": name, "quick": args.quick, "machine": machine(), **data}
    print(f"written: {write_result(name, record)}")


def machine() -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "docker": run("docker", "version", "--format", "{{.Server.Version}}"),
        "commit": run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def summary(latencies_s: list[float]) -> dict[str, float]:
    """p50/p90/p99 in milliseconds, from an HDR histogram of microseconds."""
    histogram = HdrHistogram(1, 600_000_000, 3)
    for value in latencies_s:
        histogram.record_value(max(1, round(value * 1e6)))
    return {
        "n": len(latencies_s),
        "p50_ms": histogram.get_value_at_percentile(50) / 1000,
        "p90_ms": histogram.get_value_at_percentile(90) / 1000,
        "p99_ms": histogram.get_value_at_percentile(99) / 1000,
        "mean_ms": histogram.get_mean_value() / 1000,
    }


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def executor_server(db: str | None = None, **env: str) -> Iterator[str]:
    """An `executor serve` process on a free loopback port with a fresh database (or the
    shared one `db` names, a postgresql:// URL, with a data folder of its own)."""
    with executor_process(db, **env) as (url, _):
        yield url


@contextmanager
def executor_process(
    db: str | None = None, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """executor_server, and its process (to kill it)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="executor-bench-") as tmp:
        where = ["--db", db, "--data-dir", f"{tmp}/data"] if db else ["--db", f"{tmp}/bench.db"]
        process = subprocess.Popen(
            [*EXECUTOR, "serve", "--port", str(port), *where],
            env={**os.environ, "EXECUTOR_LOG_LEVEL": "warning", **env},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError("executor exited before it was ready")
                try:
                    urllib.request.urlopen(f"{url}/health/ready", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("executor not ready in 30 s") from None
                    time.sleep(0.1)
            yield url, process
        finally:
            process.terminate()
            process.wait(timeout=30)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return orjson.loads(response.read())


def put_json(url: str, payload: Any, method: str = "PUT") -> None:
    request = urllib.request.Request(url, data=orjson.dumps(payload), method=method)
    with urllib.request.urlopen(request) as response:
        response.read()
