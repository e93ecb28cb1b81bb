"""The benchmarks' smoke run (`python -m benchmarks --quick`): it completes and writes valid
JSON, a summary and the plot. Timings are never asserted here (benchmarks/ quotes them)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def run_quick(module: str, out: Path, timeout: float) -> None:
    """`python -m MODULE --quick --out OUT`, which must succeed. Past the timeout its whole
    process group is stopped, the executors it started included: SIGTERM first, so that
    they remove their containers, as on any shutdown."""
    run = subprocess.Popen(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(run)
        raise
    assert run.returncode == 0, stdout[-3000:] + stderr[-3000:]


def stop_group(run: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(run.pid, signal.SIGTERM)
    try:
        run.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.communicate()


def test_the_quick_benchmark_run_completes_and_writes_its_results(tmp_path: Path):
    run_quick("benchmarks", tmp_path, timeout=300)
    for part in ("starts", "hot", "tradeoff", "scale", "drain"):
        result = orjson.loads((tmp_path / f"{part}.json").read_bytes())
        assert result["benchmark"] == part and result["quick"] is True
        assert result["machine"]["commit"] and result["machine"]["cores"]
    tradeoff = orjson.loads((tmp_path / "tradeoff.json").read_bytes())
    assert {o["setting"] for o in tradeoff["sweep"]} >= {"always cold"}
    assert tradeoff["live_check"]["calls"] > 0
    assert (tmp_path / "plots" / "tradeoff.png").stat().st_size > 10_000
    assert "## The trade-off" in (tmp_path / "summary.md").read_text()
    drained = orjson.loads((tmp_path / "drain.json").read_bytes())["results"]
    assert drained["warm_calls"] == drained["calls"]


def test_the_noisy_neighbour_benchmark_completes(tmp_path: Path):
    run_quick("benchmarks.flood", tmp_path, timeout=120)
    rows = orjson.loads((tmp_path / "flood.json").read_bytes())["rows"]
    assert [r["condition"] for r in rows] == ["quiet", "hot-yes", "cold-stderr"]
    assert all(r["n"] > 0 for r in rows)


def test_the_compat_benchmark_completes(tmp_path: Path):
    run_quick("benchmarks.compat", tmp_path, timeout=180)
    result = orjson.loads((tmp_path / "compat.json").read_bytes())
    assert len(result["results"]) == 4 and all(r["n"] > 0 for r in result["results"].values())
    assert result["ratios"]["http_over_http_stream"] > 0


def test_the_launch_benchmark_completes(tmp_path: Path):
    run_quick("benchmarks.launch", tmp_path, timeout=120)
    result = orjson.loads((tmp_path / "launch.json").read_bytes())
    assert set(result["ways"]) == {"trailer", "event", "wait", "exec", "cold"}
    assert all(way["n"] == 2 for way in result["ways"].values())


def test_the_burst_benchmark_completes(tmp_path: Path):
    run_quick("benchmarks.burst", tmp_path, timeout=300)
    result = orjson.loads((tmp_path / "burst.json").read_bytes())["results"]["this"]
    assert all(r["n"] > 0 for r in result.values()) and len(result) == 3


def test_the_pause_benchmark_completes(tmp_path: Path):
    run_quick("benchmarks.pause", tmp_path, timeout=300)
    result = orjson.loads((tmp_path / "pause.json").read_bytes())["results"]
    assert set(result["calls"]) == {"paused (freezer)", "paused (engine API)", "not paused"}
    assert len(result["cpu"]) == 6


def test_the_store_benchmark_completes(tmp_path: Path):
    run_quick("benchmarks.store", tmp_path, timeout=300)
    result = orjson.loads((tmp_path / "store.json").read_bytes())["results"]
    assert set(result["warm"]) == {"1", "32"} and result["propagation"]["n"] == 3
    assert set(result["async"]) == {"sqlite", "postgres", "postgres, 3 nodes"}


def test_the_fleet_benchmark_completes(tmp_path: Path):
    run_quick("benchmarks.fleet", tmp_path, timeout=300)
    result = orjson.loads((tmp_path / "fleet.json").read_bytes())["results"]
    assert set(result) == {"consistent", "bounded"}
    for setting in result.values():
        assert len(setting["median"]["after_kill"]) and setting["runs"][0]["before"]["n"] > 0


def test_the_workflow_benchmark_completes(tmp_path: Path):
    run_quick("benchmarks.workflow", tmp_path, timeout=300)
    result = orjson.loads((tmp_path / "workflow.json").read_bytes())["results"]
    assert set(result["builds"]) == {"executor build", "docker build"}
    assert result["end_to_end_s"] > 0 and result["steps"]["first"]


def test_the_dashboard_benchmark_completes(tmp_path: Path):
    run_quick("benchmarks.dashboard", tmp_path, timeout=300)
    result = orjson.loads((tmp_path / "dashboard.json").read_bytes())["results"]
    assert set(result) == {"large", "baseline"}
    assert result["large"]["rows"] == 100 and result["large"]["interactive_ms"] > 0
