"""What every pool of a route shares: containers started ahead of calls, kept to
`min_warm`, grown for demand up to `max_containers`, expired after `idle_timeout`, evicted
for other routes' memory, replaced when they die, backing off when starts fail, drained
when the route changes (pool/container.py is one container's life).

The IO driver of `PoolPolicy`: it tells the policy what happened (a container started,
became ready, died) and carries out what the policy answers. Starting and removing
containers run in background tasks, never on a call's path. The call paths are the
subclasses': `HotPool` (hot.py: call after call per container) and `PrestartPool`
(prestart.py: one call per container, the rest start cold).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from executor.errors import ExecutorError, FunctionFailed, ShuttingDown
from executor.metrics import ContainerEvent
from executor.models import App, Route
from executor.pool.container import PoolContext, PooledContainer
from executor.pool.policy import Assignment, Limits, PoolPolicy
from executor.pool.rhythm import IdleRhythm

log = logging.getLogger(__name__)


class PoolRetired(Exception):
    """The pool was drained (route changed or deleted): the call tries the route's new pool."""


class RoutePool:
    def __init__(
        self,
        ctx: PoolContext,
        app: App,
        route: Route,
        body: dict[str, Any],
        key: str,
        rhythm: IdleRhythm | None = None,
    ) -> None:
        self._ctx = ctx
        self._loop = asyncio.get_running_loop()
        self.app = app
        self.route = route
        self.key = key
        self._body = body
        limits, clock = _limits(route), self._loop.time
        self._policy: PoolPolicy[asyncio.Future] = PoolPolicy(limits, clock, rhythm)
        self._containers: dict[str, PooledContainer] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._last_start_error: ExecutorError | None = None
        # Takes no calls: drained (the route changed or went, or the executor drains).
        self.retired = False
        self.empty = asyncio.Event()

    def _event(self, event: ContainerEvent) -> None:
        self._ctx.metrics.container_event(self.app.name, self.route.path, event)

    # -- pool upkeep (never awaited by a call) -------------------------------------------

    def update(self, app: App, route: Route) -> None:
        """Fields that change in place: min_warm, max_containers, timeout, idle_timeout."""
        self.app = app
        self.route = route
        self._policy.limits = _limits(route)
        self._reconcile()

    def _reconcile(self) -> None:
        if self.retired:
            return
        for _ in range(self._policy.starts_wanted()):
            key = secrets.token_hex(6)
            where = (self.app.name, self.route.path)
            container = PooledContainer(self._ctx, key, where, self.route)
            self._containers[key] = container
            self._policy.starting(key)
            starter = self._ctx.work.spawn(self._start(container), "start pooled container")
            starter.add_done_callback(lambda task, c=container: self._start_ended(task, c))
            container.starter = starter
        for key in self._policy.expired():
            self._event("evicted")
            self._discard(self._containers[key], "idle timeout")
        self._schedule()

    def _schedule(self) -> None:
        when = self._policy.next_wakeup()
        if self._timer is not None:
            if when is not None and self._timer.when() == when + 0.001:
                return  # already set for then
            self._timer.cancel()
            self._timer = None
        if when is not None and not self.retired:
            self._timer = self._loop.call_at(when + 0.001, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._reconcile()

    def _hand_over(self, assignment: Assignment | None) -> None:
        # A container for a waiting call (hot pools: calls never wait in a pre-start
        # pool). A waiter already gone (timed out as it was served) passes it on.
        while assignment is not None and assignment.waiter.done():
            assignment = self._policy.release(assignment.key)
        if assignment is not None:
            if assignment.warm:
                assigned = time.perf_counter()
            else:
                assigned = self._containers[assignment.key].start_began
            assignment.waiter.set_result((assignment.key, assignment.warm, assigned))

    async def _start(self, c: PooledContainer) -> None:
        try:
            await c.start(
                self._body, evict=self._policy.waiting > 0, on_exit=lambda: self._exited(c)
            )
        except ExecutorError as exc:
            self._start_failed(c, exc)
            return
        if c.gone:
            return
        if self.retired:
            self._discard(c, "pool drained")
            return
        self._policy.observed_start(time.perf_counter() - c.start_began)
        self._hand_over(self._policy.ready(c.key))
        self._went_idle(c)
        self._reconcile()

    def _went_idle(self, c: PooledContainer) -> None:
        """A container may have gone idle (hot pools pause it later, when set to)."""

    def _start_ended(self, task: asyncio.Task, c: PooledContainer) -> None:
        # Cancelled while starting (discarded: drain, shutdown), perhaps before it ran at
        # all: what was made so far is removed. A crash (logged by the task group) fails
        # the calls waiting for it like any failed start.
        if task.cancelled():
            c.gone = True
            self._policy.remove(c.key)
            self._remove_later(c)
        elif (exc := task.exception()) is not None:
            self._start_failed(c, FunctionFailed(f"container could not be started: {exc!r}"))

    def _start_failed(self, c: PooledContainer, error: ExecutorError) -> None:
        (log.debug if isinstance(error, ShuttingDown) else log.warning)(
            "container for %s%s failed to start: %s",
            self.app.name,
            self.route.path,
            error.message,
        )
        self._last_start_error = error
        self._event("start_failed")
        c.gone = True  # the policy forgets it below, not as a removal
        waiters = self._policy.start_failed(c.key)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error.again())
        self._remove_later(c)
        self._reconcile()

    def _exited(self, c: PooledContainer) -> None:
        """The container exited (its engine event): the subclass says what that means."""
        raise NotImplementedError

    def _discard(self, c: PooledContainer, reason: str) -> None:
        """Takes the container out of the pool and removes it in the background."""
        if c.gone:
            return
        log.debug("removing container %s (%s)", c.docker_id, reason)
        c.gone = True
        self._policy.remove(c.key)
        if c.starter is not None and not c.starter.done():
            c.starter.cancel()  # the start removes what it made
        else:
            self._remove_later(c)
        self._reconcile()

    def _remove_later(self, c: PooledContainer) -> None:
        c.remove_later(lambda: self._removed(c))

    def _removed(self, c: PooledContainer) -> None:
        self._containers.pop(c.key, None)
        if not self._containers:
            self.empty.set()

    # -- drain and state -----------------------------------------------------------------

    def retire(self) -> None:
        """Stops taking calls: waiting calls move to the route's new pool (or fail when
        there is none), idle containers go now, busy ones when their call ends."""
        if self.retired:
            return
        self.retired = True
        if self._timer is not None:
            self._timer.cancel()
        for waiter in self._policy.drain_queue():
            if not waiter.done():
                waiter.set_exception(PoolRetired())
        for key in self._policy.take_idle():
            c = self._containers[key]
            c.gone = True
            self._remove_later(c)
        for slot in self._policy.slots():
            if slot.state == "starting":
                self._discard(self._containers[slot.key], "pool drained")
        if not self._containers:
            self.empty.set()

    def remove_all(self) -> None:
        """Removes every container now, busy ones included (the end of a shutdown)."""
        self.retire()
        for c in list(self._containers.values()):
            if not c.gone:
                self._discard(c, "shutting down")

    def idle(self) -> list[tuple[float, str]]:
        """(last used, key) of each idle container."""
        return [(s.last_used, s.key) for s in self._policy.slots() if s.state == "idle"]

    def evict(self, key: str) -> int:
        """Removes an idle container to make room for another route's; the MiB it frees."""
        c = self._containers.get(key)
        if c is None or c.gone:
            return 0
        self._event("evicted")
        self._discard(c, "evicted to make room in the memory budget")
        return c.reserved

    def counts(self) -> dict[str, int]:
        return {state: self._policy.count(state) for state in ("idle", "busy", "starting")}

    @property
    def waiting(self) -> int:
        """Calls waiting for one of its containers."""
        return self._policy.waiting

    def state(self) -> dict[str, Any]:
        now = self._loop.time()
        containers = []
        for slot in self._policy.slots():
            c = self._containers.get(slot.key)
            containers.append(
                {
                    "id": (c.docker_id or "")[:12] if c else "",
                    "state": slot.state,
                    "age": round(now - slot.created, 3),
                    "calls": slot.calls,
                }
            )
        return {
            **self.counts(),
            "waiting": self.waiting,
            "containers": containers,
        }


def _limits(route: Route) -> Limits:
    idle = None if route.idle_timeout == "auto" else float(route.idle_timeout)
    return Limits(route.min_warm, route.max_containers, idle)
