"""The live view's series (executor/live.py): seconds closed once, polled incrementally."""

from __future__ import annotations

from executor.live import SAMPLES_MAX, LiveSeries, PoolSample, _Samples, quantile


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_quantiles_are_nearest_rank_values_that_were_seen():
    values = sorted(float(v) for v in range(1, 101))
    assert (quantile(values, 0.5), quantile(values, 0.99), quantile(values, 1.0)) == (50, 99, 100)
    assert quantile([7.0], 0.99) == 7.0


def test_a_second_holds_calls_by_status_latency_by_start_kind_and_wait():
    clock = Clock()
    live = LiveSeries(clock=clock)
    for ms in range(1, 101):
        live.call_done("a", "/x", 200, "warm", ms / 1000, 0.0001)
    live.call_done("a", "/x", 502, "cold", 0.3, 0.002)
    live.container_started("a", "/x")
    live.container_event("a", "/x", "evicted")
    live.close_second([PoolSample("a", "/x", 1, 2, 0, 3, 128)], reserved=384, budget=1000)
    (second,) = live.since()
    assert second["t"] == 1000
    assert second["calls"] == {"200": 100, "502": 1}
    assert second["latency"]["warm"] == [100, 50.0, 99.0]
    assert second["latency"]["cold"] == [1, 300.0, 300.0]
    assert second["wait"] == [0.1, 0.1]  # one slow wait in 101 is past the p99
    assert (second["starts"], second["events"]) == (1, {"evicted": 1})
    assert (second["reserved"], second["budget"]) == (384, 1000)
    assert "routes" not in second
    (mine,) = live.since(route="a/x")
    assert mine["pool"] == [1, 2, 0, 3] and mine["reserved"] == 384
    assert mine["calls"] == {"200": 100, "502": 1}


def test_a_poll_after_a_second_gets_only_the_newer_ones():
    clock = Clock()
    live = LiveSeries(clock=clock)
    for _ in range(5):
        live.close_second([], 0, 100)
        clock.now += 1
    assert [s["t"] for s in live.since(1002)] == [1003, 1004]
    assert live.since(1004) == []
    assert live.last == 1004


def test_the_window_keeps_only_its_last_seconds():
    clock = Clock()
    live = LiveSeries(window=3, clock=clock)
    for _ in range(5):
        live.close_second([], 0, 100)
        clock.now += 1
    assert [s["t"] for s in live.since()] == [1002, 1003, 1004]


def test_a_slow_tick_never_names_two_seconds_alike():
    live = LiveSeries(clock=Clock())
    live.close_second([], 0, 100)
    live.close_second([], 0, 100)
    assert [s["t"] for s in live.since()] == [1000, 1001]


def test_a_route_quiet_in_a_second_has_only_its_time_there():
    live = LiveSeries(clock=Clock())
    live.call_done("a", "/x", 200, "warm", 0.001, 0.0)
    live.close_second([], 0, 100)
    assert live.since(route="a/other") == [{"t": 1000}]


def test_past_the_sample_cap_the_count_stays_exact():
    samples = _Samples()
    for i in range(SAMPLES_MAX * 3):
        samples.add(i / 1000)
    assert samples.count == SAMPLES_MAX * 3 and len(samples.values) == SAMPLES_MAX
    merged = _Samples()
    merged.extend(samples)
    merged.extend(samples)
    assert merged.count == SAMPLES_MAX * 6 and len(merged.values) == SAMPLES_MAX
