"""The pool policy of one route: which container a call gets, when to start one (as many
as the waiting calls need, from moving averages of call and start times), when an idle
one expires (after `idle_timeout`, or by the route's rhythm: rhythm.py), how failing
starts back off.

Pure and deterministic: no Docker, no sockets, no asyncio. Time comes from an injected
clock, containers and waiting calls are opaque keys, and every decision is a return value,
so the [bench] simulator can replay a day of calls through it in simulated time. The IO
driver (pool/base.py's `RoutePool`) tells it what happened and carries out what it answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from executor.pool.rhythm import FALLBACK, IdleRhythm, Windows

W = TypeVar("W", bound=Hashable)  # a waiting call

SlotState = Literal["starting", "idle", "busy"]

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
# Weight of the newest sample in the pool's moving averages of call and start times.
EWMA_WEIGHT = 0.2
# While calls wait and the averages held starts back, how often to look again (a call
# running longer than the average means the function is slower than it was).
RECHECK = 0.05


@dataclass(frozen=True, slots=True)
class Limits:
    min_warm: int
    max_containers: int
    idle_timeout: float | None  # None: "auto", from the route's rhythm (rhythm.py)


@dataclass(slots=True)
class Slot:
    key: str
    state: SlotState
    created: float
    last_used: float
    calls: int = 0


@dataclass(slots=True)
class Assignment(Generic[W]):
    waiter: W
    key: str
    # True when the container was ready before the call was assigned to it.
    warm: bool


@dataclass(slots=True)
class _Queue(Generic[W]):
    # dicts as ordered sets: first come, first served, O(1) removal of a given waiter.
    urgent: dict[W, None] = field(default_factory=dict)  # sync calls
    later: dict[W, None] = field(default_factory=dict)  # async calls

    def __len__(self) -> int:
        return len(self.urgent) + len(self.later)

    def pop(self) -> W | None:
        for queue in (self.urgent, self.later):
            if queue:
                waiter = next(iter(queue))
                del queue[waiter]
                return waiter
        return None


class PoolPolicy(Generic[W]):
    def __init__(
        self, limits: Limits, clock: Callable[[], float], rhythm: IdleRhythm | None = None
    ) -> None:
        self.limits = limits
        self._clock = clock
        # The route's idle times (kept whatever its idle_timeout, used when it is "auto").
        self.rhythm = rhythm or IdleRhythm()
        # The end of the last call, while no call runs (an idle period); and whether a
        # container was started again in it at the rhythm's pre-warm point.
        self._idle_since: float | None = None
        self._prewarmed = False
        self._slots: dict[str, Slot] = {}
        # Idle containers, least recently used first: calls take from the end (most
        # recently used, so the rest can expire), expiry takes from the front.
        self._idle: list[str] = []
        self._queue: _Queue[W] = _Queue()
        self._failures = 0
        self._backoff_until = 0.0
        self._starting = 0  # kept as a count: asked on every call that has to wait
        # Starts wanted beyond min_warm for calls that found no idle container and were
        # served elsewhere (a pre-start pool's cold fallbacks): a burst grows the pool.
        self._missed = 0
        # Moving averages (seconds) of a call's time in its container and of a start, from
        # `observed_call` and `observed_start`: None until measured.
        self.service_time: float | None = None
        self.start_time: float | None = None

    # -- what the pool holds -------------------------------------------------------------

    def slots(self) -> list[Slot]:
        return list(self._slots.values())

    def count(self, state: SlotState) -> int:
        if state == "idle":
            return len(self._idle)
        if state == "starting":
            return self._starting
        return len(self._slots) - len(self._idle) - self._starting

    def is_idle(self, key: str) -> bool:
        slot = self._slots.get(key)
        return slot is not None and slot.state == "idle"

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def backing_off(self) -> bool:
        return self._clock() < self._backoff_until

    # -- calls ---------------------------------------------------------------------------

    def acquire_idle(self) -> str | None:
        """The most recently used idle container, taken for a call; None if none is idle
        (or calls already wait: they come first)."""
        self._arrived()
        if self._idle and not self._queue:
            key = self._idle.pop()
            self._use(key)
            return key
        return None

    def take_idle_once(self) -> str | None:
        """The most recently started idle container, out of the pool for good: it serves
        one call (a pre-start pool's single-use container); None if none is idle."""
        self._arrived()
        if not self._idle:
            return None
        key = self._idle.pop()
        del self._slots[key]
        return key

    def enqueue(self, waiter: W, urgent: bool = True) -> None:
        """No idle container: the call waits, first come first served, sync (`urgent`)
        calls before async ones."""
        (self._queue.urgent if urgent else self._queue.later)[waiter] = None

    def cancel(self, waiter: W) -> bool:
        """The call stopped waiting (deadline, caller gone); True if it was still queued."""
        for queue in (self._queue.urgent, self._queue.later):
            if waiter in queue:
                del queue[waiter]
                return True
        return False

    def drain_queue(self) -> list[W]:
        """Every waiting call, in order, taken out of the queue."""
        waiters = [*self._queue.urgent, *self._queue.later]
        self._queue = _Queue()
        return waiters

    def missed(self) -> None:
        """A call found no idle container and did not wait (a pre-start pool's call went
        cold): one more container is wanted, within `max_containers`. Those above
        `min_warm` expire after `idle_timeout` like any idle container."""
        room = max(self.limits.max_containers - len(self._slots), 0)
        self._missed = min(self._missed + 1, room)

    def observed_call(self, seconds: float) -> None:
        """A call took `seconds` in its container."""
        self.service_time = _ewma(self.service_time, seconds)

    def observed_start(self, seconds: float) -> None:
        """A container took `seconds` from its start to ready."""
        self.start_time = _ewma(self.start_time, seconds)

    def should_fail_fast(self) -> bool:
        """No container at all and starts are backing off after failures: a new call would
        only wait for a start that is likely to fail too."""
        return not self._slots and self.backing_off()

    # -- containers ----------------------------------------------------------------------

    def starts_wanted(self) -> int:
        """How many containers to start now: up to `min_warm`, plus one for each waiting
        call that no starting container will serve (or each call `missed`), never past
        `max_containers`."""
        if self.backing_off():
            return 0
        total = len(self._slots)
        wanted = (self.limits.min_warm - total, self._uncovered(), self._prewarm_due())
        need = max(*wanted, 0) + self._missed
        return max(min(need, self.limits.max_containers - total), 0)

    def _uncovered(self) -> int:
        """Starts the waiting calls need. Until the pool has measured its calls and starts:
        one for each waiting call no starting container will serve. Then only as many as
        the calls the containers serving or starting will not reach before a container
        started now would be ready: a function that answers in 1 ms drains 200 waiting
        calls in one container sooner than eight starting at once on 2 cores get ready
        (benchmarks/burst.py), while one that takes 500 ms a call gets every container it
        may have at once."""
        waiting = len(self._queue)
        if not waiting:
            return 0
        if self.service_time is None or self.start_time is None:
            return waiting - self._starting
        have = len(self._slots)
        if not have:
            return 1
        # Calls one container serves while another starts; a call running longer than the
        # average says the function is slower now.
        service = max(self.service_time, self._longest_call(), 1e-6)
        per_container = self.start_time / service
        backlog = waiting - have * per_container
        return math.ceil(backlog / per_container) if backlog > 0 else 0

    # -- the route's rhythm (idle_timeout "auto") ----------------------------------------

    def _arrived(self) -> None:
        if self._idle_since is not None:
            self.rhythm.observe(self._clock() - self._idle_since)
            self._idle_since = None

    def _windows(self) -> Windows | None:
        return self.rhythm.windows() if self.limits.idle_timeout is None else None

    def _expires_at(self, slot: Slot) -> float:
        """When an idle container above min_warm goes: `idle_timeout` after its last use;
        "auto": as the route's rhythm says (rhythm.py), FALLBACK while it is unknown."""
        if self.limits.idle_timeout is not None:
            return slot.last_used + self.limits.idle_timeout
        windows = self._windows()
        if windows is None or len(self._slots) > max(self.limits.min_warm, 1):
            # The rhythm is the route's: it keeps the one container that serves its next
            # call. Those a burst added go like a fixed setting's.
            return slot.last_used + FALLBACK
        since = self._idle_since
        if since is None:
            return slot.last_used + windows.keep_until  # calls run meanwhile
        if windows.prewarm and slot.last_used < since + windows.prewarm:
            return slot.last_used  # goes now; one is started again at the pre-warm point
        return since + windows.keep_until

    def _prewarm_at(self) -> float | None:
        windows = self._windows()
        if windows is None or not windows.prewarm or self._idle_since is None:
            return None
        if self._prewarmed:
            return None
        return self._idle_since + windows.prewarm

    def _prewarm_due(self) -> int:
        """1 when the rhythm says the next call is near and no container waits for it."""
        at = self._prewarm_at()
        if at is None or self._idle or self._starting:
            return 0
        windows = self._windows()
        assert windows is not None and self._idle_since is not None
        return int(at <= self._clock() < self._idle_since + windows.keep_until)

    def _held_back(self) -> bool:
        """Calls wait while the averages keep the pool below max_containers."""
        measured = self.service_time is not None and self.start_time is not None
        room = len(self._slots) < self.limits.max_containers
        return bool(self._queue) and measured and room and not self.backing_off()

    def _longest_call(self) -> float:
        now = self._clock()
        busy = (now - slot.last_used for slot in self._slots.values() if slot.state == "busy")
        return max(busy, default=0.0)

    def starting(self, key: str) -> None:
        if self._missed and len(self._slots) >= self.limits.min_warm:
            self._missed -= 1
        if self._prewarm_due():
            self._prewarmed = True
        now = self._clock()
        self._slots[key] = Slot(key, "starting", created=now, last_used=now)
        self._starting += 1

    def ready(self, key: str) -> Assignment[W] | None:
        """A container became ready: it serves the first waiting call (a fresh start),
        else it goes idle."""
        if key not in self._slots:
            return None
        self._failures = 0
        self._backoff_until = 0.0
        self._starting -= 1
        waiter = self._queue.pop()
        if waiter is None:
            self._go_idle(key)
            return None
        self._use(key)
        return Assignment(waiter, key, warm=False)

    def start_failed(self, key: str) -> list[W]:
        """A start failed (exited before ready, timed out, engine error). Starts back off,
        doubling per consecutive failure. When no container is left to serve them, the
        waiting calls are returned: they get the failure instead of waiting for nothing."""
        if self._slots.pop(key, None) is not None:
            self._starting -= 1
        self._failures += 1
        delay = min(BACKOFF_FIRST * 2 ** (self._failures - 1), BACKOFF_MAX)
        self._backoff_until = self._clock() + delay
        if self._slots:
            return []
        return self.drain_queue()

    def release(self, key: str) -> Assignment[W] | None:
        """A call finished and its container is fine: it serves the first waiting call
        (warm: it was ready before that call got it), else it goes idle."""
        if key not in self._slots:
            return None
        waiter = self._queue.pop()
        if waiter is None:
            self._go_idle(key)
            if self.count("busy") == 0:
                self._idle_since = self._clock()  # no call runs: an idle period begins
                self._prewarmed = False
            return None
        self._use(key)
        return Assignment(waiter, key, warm=True)

    def remove(self, key: str) -> None:
        """A container is gone or going (died, broke the protocol, timed out, retired)."""
        slot = self._slots.pop(key, None)
        if slot is not None and slot.state == "idle":
            self._idle.remove(key)
        elif slot is not None and slot.state == "starting":
            self._starting -= 1

    def take_idle(self) -> list[str]:
        """Every idle container, taken out of the pool (a drain or a shutdown)."""
        keys, self._idle = self._idle, []
        for key in keys:
            del self._slots[key]
        return keys

    def expired(self) -> list[str]:
        """Idle containers above `min_warm` unused for `idle_timeout`, least recently used
        first; they are taken out of the pool and the caller removes them."""
        now = self._clock()
        out: list[str] = []
        while (
            self._idle
            and len(self._slots) > self.limits.min_warm
            and now >= self._expires_at(self._slots[self._idle[0]])
        ):
            key = self._idle.pop(0)
            del self._slots[key]
            out.append(key)
        return out

    def next_wakeup(self) -> float | None:
        """When the driver should look again (an idle expiry, or the end of a backoff
        with starts still wanted); None when nothing is due."""
        times: list[float] = []
        if self._held_back():
            times.append(self._clock() + RECHECK)
        if self._idle and len(self._slots) > self.limits.min_warm:
            times.append(self._expires_at(self._slots[self._idle[0]]))
        if (prewarm_at := self._prewarm_at()) is not None and self._clock() < prewarm_at:
            times.append(prewarm_at)
        if self.backing_off():
            total = len(self._slots)
            uncovered = len(self._queue) > self.count("starting")
            if total < self.limits.min_warm or uncovered or self._missed:
                times.append(self._backoff_until)
        return min(times) if times else None

    # -- internals -----------------------------------------------------------------------

    def _use(self, key: str) -> None:
        slot = self._slots[key]
        slot.state = "busy"
        slot.calls += 1
        slot.last_used = self._clock()

    def _go_idle(self, key: str) -> None:
        slot = self._slots[key]
        slot.state = "idle"
        slot.last_used = self._clock()
        self._idle.append(key)


def _ewma(average: float | None, sample: float) -> float:
    return sample if average is None else average + EWMA_WEIGHT * (sample - average)
