"""The pool policy on its own, in simulated time."""

from __future__ import annotations

import pytest

from executor.pool.policy import BACKOFF_FIRST, Assignment, Limits, PoolPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def policy(clock: Clock, min_warm: int = 0, max_containers: int = 3, idle: float = 30):
    return PoolPolicy[str](Limits(min_warm, max_containers, idle), clock)


def acquire(p: PoolPolicy, waiter: str, urgent: bool = True) -> str | None:
    """What HotPool.call does: an idle container, or the call waits."""
    key = p.acquire_idle()
    if key is None:
        p.enqueue(waiter, urgent)
    return key


def start(p: PoolPolicy, *keys: str) -> None:
    for key in keys:
        p.starting(key)
        assert p.ready(key) is None


def test_min_warm_is_started_with_no_traffic(clock):
    p = policy(clock, min_warm=2)
    assert p.starts_wanted() == 2
    p.starting("a")
    p.starting("b")
    assert p.starts_wanted() == 0
    p.ready("a")
    p.ready("b")
    assert p.count("idle") == 2
    assert p.starts_wanted() == 0


def test_a_call_takes_the_most_recently_used_idle_container(clock):
    p = policy(clock)
    start(p, "a", "b")
    clock.now += 1
    assert acquire(p, "c1") == "b"
    assert p.release("b") is None
    clock.now += 1
    assert acquire(p, "c2") == "b"  # b again: most recently used
    assert p.slots()[1].calls == 2


def test_no_idle_container_starts_a_fresh_one_per_waiting_call(clock):
    p = policy(clock, max_containers=2)
    assert acquire(p, "c1") is None
    assert acquire(p, "c2") is None
    assert acquire(p, "c3") is None
    assert p.starts_wanted() == 2  # capped by max_containers
    p.starting("a")
    assert p.starts_wanted() == 1
    p.starting("b")
    assert p.starts_wanted() == 0
    assert p.ready("a") == Assignment("c1", "a", warm=False)
    assert p.ready("b") == Assignment("c2", "b", warm=False)
    # c3 waits; a container freed first serves it, warm.
    assert p.release("b") == Assignment("c3", "b", warm=True)


def test_a_call_takes_a_freed_container_before_its_fresh_one(clock):
    p = policy(clock)
    start(p, "a")
    assert acquire(p, "c1") == "a"
    assert acquire(p, "c2") is None
    p.starting("b")
    assert p.release("a") == Assignment("c2", "a", warm=True)
    # The fresh one stays in the pool.
    assert p.ready("b") is None
    assert p.count("idle") == 1


def test_sync_calls_go_before_async_ones_first_come_first_served(clock):
    p = policy(clock, max_containers=1)
    start(p, "a")
    assert acquire(p, "busy") == "a"
    acquire(p, "async1", urgent=False)
    acquire(p, "sync1")
    acquire(p, "sync2")
    order = []
    for _ in range(3):
        assignment = p.release("a")
        order.append(assignment.waiter)
    assert order == ["sync1", "sync2", "async1"]


def test_a_cancelled_waiter_is_skipped(clock):
    p = policy(clock, max_containers=1)
    start(p, "a")
    acquire(p, "busy")
    acquire(p, "w1")
    acquire(p, "w2")
    assert p.cancel("w1")
    assert not p.cancel("w1")
    assert p.release("a").waiter == "w2"


def test_idle_containers_above_min_warm_expire_least_recently_used_first(clock):
    p = policy(clock, min_warm=1, idle=30)
    start(p, "a")
    clock.now += 5
    start(p, "b")
    clock.now += 5
    start(p, "c")
    assert p.next_wakeup() == 1000 + 30  # a, the least recently used
    clock.now = 1000 + 29.9
    assert p.expired() == []
    clock.now = 1000 + 40
    assert p.expired() == ["a", "b"]
    clock.now = 1000 + 1000
    assert p.expired() == []  # c is the min_warm one
    assert p.next_wakeup() is None


def test_a_busy_container_does_not_expire(clock):
    p = policy(clock, idle=10)
    start(p, "a")
    acquire(p, "c")
    clock.now += 100
    assert p.expired() == []
    p.release("a")
    clock.now += 9
    assert p.expired() == []
    clock.now += 1
    assert p.expired() == ["a"]


