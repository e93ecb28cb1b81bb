"""Host admission: what every function container of this executor may take together.

- Memory: each container reserves its route's `memory` from a server-wide budget (default
  80% of the host's memory) from before it is created until it is removed. A call whose
  container does not fit first has idle hot containers of other routes evicted (least
  recently used first), then waits, first come first served, until its deadline.
- Starts: at most `max_starts` containers are being created and started at once, so a
  burst of cold calls queues here instead of stampeding the engine. Starts for calls
  (cold calls, hot starts calls wait for) go before background ones (min_warm refills,
  pre-starts): a cold call never waits behind a pre-start.
- Containers: at most `max_containers` at once, each reservation taking one (so that
  every container's `PidsLimit` together stays well below the host's pid_max); a full
  host evicts and waits as for memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from executor.errors import ServerBusy, ShuttingDown
from executor.lifecycle import Lifecycle

MiB = 1024 * 1024

# Frees memory for a reservation: (MiB wanted, the route asking, as (app, path), or None
# for a cold call) -> MiB whose release is under way. Hot pools evict idle containers.
Evictor = Callable[[int, tuple[str, str] | None], int]


class NoRoom(ServerBusy):
    """No memory for the container before the deadline (or ever: over the whole budget)."""


def host_memory_mib() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MiB


def host_container_limit(pids_limit: int) -> int:
    """Containers at once whose PidsLimit together is half the host's pid_max: the other
    half stays for the host (32,768 here, with 128 a container: 128 containers)."""
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = int(f.read())
    except (OSError, ValueError):
        pid_max = 32768  # the kernel's default
    return max(pid_max // 2 // max(pids_limit, 1), 1)


@dataclass(eq=False, slots=True)
class _Waiter:
    mib: int
    future: asyncio.Future[None]


class Admission:
    def __init__(
        self,
        budget_mib: int,
        max_starts: int,
        max_containers: int = 1 << 30,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.budget = budget_mib
        self.free = budget_mib
        self.max_containers = max_containers
        self.slots = max_containers  # containers that may still be reserved
        self.starts = StartSlots(max_starts)
        # Reservations for calls come before those for min_warm refills (which may wait):
        # memory freed by evicting for a call must not go to a refill queued earlier.
        self._for_calls: collections.deque[_Waiter] = collections.deque()
        self._for_refills: collections.deque[_Waiter] = collections.deque()
        self._evict: Evictor | None = None
        self._lifecycle = lifecycle or Lifecycle()

    @property
    def reserved(self) -> int:
        """MiB reserved now, of the budget."""
        return self.budget - self.free

    def refuse_waiting(self) -> None:
        """At the drain: every reservation waiting fails (ShuttingDown), as every later one
        does while the executor drains."""
        for queue in (self._for_calls, self._for_refills):
            while queue:
                queue.popleft().future.set_exception(ShuttingDown())

    def evict_with(self, evictor: Evictor) -> None:
        self._evict = evictor

    async def reserve(
        self, mib: int, deadline: float | None, owner: tuple[str, str] | None, evict: bool = True
    ) -> None:
        """Takes `mib` from the budget, waiting (until `deadline`, loop time) for room.
        `evict`: for a call, which may have idle hot containers of other routes removed
        to make room; without it (a min_warm refill) it waits behind every call."""
        if self._lifecycle.draining:
            raise ShuttingDown()
        if mib > self.budget:
            raise NoRoom(f"memory {mib} MiB is more than the executor's budget ({self.budget} MiB)")
        queue = self._for_calls if evict else self._for_refills
        ahead = self._for_calls if evict else (self._for_calls or self._for_refills)
        if not ahead and mib <= self.free and self.slots:
            self.free -= mib
            self.slots -= 1
            return
        if evict and self._evict is not None:
            # At least one container goes when the host is out of container slots.
            self._evict(max(mib - self.free, 0 if self.slots else 1), owner)
        waiter = _Waiter(mib, asyncio.get_running_loop().create_future())
        queue.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter.future
        except BaseException as exc:
            granted = (
                waiter.future.done()
                and not waiter.future.cancelled()
                and waiter.future.exception() is None
            )
            if isinstance(exc, ShuttingDown):
                raise
            if granted:
                self.release(mib)  # granted just as it gave up: give it back
            else:
                waiter.future.cancel()
                queue.remove(waiter)
                self._grant()  # it may have been the head holding others back
            if isinstance(exc, TimeoutError) and not self.slots:
                raise NoRoom(
                    f"no room for another container before the deadline ({self.max_containers} "
                    "running: the host's pid_max bounds them, EXECUTOR_MAX_HOST_CONTAINERS)"
                ) from None
            if isinstance(exc, TimeoutError):
                raise NoRoom(
                    f"no memory for a {mib} MiB container before the deadline "
                    f"({self.reserved} of {self.budget} MiB in use)"
                ) from None
            raise

    def release(self, mib: int) -> None:
        """Gives back one container's reservation."""
        self.free += mib
        self.slots += 1
        self._grant()

    def _grant(self) -> None:
        # First come, first served within each queue, calls first: a large reservation
        # at a head is not overtaken, and refills wait while any call does.
        for queue in (self._for_calls, self._for_refills):
            while queue and queue[0].mib <= self.free and self.slots:
                waiter = queue.popleft()
                self.free -= waiter.mib
                self.slots -= 1
                waiter.future.set_result(None)
            if queue:
                return

    @property
    def waiting(self) -> int:
        return len(self._for_calls) + len(self._for_refills)


class StartSlots:
    """At most `size` starts at once; those for calls (`urgent`) are granted before any
    background one waiting. `peak` is the most held at once (tests read it)."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._later: collections.deque[asyncio.Future[None]] = collections.deque()
        self._held = 0
        self.peak = 0

    async def acquire(self, urgent: bool = True) -> None:
        if self._free and not self._urgent and (urgent or not self._later):
            self._take()
            return
        future = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._later
        queue.append(future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # granted just as it gave up: pass it on
            else:
                with contextlib.suppress(ValueError):  # release() may have dropped it
                    queue.remove(future)
            raise

    def _take(self) -> None:
        self._free -= 1
        self._held += 1
        self.peak = max(self.peak, self._held)

    def release(self) -> None:
        self._free += 1
        self._held -= 1
        for queue in (self._urgent, self._later):
            while queue and self._free:
                future = queue.popleft()
                if not future.done():
                    self._take()
                    future.set_result(None)

    @contextlib.asynccontextmanager
    async def held(self, urgent: bool = True) -> AsyncIterator[None]:
        await self.acquire(urgent)
        try:
            yield
        finally:
            self.release()
