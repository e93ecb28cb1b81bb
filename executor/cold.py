"""The cold runner: format `default`, one single-use container per call.

Cold: create -> attach -> start -> stdin in, stdout/stderr out -> exit status from the
event stream. Pre-started (`run_prestarted`, a container its route's PrestartPool made
ready): the same from stdin on, the call's environment first in the launcher's header,
and the exit status from the launcher's trailers as the function exits (the engine's
event comes ~30 ms later, after the container's teardown; it is still awaited for a
failure, as only it says whether memory ran out). Either way the container is removed in
the background after the answer, and at the deadline the caller is answered 504 at once
while the container is killed behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Coroutine
from typing import Any

from executor.admission import Admission
from executor.calls import Call, Response
from executor.config import Settings
from executor.docker import spec
from executor.docker.engine import Engine, ImageInfo, Stdio
from executor.docker.events import ContainerEvents
from executor.errors import (
    EngineError,
    FunctionFailed,
    FunctionTimedOut,
    ResponseTooLarge,
    ShuttingDown,
    from_engine,
)
from executor.formats import default
from executor.formats.budget import OutputBudget
from executor.lifecycle import Lifecycle
from executor.metrics import Metrics
from executor.pool.container import PooledContainer
from executor.pool.prestart import PrestartPool
from executor.tasks import TaskGroup

log = logging.getLogger(__name__)

# How long a timed-out call waits for its container task to hand over the log.
LOG_GRACE = 1.0


class ColdRunner:
    def __init__(
        self,
        engine: Engine,
        events: ContainerEvents,
        identity: spec.Identity,
        settings: Settings,
        metrics: Metrics,
        admission: Admission,
        lifecycle: Lifecycle,
        work: TaskGroup,
    ) -> None:
        self._metrics = metrics
        self._admission = admission
        self._engine = engine
        self._events = events
        self._identity = identity
        self._settings = settings
        self._lifecycle = lifecycle
        self._work = work  # removals
        # Each running call's container task: part of its call's path (awaited by it),
        # kept here so a shutdown can wait for them and stop the rest.
        self._running: set[asyncio.Task] = set()

    async def run(self, call: Call, image: ImageInfo) -> Response:
        # Room in the memory budget first (evicting idle hot containers if need be),
        # waited for until the deadline: the wait counts as waiting for a container.
        # NoRoom (503, server too busy) or ShuttingDown leave from here.
        await self._admission.reserve(call.route.memory, call.deadline, None)
        call.start = "cold"
        call.assigned = time.perf_counter()
        return await self._in_task(call, self._run_container(call, image))

    async def run_prestarted(self, call: Call, c: PooledContainer, pool: PrestartPool) -> Response:
        """The call in a pre-started container `pool` gave it: already in the memory
        budget, created, attached and started, waiting in its launcher."""
        call.start = "warm"
        call.assigned = call.started = time.perf_counter()
        call.container_id = c.docker_id
        return await self._in_task(call, self._run_prestarted(call, c, pool))

    async def _in_task(self, call: Call, container_life: Coroutine[Any, Any, Response]) -> Response:
        # The container's whole life is one task, shielded from the caller: when the
        # deadline cancels the wait, the task still removes what it created.
        task = asyncio.create_task(container_life)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            async with asyncio.timeout_at(call.deadline):
                return await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            # The call's log is what the function printed until now: the task leaves it
            # in call.log as it stops (at once), before the call's record is written.
            await asyncio.wait({task}, timeout=LOG_GRACE)
            self._metrics.container_event(call.app.name, call.route.path, "timeout")
            raise FunctionTimedOut(call.route.timeout) from None
        except asyncio.CancelledError:
            if self._lifecycle.stopping and not _current_task_cancelled():
                raise ShuttingDown() from None
            task.cancel()  # the caller went away: stop the function too
            raise

    async def _run_container(self, call: Call, image: ImageInfo) -> Response:
        env = default.environment(call)
        config = spec.cold_container(
            identity=self._identity,
            app=call.app,
            route=call.route,
            image=image,
            call_id=call.id,
            env=env,
            pids_limit=self._settings.pids_limit,
        )
        memory = call.route.memory
        # A start slot from before the create to after the start (_exchange frees it).
        try:
            await self._admission.starts.acquire()
        except BaseException:
            self._admission.release(memory)  # the deadline passed while it waited
            raise
        began = time.perf_counter()
        try:
            container_id = await self._engine.create(config)
        except BaseException as exc:
            self._admission.starts.release()
            self._admission.release(memory)  # nothing was created (create is cancel-safe)
            if isinstance(exc, EngineError):
                raise from_engine(exc, call.route.image) from None
            raise
        call.container_id = container_id
        try:
            return await self._exchange(call, container_id, began)
        finally:
            self._events.forget(container_id)
            self._work.spawn(self._remove(container_id, memory), "remove cold container")

    async def _exchange(self, call: Call, container_id: str, began: float) -> Response:
        exited = self._events.expect_exit(container_id)
        try:
            stdio = await self._engine.attach(container_id)
            await self._engine.start(container_id)
        except EngineError as exc:
            raise from_engine(exc, call.route.image) from None
        finally:
            self._admission.starts.release()
        call.started = time.perf_counter()
        app, path = call.app.name, call.route.path
        self._metrics.container_started(app, path, "default", call.started - began)
        return await self._collect(call, container_id, stdio, exited, b"", None)

    async def _run_prestarted(self, call: Call, c: PooledContainer, pool: PrestartPool) -> Response:
        assert c.docker_id is not None and c.stdio is not None and c.exited is not None
        nonce = secrets.token_bytes(default.NONCE_SIZE)
        head = default.launcher_header(default.environment(call), nonce)
        try:
            return await self._collect(call, c.docker_id, c.stdio, c.exited, head, nonce)
        finally:
            pool.finished(c)  # removed, its memory given back

    async def _collect(
        self,
        call: Call,
        container_id: str,
        stdio: Stdio,
        exited: asyncio.Future[int],
        head: bytes,
        nonce: bytes | None,
    ) -> Response:
        """Feeds stdin (`head`, a launcher's header, then the call's body), reads stdout
        and stderr until the function exits, and answers from its exit status."""
        app, path = call.app.name, call.route.path
        feeding = asyncio.create_task(_feed(stdio, head, call.body))
        settings = self._settings
        output = default.Output(settings.max_response_bytes, settings.max_log_bytes, nonce)
        budget = OutputBudget.of(settings, asyncio.get_running_loop().time)
        reader = _OutputReader(stdio, exited)
        try:
            while output.exit_status is None and (chunk := await reader.next()) is not None:
                if chunk[0] == default.STDERR and (pause := budget.spend(len(chunk[1]))):
                    # Past the budget the function's stderr is read slowly, so its writes
                    # block: the log keeps its first max_log_bytes either way.
                    if budget.throttled == 1:
                        self._metrics.container_event(app, path, "output_flood")
                    await asyncio.sleep(pause)
                if not output.add(*chunk):
                    # Killed by the removal that follows, once the attach stream is
                    # closed: while its output is unread the engine cannot reap it.
                    raise ResponseTooLarge(settings.max_response_bytes)
            if output.too_large:  # a launcher's trailer missing where it was allowed for
                raise ResponseTooLarge(settings.max_response_bytes)
            status = output.exit_status
            if status != 0:
                # No trailer (a cold container, or the launcher itself was killed) or a
                # failure: the engine's word, which alone knows an OOM kill.
                engine_status = await asyncio.shield(exited)
                status = engine_status if status is None else status
        except EngineError as exc:
            raise from_engine(exc, call.route.image) from None
        finally:
            call.log = output.log
            reader.close()
            feeding.cancel()
            await stdio.close()
        if status == 0:
            return Response(200, output.body)
        if self._lifecycle.stopping:
            raise ShuttingDown()  # killed by the shutdown, not by its own fault
        if self._events.was_oom_killed(container_id):
            self._metrics.container_event(app, path, "oom")
            raise FunctionFailed(f"out of memory (limit {call.route.memory} MiB)")
        self._metrics.container_event(app, path, "crash")
        raise FunctionFailed(f"function failed: exit status {status}")

    async def _remove(self, container_id: str, memory: int) -> None:
        try:
            await self._engine.remove(container_id)
        except EngineError as exc:
            log.warning("could not remove container %s: %s", container_id[:12], exc.message)
        finally:
            self._admission.release(memory)  # gone (or as gone as it will get)

    async def wait_idle(self) -> None:
        """Until no call runs here (the drain waits for this, bounded by its grace)."""
        while self._running:
            await asyncio.wait(set(self._running))

    async def stop(self) -> None:
        """Past the grace: stops every call still running (answered 503) and waits for
        their tasks to end; their containers' removals run in the `work` group."""
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(set(self._running))


