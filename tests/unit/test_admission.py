"""Host admission: the memory budget (first come, first served, until a deadline, with
eviction asked for first) and the bound on starts in flight."""

from __future__ import annotations

import asyncio

import pytest

from executor.admission import Admission, NoRoom
from executor.errors import ShuttingDown
from executor.lifecycle import Lifecycle, Phase


def soon(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_reservations_fit_the_budget_then_wait_for_a_release():
    admission = Admission(budget_mib=256, max_starts=8)
    await admission.reserve(128, soon(1), None)
    await admission.reserve(128, soon(1), None)
    assert admission.free == 0
    waiting = asyncio.create_task(admission.reserve(64, soon(5), None))
    await asyncio.sleep(0.01)
    assert not waiting.done() and admission.waiting == 1
    admission.release(128)
    await waiting
    assert admission.free == 64


async def test_past_its_deadline_a_reservation_fails_and_leaves_the_queue():
    admission = Admission(budget_mib=100, max_starts=8)
    await admission.reserve(100, None, None)
    with pytest.raises(NoRoom, match="no memory for a 50 MiB container before the deadline"):
        await admission.reserve(50, soon(0.05), None)
    assert admission.waiting == 0
    admission.release(100)
    assert admission.free == 100


async def test_first_come_first_served_a_big_one_is_not_overtaken():
    admission = Admission(budget_mib=100, max_starts=8)
    await admission.reserve(60, None, None)
    big = asyncio.create_task(admission.reserve(80, soon(5), None))
    await asyncio.sleep(0.01)
    small = asyncio.create_task(admission.reserve(10, soon(5), None))
    await asyncio.sleep(0.01)
    assert not small.done()  # 40 free would fit it, but the big one came first
    admission.release(60)
    await asyncio.gather(big, small)
    assert admission.free == 10


async def test_more_than_the_whole_budget_is_refused_at_once():
    admission = Admission(budget_mib=100, max_starts=8)
    with pytest.raises(NoRoom, match="more than the executor's budget"):
        await admission.reserve(101, soon(5), None)


async def test_eviction_is_asked_for_what_is_missing_before_waiting():
    admission = Admission(budget_mib=100, max_starts=8)
    asked = []

    def evict(mib, owner):
        asked.append((mib, owner))
        asyncio.get_running_loop().call_later(0.01, admission.release, 64)  # removal done
        return 64

    admission.evict_with(evict)
    await admission.reserve(64, None, ("a", "/x"))
    await admission.reserve(64, soon(1), ("b", "/y"))
    assert asked == [(28, ("b", "/y"))]
    assert admission.free == 36
    await asyncio.wait_for(admission.reserve(10, soon(1), None, evict=False), 1)
    assert asked == [(28, ("b", "/y"))]  # it fitted: no eviction


async def test_a_cancelled_wait_gives_back_what_was_granted():
    admission = Admission(budget_mib=100, max_starts=8)
    await admission.reserve(100, None, None)
    waiting = asyncio.create_task(admission.reserve(50, soon(5), None))
    await asyncio.sleep(0.01)
    admission.release(100)  # grants 50 to the waiter...
    waiting.cancel()  # ...which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert admission.free == 100


async def test_starts_in_flight_are_bounded():
    admission = Admission(budget_mib=100, max_starts=3)

    async def start():
        async with admission.starts.held():
            await asyncio.sleep(0.01)

    await asyncio.gather(*(start() for _ in range(20)))
    assert admission.starts.peak == 3


async def test_calls_come_before_min_warm_refills_queued_earlier():
    admission = Admission(budget_mib=100, max_starts=8)
    await admission.reserve(100, None, None)
    refill = asyncio.create_task(admission.reserve(60, None, ("a", "/x"), evict=False))
    await asyncio.sleep(0.01)
    for_call = asyncio.create_task(admission.reserve(60, soon(5), ("b", "/y")))
    await asyncio.sleep(0.01)
    admission.release(100)
    await for_call
    assert not refill.done()  # 40 left: the refill waits for the call's memory
    admission.release(60)
    await refill
    # A refill never takes memory while a call waits, even when it would fit.
    blocked = asyncio.create_task(admission.reserve(50, soon(5), None))
    await asyncio.sleep(0.01)
    small_refill = asyncio.create_task(admission.reserve(10, None, None, evict=False))
    await asyncio.sleep(0.01)
    assert not small_refill.done() and admission.free == 40
    admission.release(60)
    await asyncio.gather(blocked, small_refill)


async def test_a_drain_fails_waiting_and_later_reservations():
    lifecycle = Lifecycle()
    admission = Admission(budget_mib=100, max_starts=8, lifecycle=lifecycle)
    await admission.reserve(100, None, None)
    waiting = asyncio.create_task(admission.reserve(50, soon(5), None))
    await asyncio.sleep(0.01)
    lifecycle.enter(Phase.DRAINING)
    admission.refuse_waiting()
    with pytest.raises(ShuttingDown):
        await waiting
    with pytest.raises(ShuttingDown):
        await admission.reserve(1, soon(5), None)
    admission.release(100)
    assert admission.free == 100 and admission.waiting == 0


async def test_containers_at_once_are_bounded_and_a_full_host_asks_for_one_eviction():
    asked = []
    admission = Admission(1000, 8, max_containers=2)
    admission.evict_with(lambda mib, owner: asked.append(mib) or 0)
    await admission.reserve(10, None, None)
    await admission.reserve(10, None, None)
    waiting = asyncio.ensure_future(admission.reserve(10, None, None))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert asked == [1]  # memory is plenty: one container, whatever its size, must go
    admission.release(10)
    await waiting
    with pytest.raises(NoRoom, match="pid_max"):
        await admission.reserve(10, asyncio.get_running_loop().time() + 0.05, None)


async def test_a_start_for_a_call_goes_before_background_starts_waiting():
    admission = Admission(budget_mib=100, max_starts=1)
    order: list[str] = []
    await admission.starts.acquire()

    async def start(name: str, urgent: bool) -> None:
        async with admission.starts.held(urgent):
            order.append(name)

    refills = [asyncio.create_task(start(f"refill {i}", False)) for i in range(2)]
    await asyncio.sleep(0)
    call = asyncio.create_task(start("call", True))
    await asyncio.sleep(0)
    admission.starts.release()
    await asyncio.gather(*refills, call)
    assert order == ["call", "refill 0", "refill 1"]


async def test_a_start_slot_given_up_while_waiting_is_not_lost():
    admission = Admission(budget_mib=100, max_starts=1)
    await admission.starts.acquire()
    waiting = asyncio.create_task(admission.starts.acquire(urgent=False))
    await asyncio.sleep(0)
    waiting.cancel()
    admission.starts.release()  # before the cancelled waiter has run again
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(admission.starts.acquire(), 1)
    assert admission.starts.peak == 1
