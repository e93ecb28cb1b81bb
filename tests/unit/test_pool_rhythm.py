"""`idle_timeout: "auto"`: a route's idle times (pool/rhythm.py) and what the pool policy
does with them, against synthetic rhythms, in simulated time."""

from __future__ import annotations

import random

import pytest

from executor.pool.policy import Limits, PoolPolicy
from executor.pool.rhythm import BIN, BINS, FALLBACK, IdleRhythm


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rhythm_of(idle_times) -> IdleRhythm:
    rhythm = IdleRhythm()
    for idle in idle_times:
        rhythm.observe(idle)
    return rhythm


def test_a_ten_minute_timer_is_let_go_after_each_call_and_prewarmed_before_the_next():
    windows = rhythm_of([600.0] * 30).windows()
    assert windows is not None
    assert windows.prewarm == pytest.approx(10 * BIN * 0.9)  # the 10th bin, less 10%
    assert windows.keep_until == pytest.approx(11 * BIN * 1.1)


def test_a_bursty_route_keeps_its_containers_through_its_short_gaps():
    rng = random.Random(1)
    windows = rhythm_of(rng.uniform(0, 40) for _ in range(200)).windows()
    assert windows is not None
    assert windows.prewarm == 0  # the next call is always near: nothing is let go
    assert windows.keep_until == pytest.approx(BIN * 1.1)


def test_too_few_or_evenly_spread_idle_times_fall_back_to_a_fixed_keep_alive():
    assert rhythm_of([600.0] * 5).windows() is None
    rng = random.Random(2)
    assert rhythm_of(rng.uniform(0, BIN * BINS) for _ in range(2000)).windows() is None
    # A route that went quiet: most of its idle times are past the histogram's 4 hours.
    assert rhythm_of([600.0] * 20 + [BIN * BINS * 2] * 30).windows() is None


def test_a_rhythm_is_kept_as_counts_and_comes_back_from_them():
    rhythm = rhythm_of([600.0] * 12 + [BIN * BINS + 1])
    again = IdleRhythm(rhythm.counts, rhythm.beyond)
    assert again.windows() == rhythm.windows()
    assert again.samples == 13 and rhythm.changed
    with pytest.raises(ValueError):
        IdleRhythm([1, 2, 3])


def auto(clock: Clock, rhythm: IdleRhythm | None = None) -> PoolPolicy[str]:
    return PoolPolicy(Limits(0, 4, None), clock, rhythm)


def one_call(p: PoolPolicy, clock: Clock, key: str = "a") -> None:
    """A call to an idle `key` that takes one second."""
    assert p.acquire_idle() == key
    clock.now += 1.0
    assert p.release(key) is None


def start(p: PoolPolicy, key: str) -> None:
    p.starting(key)
    assert p.ready(key) is None


def test_auto_with_a_known_timer_lets_the_container_go_then_starts_one_before_the_tick():
    clock = Clock()
    p = auto(clock, rhythm_of([599.0] * 30))
    start(p, "a")
    one_call(p, clock)
    assert p.expired() == ["a"]  # let go at once: the next call is 9 minutes away
    assert p.starts_wanted() == 0
    prewarm_at = p.next_wakeup()
    assert prewarm_at == pytest.approx(clock.now + 9 * BIN * 0.9)
    clock.now = prewarm_at
    assert p.starts_wanted() == 1
    start(p, "b")
    assert p.starts_wanted() == 0  # once per idle period
    assert p.expired() == []
    clock.now = 1.0 + 10 * BIN * 1.1  # past the 99th percentile, plus 10%
    assert p.expired() == ["b"]


def test_auto_while_the_rhythm_is_unknown_keeps_a_container_for_the_fallback():
    clock = Clock()
    p = auto(clock)
    start(p, "a")
    one_call(p, clock)
    assert p.expired() == []
    assert p.next_wakeup() == pytest.approx(clock.now + FALLBACK)
    clock.now += FALLBACK
    assert p.expired() == ["a"]


def test_the_pool_learns_its_routes_idle_times_from_its_calls():
    clock = Clock()
    p = auto(clock)
    start(p, "a")
    for _ in range(12):
        one_call(p, clock)
        clock.now += 120.0
    assert p.rhythm.samples == 11
    assert p.rhythm.counts[2] == 11  # two minutes idle: the third bin


def test_a_fixed_idle_timeout_ignores_the_rhythm():
    clock = Clock()
    p = PoolPolicy(Limits(0, 4, 30.0), clock, rhythm_of([599.0] * 30))
    start(p, "a")
    one_call(p, clock)
    assert p.expired() == []
    clock.now += 30.0
    assert p.expired() == ["a"]


async def test_a_routes_rhythm_survives_a_restart(tmp_path):
    from tests.unit.conftest import fake_executor, route, until

    async with fake_executor(tmp_path) as ex:
        await route(ex, "/hot", "fake/hot", format="http-stream", idle_timeout="auto")
        await until(lambda: ex.pools.pool("t", "/hot").counts()["idle"] == 1)
        ex.pools.pool("t", "/hot")._policy.rhythm.observe(600.0)
    async with fake_executor(tmp_path) as ex:
        await until(lambda: ex.pools.pool("t", "/hot") is not None)
        assert ex.pools.pool("t", "/hot")._policy.rhythm.counts[10] == 1
        assert ex.registry.route("t", "/hot").idle_timeout == "auto"


def test_containers_a_burst_added_go_after_the_fallback_and_the_rhythm_keeps_the_last():
    clock = Clock()
    p = auto(clock, rhythm_of([30.0] * 30))  # a busy route: kept 66 s after its last call
    start(p, "a")
    start(p, "b")
    assert p.acquire_idle() == "b" and p.acquire_idle() == "a"
    clock.now += 1.0
    p.release("b")
    p.release("a")
    clock.now += 66.0
    assert p.expired() == []  # two: the one a burst added stays for the fallback
    clock.now = 1.0 + FALLBACK
    # It goes; the last then goes by the rhythm's 66 s, long past.
    assert p.expired() == ["b", "a"]
    start(p, "c")
    one_call(p, clock, "c")
    clock.now += 65.0
    assert p.expired() == []
    clock.now += 1.0
    assert p.expired() == ["c"]