# After the container exits, how long its output may take to end. The engine holds the
# attach stream open while its copy of stdin is stuck: a function that exited without
# reading a large body never ends its stream (a read would wait for the deadline).
EXIT_DRAIN = 0.5


class _OutputReader:
    """A container's output chunks until EOF, or EXIT_DRAIN after it has exited."""

    def __init__(self, stdio: Stdio, exited: asyncio.Future[int]) -> None:
        self._stdio = stdio
        self._exited = exited
        self._reading: asyncio.Future | None = None
        self._until: float | None = None

    async def next(self) -> tuple[int, bytes] | None:
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._stdio.read())
        reading = self._reading
        if not self._exited.done():
            await asyncio.wait({reading, self._exited}, return_when=asyncio.FIRST_COMPLETED)
        if not reading.done():
            if self._until is None:
                self._until = asyncio.get_running_loop().time() + EXIT_DRAIN
            try:
                async with asyncio.timeout_at(self._until):
                    await asyncio.shield(reading)
            except TimeoutError:
                return None
        self._reading = None
        return reading.result()

    def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()


def _current_task_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _feed(stdio: Stdio, head: bytes, body: bytes) -> None:
    # A function may exit without reading its input; a broken pipe is not an error here.
    # The head and the body go in two writes: the body is never copied to join them.
    with contextlib.suppress(EngineError, RuntimeError):
        for part in (head, body):
            if part:
                await stdio.write(part)
        stdio.end_input()
