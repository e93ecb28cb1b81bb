"""A `default` route's pool of pre-started containers: single-use ones, created and started
ahead of calls, each waiting in its launcher for one call (images/launcher/launch.c).

A call takes the most recently started ready one (`take`: a list pop, never a wait); the
cold runner runs the call in it (ColdRunner.run_prestarted) and hands it back to be
removed (`finished`); a replacement starts in the background as the call ends (or
REFILL_AFTER into it). With none ready the call starts cold at once, and the pool grows by
one for it (PoolPolicy.missed) up to `max_containers`; those above `min_warm` expire after
`idle_timeout`. Its upkeep is every pool's (base.py).
"""

from __future__ import annotations

from typing import Any

from executor.errors import FunctionFailed
from executor.pool.base import RoutePool
from executor.pool.container import PooledContainer

# A replacement's start (the engine's create and start) beside a call makes that call
# slower on 2 cores: a Go hello's pre-started p50 went from 10.5 to 14.6 ms, the shell
# hello's from 14.5 to 22.2 ms (benchmarks/starts.py) when it began as the call took its
# container. Most calls end sooner than this; a longer one no longer minds.
REFILL_AFTER = 0.05


class PrestartPool(RoutePool):
    def take(self, call_id: str) -> PooledContainer | None:
        """A ready pre-started container for this call, out of the pool for good; None
        when there is none (the call starts cold, and the pool grows for the next)."""
        if self.retired:
            return None
        key = self._policy.take_idle_once()
        if key is None:
            self._policy.missed()
            self._reconcile()
            return None
        c = self._containers[key]
        c.call_id = call_id  # taken: in use until its call has `finished`
        # Its replacement starts when the call ends, or REFILL_AFTER into a longer call.
        self._loop.call_later(REFILL_AFTER, self._reconcile)
        return c

    def finished(self, c: PooledContainer) -> None:
        """The call `c` served has ended: the container is removed."""
        if not c.gone:
            c.gone = True
            self._remove_later(c)
        self._reconcile()  # its replacement

    def _exited(self, c: PooledContainer) -> None:
        # In use, its call sees the exit. Before its call (the launcher found no program
        # to run, or the container was killed), it is out of the pool at once, and counts
        # as a failed start once its last output is read: starts back off.
        if c.gone or c.call_id is not None:
            return
        self._policy.remove(c.key)
        self._ctx.work.spawn(self._died_before_call(c), "pre-started container died")

    async def _died_before_call(self, c: PooledContainer) -> None:
        await c.read_last_output()
        if not c.gone:
            reason = f"exited before its call (exit status {c.exit_status()}): {c.tail()}"
            self._start_failed(c, FunctionFailed(f"pre-started container {reason}"))

    def _in_use(self) -> list[PooledContainer]:
        """Containers taken by a call that has not ended (no longer in the policy)."""
        return [c for c in self._containers.values() if c.call_id is not None and not c.gone]

    def counts(self) -> dict[str, int]:
        return {**super().counts(), "busy": len(self._in_use())}

    def state(self) -> dict[str, Any]:
        state = super().state()
        now = self._loop.time()
        for c in self._in_use():
            age = round(now - c.created, 3)
            state["containers"].append(
                {"id": (c.docker_id or "")[:12], "state": "busy", "age": age, "calls": 1}
            )
        return state
