"""The trade-off simulator: the pool policy replayed in simulated time, checked against
cases worked out by hand."""

from __future__ import annotations

import random

import pytest

from benchmarks.simulate import Setting, StartLatencies, simulate
from benchmarks.workload import FunctionLoad, arrivals, generate

# Fixed latencies: a fresh start takes 1 s, warm calls add nothing, a cold call 2 s.
FIXED = StartLatencies(cold=[2.0], fresh=[1.0], warm=[0.0])


def load(per_minute: tuple[int, ...], memory: int = 128) -> FunctionLoad:
    return FunctionLoad("f", "http", per_minute, exec_median=0.5, exec_sigma=0.0, memory_mib=memory)


def test_always_cold_starts_a_container_per_call_and_keeps_none_idle():
    outcome = simulate([load((3, 0, 2))], Setting("cold", cold=True), FIXED)
    assert (outcome.calls, outcome.cold, outcome.containers_started) == (5, 5, 5)
    assert outcome.idle_mib_seconds == 0
    assert outcome.p50_ms == pytest.approx(2500)  # cold 2 s + exec 0.5 s


def test_one_call_a_minute_is_fresh_once_then_warm_and_idle_time_is_accounted():
    function = load((1, 1, 1) + (0,) * 7)  # 10 minutes
    outcome = simulate([function], Setting("pooled", 0, 300), FIXED, seed=7)
    assert (outcome.fresh, outcome.warm, outcome.containers_started) == (1, 2, 1)
    t1, _, t3 = arrivals(function, random.Random(7))
    # Idle from the first call's end (start 1 s + exec 0.5 s) to the last call's end plus
    # the idle timeout, less the two other calls' 0.5 s each.
    idle_seconds = (t3 + 0.5 + 300) - (t1 + 1.5) - 2 * 0.5
    assert outcome.idle_mib_seconds == pytest.approx(idle_seconds * 128)
    assert outcome.p50_ms == pytest.approx(500)  # two of three calls are warm: exec only


def test_min_warm_keeps_a_container_idle_all_day_and_serves_the_first_call_warm():
    function = load((0,) * 9 + (1,))
    outcome = simulate([function], Setting("warm", 1, 60), FIXED)
    assert (outcome.fresh, outcome.warm, outcome.containers_started) == (0, 1, 1)
    # Started at 0, ready at 1 s, idle until the day's end (600 s) but for one 0.5 s call.
    assert outcome.idle_mib_seconds == pytest.approx((600 - 1 - 0.5) * 128)


def test_a_short_idle_timeout_trades_idle_memory_for_fresh_starts():
    loads = generate(30, minutes=180, seed=4)
    real = StartLatencies(cold=[0.34], fresh=[0.42], warm=[0.0006])
    short = simulate(loads, Setting("short", 0, 10), real, seed=1, cap_per_minute=30)
    long = simulate(loads, Setting("long", 0, 1200), real, seed=1, cap_per_minute=30)
    assert short.calls == long.calls > 0
    assert short.fresh > long.fresh
    assert short.idle_mib_seconds < long.idle_mib_seconds


def test_prestarted_calls_are_warm_when_spaced_past_a_start_and_cold_otherwise():
    fixed = StartLatencies(cold=[2.0], fresh=[1.0], warm=[0.0], prestarted=[0.01])
    sparse = simulate([load((1, 1, 1))], Setting("pre", 1, 60, prestarted=True), fixed)
    # Each call finds the container started a minute before: warm, and one replacement each.
    assert (sparse.warm, sparse.cold, sparse.containers_started) == (3, 0, 4)
    assert sparse.p50_ms == pytest.approx(510)
    burst = simulate([load((30,))], Setting("pre", 1, 60, prestarted=True), fixed, seed=3)
    # Thirty calls within a minute: some find none ready and start cold at once.
    assert burst.cold > 0 and burst.warm > 1 and burst.calls == 30
