"""One pooled container's life, in one place (the Fn agent's cookie.go is the model):
room in the memory budget, its iofs tmpfs, create, attach, start, readiness, the checked
connection to its socket, its output read within a budget, why it died, and its removal.

Hot containers (`http-stream`, `http`) serve call after call. A pre-started `default`
container serves one: it waits in its launcher, with its attach stream left for that
call to use (the cold runner's exchange), and is removed after it.

The pools (hot.py, prestart.py) decide when containers start and go and which call each
serves; everything they ask of one container is a method here. Failures leave as named
`ExecutorError`s, translated once in `_start_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executor.admission import Admission
from executor.config import Settings
from executor.docker import spec
from executor.docker.engine import Engine, Stdio
from executor.docker.events import ContainerEvents
from executor.errors import (
    EngineError,
    ExecutorError,
    FunctionFailed,
    StartTimedOut,
    from_engine,
)
from executor.formats import http_stream
from executor.formats.budget import OutputBudget
from executor.formats.default import STDOUT
from executor.formats.logframe import LogFrames
from executor.lifecycle import Lifecycle
from executor.metrics import ContainerEvent, Metrics
from executor.models import Route
from executor.pool import iofs
from executor.pool.connection import HotConnection, StdioTransport
from executor.pool.iofs import UnsafeSocket
from executor.pool.readiness import SocketWatcher
from executor.tasks import TaskGroup

log = logging.getLogger(__name__)

# The end of a container's output kept to explain a failed start.
OUTPUT_TAIL = 2048
# After a broken connection, how long to wait for the engine's word on why (OOM, exit).
DEATH_NOTICE = 1.0
# The steps of a start, timed for the debug log.
START_STEPS = ("create", "attach", "start", "socket", "connect")


@dataclass(frozen=True, slots=True)
class PoolContext:
    """What every pooled container of this executor shares."""

    engine: Engine
    events: ContainerEvents
    watcher: SocketWatcher
    settings: Settings
    iofs_root: Path
    iofs_host_root: Path  # iofs_root as the engine sees it (differs when we run in a container)
    metrics: Metrics
    admission: Admission
    # Where a hot call's log lines go (call id, bytes): the call records.
    on_log: Callable[[str, bytes], None]
    lifecycle: Lifecycle
    work: TaskGroup  # starts, output readers and removals


class PooledContainer:
    def __init__(self, ctx: PoolContext, key: str, where: tuple[str, str], route: Route) -> None:
        self._ctx = ctx
        self.key = key
        self.where = where  # (app, route path): for metrics and logs
        self._image = route.image
        self._memory = route.memory
        # `http-stream`: calls on its socket in an iofs directory. `http`: on its stdin and
        # stdout (its stderr is the log), through the attach stream. `default`: one call,
        # pre-started (the call's exchange reads its attach stream).
        self.format = route.format
        self._stdio_transport: StdioTransport | None = None
        self.directory = ctx.iofs_root / key
        # perf_counter when its start began: a fresh call's wait ends there (Executor-Wait-Ms
        # does not count a container's start).
        self.start_began = time.perf_counter()
        self.created = asyncio.get_running_loop().time()
        self.docker_id: str | None = None
        self.conn: HotConnection | None = None
        self.stdio: Stdio | None = None
        self.exited: asyncio.Future[int] | None = None
        self.output = bytearray()
        self.call_id: str | None = None  # the call it serves or served last: its output's owner
        self.served_since: float | None = None  # perf_counter when its current call began
        self.waiting_for_memory = False
        self.reserved = 0  # MiB of the memory budget it holds, given back when it is removed
        self.starter: asyncio.Task | None = None
        self.gone = False
        # Pausing while idle (settings.pause_idle_after): the timer, the engine's pause
        # call in flight, and whether it is paused now.
        self._pause_timer: asyncio.TimerHandle | None = None
        self._pausing: asyncio.Task | None = None
        self.paused = False

    @property
    def _over_stdio(self) -> bool:
        return self.format == "http"

    @property
    def single_use(self) -> bool:
        return self.format == "default"

    # -- start ---------------------------------------------------------------------------

    async def start(self, body: dict[str, Any], evict: bool, on_exit: Callable[[], None]) -> None:
        """Reserves its memory, creates and starts the container, and connects once its
        socket appears (`http`: at once, over its stdin and stdout). Raises a named
        ExecutorError when it cannot; cancelled, it leaves what it made for `remove`."""
        ctx = self._ctx
        ready: asyncio.Future[None] | None = None
        try:
            # Room in the memory budget: a start for waiting calls may evict idle
            # containers of other routes; a min_warm refill never does (SPEC.md).
            self.waiting_for_memory = True
            await ctx.admission.reserve(self._memory, None, self.where, evict=evict)
            self.reserved = self._memory
            self.waiting_for_memory = False
            self.start_began = time.perf_counter()  # a fresh call's wait includes the above
            times = [self.start_began]
            settings = ctx.settings
            if self.format == "http-stream":
                iofs.create(self.directory, settings.iofs_size, settings.iofs_tmpfs)
                ready = ctx.watcher.ready(self.directory, http_stream.SOCKET_NAME)
                host_dir = str(ctx.iofs_host_root / self.key)
                body = spec.with_iofs(body, host_dir, http_stream.IOFS_MOUNT)
            # The start slot is held until the container is ready: a hundred functions
            # initialising at once on a few cores would each pass the start timeout.
            # Starts for waiting calls before refills and pre-starts (admission.py).
            async with ctx.admission.starts.held(urgent=evict):
                await self._launch(body, on_exit, times)
                if ready is not None:
                    async with asyncio.timeout(settings.hot_start_timeout):
                        await self._until_ready(ready, times)
        except (ExecutorError, EngineError, UnsafeSocket, iofs.CannotMount, OSError) as exc:
            raise _start_error(exc, self._image) from None
        finally:
            if ready is not None:
                ready.cancel()
        self._started(times)

    async def _launch(
        self, body: dict[str, Any], on_exit: Callable[[], None], times: list[float]
    ) -> None:
        """Create, attach (stdin too over stdio and when single-use: the calls' way in),
        start."""
        ctx = self._ctx
        self.docker_id = await ctx.engine.create(body)
        times.append(time.perf_counter())
        self.exited = ctx.events.expect_exit(self.docker_id)
        self.exited.add_done_callback(lambda _: on_exit())
        stdin = self._over_stdio or self.single_use
        self.stdio = await ctx.engine.attach(self.docker_id, stdin=stdin)
        if self._over_stdio:
            self.conn, self._stdio_transport = HotConnection.over_stdio(self.stdio)
        if not self.single_use:
            ctx.work.spawn(self._read_output(), "hot container output")
        times.append(time.perf_counter())
        await ctx.engine.start(self.docker_id)
        times.append(time.perf_counter())
        if ctx.settings.hot_sched_batch and not self.single_use:
            ctx.work.spawn(self._schedule_as_batch(), "SCHED_BATCH")

    async def _until_ready(self, ready: asyncio.Future[None], times: list[float]) -> None:
        """Until its socket appears, then connected (or it exits first: 502)."""
        assert self.exited is not None
        await asyncio.wait({ready, self.exited}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            await asyncio.sleep(0.05)  # the last output may trail the exit
            raise FunctionFailed(
                f"container exited before it was ready (exit status "
                f"{self.exit_status()}): {self.tail()}"
            )
        times.append(time.perf_counter())
        self.conn = await self._connect()
        times.append(time.perf_counter())

    def _started(self, times: list[float]) -> None:
        steps = ", ".join(
            f"{name} {(b - a) * 1000:.1f}"
            for name, a, b in zip(START_STEPS, times, times[1:], strict=False)
        )
        log.debug(
            "hot container %s ready in %.1f ms (%s)",
            (self.docker_id or "")[:12],
            (times[-1] - times[0]) * 1000,
            steps,
        )
        self._ctx.metrics.container_started(*self.where, self.format, times[-1] - times[0])

    async def _connect(self) -> HotConnection:
        # A server that binds the socket's own name (no FDK symlink) may not listen yet.
        for _ in range(100):
            try:
                return await self.open()
            except OSError as exc:
                if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                    raise
                await asyncio.sleep(0.01)
        return await self.open()

    async def open(self) -> HotConnection:
        """A new connection to the container's own socket: never through a symlink that
        leaves its directory (iofs.socket_path), never to a listener outside it. Over
        stdio there is no other: OSError, the container goes."""
        if self._over_stdio:
            raise OSError(errno.EPIPE, "the container's stdout has ended")
        conn = await HotConnection.open(iofs.socket_path(self.directory))
        pid = conn.peer_pid
        # A pid of 0 is one outside the executor's pid namespace (the executor in a
        # container): the symlink check is then the guard.
        if pid > 0 and not self._ctx.engine.owns(pid, self.docker_id or ""):
            conn.close()
            raise UnsafeSocket("lsnr.sock is served by a process outside the container")
        return conn

    async def _schedule_as_batch(self) -> None:
        """Makes the container's main process SCHED_BATCH (its later threads and children
        inherit it): woken by a call, it does not preempt the executor (config.py says
        why). The engine gives the host's pid, so it is checked to be the container's."""
        engine, container_id = self._ctx.engine, self.docker_id or ""
        try:
            pid = await engine.pid(container_id)
            if pid is not None and engine.owns(pid, container_id):
                os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
        except (EngineError, OSError) as exc:
            # Not permitted (not root): skip.
            log.debug("could not make container %s SCHED_BATCH: %s", container_id[:12], exc)

    # -- while it runs -------------------------------------------------------------------

    async def _read_output(self) -> None:
        # Read without pause within the output budget: a container whose output is not
        # read blocks on writing it. Past the budget, reading waits (formats/budget.py).
        # Over stdio, stdout is the calls' responses: it goes to the connection, read as
        # fast as the caller takes it, and only stderr is budgeted.
        transport = self._stdio_transport
        try:
            with contextlib.suppress(EngineError):
                assert self.stdio is not None
                frames = LogFrames(http_stream.LOGFRAME_NAME)
                budget = OutputBudget.of(self._ctx.settings, asyncio.get_running_loop().time)
                while (chunk := await self.stdio.read()) is not None:
                    stream, data = chunk
                    if transport is not None and stream == STDOUT and not transport.closed:
                        await transport.reading.wait()
                        if self.conn is not None:
                            self.conn.data_received(data)
                        continue
                    # (stdout past a broken exchange is read as a log: budgeted.)
                    if pause := budget.spend(len(data)):
                        self._flooding(budget)
                        await asyncio.sleep(pause)
                    self._keep_tail(data)
                    if transport is not None:
                        if self.call_id is not None:
                            self._ctx.on_log(self.call_id, data)
                        continue
                    for call_id, lines in frames.feed(stream, data, self.call_id):
                        self._ctx.on_log(call_id, lines)
        finally:
            if transport is not None and self.conn is not None:
                self.conn.connection_lost(None)

    def _flooding(self, budget: OutputBudget) -> None:
        if budget.throttled == 1:
            self.event("output_flood")
            log.warning(
                "hot container %s of %s%s prints past its output budget: reading it is slowed",
                (self.docker_id or "")[:12],
                *self.where,
            )

    def _keep_tail(self, data: bytes) -> None:
        self.output += data
        if len(self.output) > 2 * OUTPUT_TAIL:
            del self.output[:-OUTPUT_TAIL]

    async def read_last_output(self) -> None:
        """A single-use container that exited before its call: what it printed (the
        launcher's reason, say), kept for `tail`; at most DEATH_NOTICE spent on it."""
        if self.stdio is None:
            return
        with contextlib.suppress(EngineError, TimeoutError):
            async with asyncio.timeout(DEATH_NOTICE):
                while (chunk := await self.stdio.read()) is not None:
                    self._keep_tail(chunk[1])

    def event(self, event: ContainerEvent) -> None:
        self._ctx.metrics.container_event(*self.where, event)

    def tail(self) -> str:
        text = bytes(self.output[-OUTPUT_TAIL:]).decode("utf-8", "replace").strip()
        return text or "(no output)"

    def exit_status(self) -> str:
        exited = self.exited
        if exited is None or not exited.done() or exited.cancelled():
            return "unknown"
        return str(exited.result())

    async def death_reason(self, exc: Exception) -> tuple[str, ContainerEvent]:
        """Why its connection broke mid-call. The socket usually closes before the engine
        reports the exit: wait for it briefly, so an OOM kill is named as such (never
        guessed from status 137)."""
        if self.exited is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.exited), DEATH_NOTICE)
        if self.docker_id and self._ctx.events.was_oom_killed(self.docker_id):
            return f"out of memory (limit {self._memory} MiB)", "oom"
        if self.exit_status() != "unknown":
            return f"function exited during the call: exit status {self.exit_status()}", "crash"
        return f"function failed: {exc}", "crash"

    # -- pausing while idle ----------------------------------------------------------------

    def pause_later(self, after: float) -> None:
        """Gone idle: paused once idle `after` seconds, unless a call takes it first."""
        self._call_off_pause()
        self._pause_timer = asyncio.get_running_loop().call_later(after, self._pause_now)

    def _pause_now(self) -> None:
        self._pause_timer = None
        if not self.gone and self.docker_id is not None:
            self._pausing = self._ctx.work.spawn(self._pause(self.docker_id), "pause container")

    async def _pause(self, container_id: str) -> None:
        try:
            await self._ctx.engine.pause(container_id)
            self.paused = True
        except EngineError as exc:
            log.debug("could not pause container %s: %s", container_id[:12], exc.message)

    @property
    def pausing(self) -> bool:
        """A pause is to come or under way."""
        return self._pause_timer is not None or self._pausing is not None

    def _call_off_pause(self) -> None:
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None

    async def resume(self) -> None:
        """Before a call: a pause still to come is called off, one under way waited for,
        and a paused container unpaused. EngineError when it cannot be."""
        self._call_off_pause()
        if self._pausing is not None:
            pausing, self._pausing = self._pausing, None
            await asyncio.wait({pausing})
        if self.paused:
            assert self.docker_id is not None
            await self._ctx.engine.unpause(self.docker_id)
            self.paused = False

    # -- removal -------------------------------------------------------------------------

    def remove_later(self, on_removed: Callable[[], None]) -> None:
        """Closes its connection now and removes it in the background (paused or not:
        the engine's forced removal kills a paused container too)."""
        self._call_off_pause()
        if self.conn is not None:
            self.conn.close()
        self._ctx.work.spawn(self._remove(on_removed), "remove hot container")

    async def _remove(self, on_removed: Callable[[], None]) -> None:
        ctx = self._ctx
        try:
            if self.docker_id is not None:
                ctx.events.forget(self.docker_id)
                try:
                    await ctx.engine.remove(self.docker_id)
                except EngineError as exc:
                    log.warning("could not remove container %s: %s", self.docker_id, exc.message)
            if self.stdio is not None:
                await self.stdio.close()
        finally:
            if self.reserved:
                ctx.admission.release(self.reserved)
                self.reserved = 0
            iofs.remove(self.directory)
            on_removed()


def _start_error(exc: Exception, image: str) -> ExecutorError:
    """What calls waiting for a container get when its start failed."""
    if isinstance(exc, ExecutorError):
        return exc  # exited before ready, no room, shutting down
    if isinstance(exc, TimeoutError):
        return StartTimedOut()
    if isinstance(exc, EngineError):
        return from_engine(exc, image)
    if isinstance(exc, UnsafeSocket | iofs.CannotMount):
        return FunctionFailed(f"container could not be started: {exc}")
    return FunctionFailed(f"container could not be reached: {exc}")