def test_start_failures_back_off_and_fail_the_waiting_calls(clock):
    p = policy(clock, min_warm=1)
    acquire(p, "c1")
    acquire(p, "c2")
    p.starting("a")
    p.starting("b")
    assert p.start_failed("a") == []  # b may still serve them
    assert p.start_failed("b") == ["c1", "c2"]
    assert p.backing_off()
    assert p.should_fail_fast()
    assert p.starts_wanted() == 0
    assert p.next_wakeup() == clock.now + 2 * BACKOFF_FIRST  # second failure in a row
    clock.now += 1.0
    assert p.starts_wanted() == 1  # min_warm again
    p.starting("c")
    p.start_failed("c")
    assert p.next_wakeup() == clock.now + 4 * BACKOFF_FIRST
    clock.now += 2.0
    p.starting("d")
    p.ready("d")
    assert not p.backing_off()
    p.starting("e")
    p.start_failed("e")
    assert p.next_wakeup() is None  # min_warm is met, nobody waits
    assert not p.should_fail_fast()  # d exists


def test_removed_containers_are_replaced_up_to_min_warm(clock):
    p = policy(clock, min_warm=2)
    start(p, "a", "b")
    acquire(p, "c")
    p.remove("b")  # died while busy
    p.remove("a")  # died while idle
    assert not p.slots()
    assert p.starts_wanted() == 2


def test_limits_change_in_place(clock):
    p = policy(clock, min_warm=1, max_containers=1)
    start(p, "a")
    acquire(p, "c1")
    acquire(p, "c2")
    assert p.starts_wanted() == 0
    p.limits = Limits(min_warm=1, max_containers=4, idle_timeout=30)
    assert p.starts_wanted() == 1


def test_drain_takes_every_idle_container_and_waiter(clock):
    p = policy(clock, max_containers=2)
    start(p, "a", "b")
    acquire(p, "c1")
    acquire(p, "c2")
    acquire(p, "c3")
    assert p.take_idle() == []
    assert p.drain_queue() == ["c3"]
    p.release("a")
    assert p.take_idle() == ["a"]
    assert len(p.slots()) == 1


def test_deterministic_replay(clock):
    """The same sequence of events gives the same decisions (the [bench] simulator)."""

    def replay() -> list:
        c = Clock()
        p = PoolPolicy[int](Limits(1, 4, 10), c)
        log = []
        for i in range(200):
            c.now += (i * 7919) % 13 / 2
            key = acquire(p, i)
            log.append(("acquire", i, key))
            for j in range(p.starts_wanted()):
                name = f"k{i}-{j}"
                p.starting(name)
                log.append(("ready", p.ready(name)))
            if key is not None and i % 3:
                log.append(("release", p.release(key)))
            log.append(("expired", p.expired()))
        return log

    assert replay() == replay()


def measured(p: PoolPolicy, call: float, start: float) -> PoolPolicy:
    p.observed_call(call)
    p.observed_start(start)
    return p


def test_unmeasured_a_burst_starts_a_container_for_each_waiting_call(clock):
    p = policy(clock, max_containers=8)
    for i in range(200):
        p.enqueue(f"w{i}")
    assert p.starts_wanted() == 8


def test_a_burst_of_fast_calls_from_zero_starts_one_container(clock):
    p = measured(policy(clock, max_containers=8), call=0.001, start=0.3)
    for i in range(200):
        p.enqueue(f"w{i}")
    assert p.starts_wanted() == 1
    p.starting("a")
    # One starting container drains 200 one-millisecond calls before another would be ready.
    assert p.starts_wanted() == 0


def test_a_burst_of_slow_calls_widens_the_pool_to_max_containers_at_once(clock):
    p = measured(policy(clock, max_containers=8), call=0.5, start=0.3)
    p.starting("a")
    for i in range(200):
        p.enqueue(f"w{i}")
    assert p.starts_wanted() == 7


def test_more_waiting_calls_than_a_container_drains_in_a_start_ask_for_another(clock):
    p = measured(policy(clock, max_containers=8), call=0.01, start=0.3)  # 30 calls a start
    start(p, "a")
    assert p.acquire_idle() == "a"
    for i in range(29):
        p.enqueue(f"w{i}")
    assert p.starts_wanted() == 0
    for i in range(29, 40):
        p.enqueue(f"w{i}")
    assert p.starts_wanted() == 1


def test_a_call_running_longer_than_the_average_counts_as_the_functions_time_now(clock):
    p = measured(policy(clock, max_containers=8), call=0.001, start=0.3)
    start(p, "a")
    assert p.acquire_idle() == "a"
    for i in range(50):
        p.enqueue(f"w{i}")
    assert p.starts_wanted() == 0
    assert p.next_wakeup() is not None  # calls wait while starts are held back: look again
    clock.now += 2.0  # the call in "a" has run for 2 s: 50 calls would take 100 s
    assert p.starts_wanted() == 7


def test_the_averages_move_a_fifth_of_the_way_to_each_sample(clock):
    p = policy(clock)
    p.observed_call(1.0)
    p.observed_call(2.0)
    assert p.service_time == pytest.approx(1.2)
