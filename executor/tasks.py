"""Background work: every task the executor starts outside a call's own path is spawned in
a `TaskGroup`, which logs a task that crashes and stops what is left at shutdown.

hypercorn's task group is the model: one owner per lifetime, so a shutdown is "close the
group" rather than a cancel rule per part. The executor has two (runtime.py): `services`,
the streams that run for its whole life (engine events, the records writer, the orphan
sweep), and `work`, container starts and removals that must finish before the engine
client closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

# How long a cancelled task may take to stop (a removal's engine call in flight).
STOP_WAIT = 5.0


class TaskGroup:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        """Runs `coro` in the background. Spawning still works while the group closes:
        a removal started by a drain must run, and `close` waits for it too."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def every(self, seconds: float, step: Callable[[], Awaitable[None]], name: str) -> asyncio.Task:
        """Runs `step` every `seconds` (a wait, then the step) until the group closes. A
        step handles its own errors: one that raises ends the loop, logged as a crash."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                await step()

        return self.spawn(loop(), name)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task %s (%s) crashed", task.get_name(), self.name, exc_info=exc)

    async def close(self, grace: float) -> None:
        """Waits up to `grace` seconds for the tasks (those they spawn meanwhile too),
        then cancels what is left and waits for it to stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._tasks and (left := deadline - loop.time()) > 0:
            await asyncio.wait(set(self._tasks), timeout=left)
        while self._tasks:
            pending = set(self._tasks)
            for task in pending:
                task.cancel()
            _, stuck = await asyncio.wait(pending, timeout=STOP_WAIT)
            if stuck:
                log.error("%d background task(s) of %s ignore cancellation", len(stuck), self.name)
                return
