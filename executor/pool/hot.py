"""A route's hot pool: `http-stream` containers started ahead of calls and kept between them.

The IO driver of `PoolPolicy`: it tells the policy what happened (a call arrived, a
container became ready, finished a call, died) and carries out what the policy answers.
Starting, replacing and removing containers run in background tasks; a call's path only
takes a container (a list pop when one is idle), sends its request on the container's
persistent connection and reads the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executor.admission import Admission, Closed, NoRoom
from executor.calls import Call, Response
from executor.config import Settings
from executor.docker import spec
from executor.docker.engine import (
    DockerEngine,
    EngineError,
    EngineUnreachable,
    Stdio,
    missing_image,
)
from executor.errors import CallTimeout, ExecutorError, FunctionFailed, ServiceUnavailable
from executor.formats import http_stream
from executor.formats.budget import OutputBudget
from executor.formats.logframe import LogFrames
from executor.metrics import ContainerEvent, Metrics
from executor.models import App, Route
from executor.pool import iofs
from executor.pool.connection import (
    ConnectionBroken,
    HotConnection,
    MalformedResponse,
    Reply,
    ReplyTimeout,
)
from executor.pool.events import ContainerEvents
from executor.pool.iofs import UnsafeSocket
from executor.pool.policy import Assignment, Limits, PoolPolicy
from executor.pool.readiness import SocketWatcher

log = logging.getLogger(__name__)

# Responses up to this size are answered in one piece; past it the rest is streamed.
STREAM_AFTER = 256 * 1024
# The end of a container's output kept to explain a failed start.
OUTPUT_TAIL = 2048
# After a broken connection, how long to wait for the engine's word on why (OOM, exit).
DEATH_NOTICE = 1.0


class PoolRetired(Exception):
    """The pool was drained (route changed or deleted): the call tries the route's new pool."""


@dataclass(frozen=True, slots=True)
class PoolContext:
    """What every pool of this executor shares."""

    engine: DockerEngine
    events: ContainerEvents
    watcher: SocketWatcher
    identity: spec.Identity
    settings: Settings
    iofs_root: Path
    iofs_host_root: Path  # iofs_root as the engine sees it (differs when we run in a container)
    metrics: Metrics
    admission: Admission
    # Where a hot call's log lines go (call id, bytes): the call records, when kept.
    on_log: Callable[[str, bytes], None] | None
    # Runs a coroutine as a background task owned by the executor (closed at shutdown).
    spawn: Callable[[Any], asyncio.Task]

    def output_budget(self) -> OutputBudget:
        """A new container's budget for what it prints (config.py: output_*)."""
        s = self.settings
        return OutputBudget(s.output_rate, s.output_burst, asyncio.get_running_loop().time)


@dataclass(eq=False, slots=True)
class HotContainer:
    key: str
    directory: Path
    # perf_counter when its start began: a fresh call's wait ends there (Executor-Wait-Ms
    # does not count a container's start).
    start_began: float = field(default_factory=time.perf_counter)
    docker_id: str | None = None
    conn: HotConnection | None = None
    stdio: Stdio | None = None
    exited: asyncio.Future[int] | None = None
    output: bytearray = field(default_factory=bytearray)
    call_id: str | None = None  # the call it serves or served last: its output's owner
    waiting_for_memory: bool = False
    reserved: int = 0  # MiB of the memory budget it holds, given back when it is removed
    starter: asyncio.Task | None = None
    gone: bool = False

    def tail(self) -> str:
        text = bytes(self.output[-OUTPUT_TAIL:]).decode("utf-8", "replace").strip()
        return text or "(no output)"


class HotPool:
    def __init__(
        self, ctx: PoolContext, app: App, route: Route, body: dict[str, Any], key: str
    ) -> None:
        self._ctx = ctx
        self._loop = asyncio.get_running_loop()
        self.app = app
        self.route = route
        self.key = key
        self._body = body
        self._policy: PoolPolicy[asyncio.Future] = PoolPolicy(_limits(route), self._loop.time)
        self._containers: dict[str, HotContainer] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._last_start_error: ExecutorError | None = None
        self.retired = False
        self._stopping = False  # removing every container: the executor is stopping
        self.empty = asyncio.Event()

    # -- the call path -------------------------------------------------------------------

    async def call(self, call: Call) -> Response:
        """Serves the call in one of the pool's containers: the warm path is a list pop,
        one write and one read on the container's connection, and a list append."""
        if self.retired:
            raise PoolRetired
        key = self._policy.acquire_idle()
        if key is None:
            key = await self._wait_for_container(call)
        else:
            call.start = "warm"
            call.assigned = call.started = time.perf_counter()
        c = self._containers[key]
        c.call_id = call.id
        if c.conn is None or c.conn.closed:
            # The function closed its idle connection (a keep-alive timeout, or no
            # keep-alive at all): open a new one; a container that no longer listens goes.
            try:
                c.conn = await _open(c)
            except UnsafeSocket as exc:
                self._discard(c, str(exc))
                raise FunctionFailed(f"container removed: {exc}") from None
            except OSError as exc:
                self._discard(c, f"socket unreachable: {exc}")
                return await self.call(call)
        call.container_id = c.docker_id
        head = http_stream.request_head(
            call_id=call.id,
            deadline=call.deadline_utc,
            method=call.method,
            url=call.url,
            headers=call.headers,
            content_length=len(call.body),
        )
        limit = self._ctx.settings.max_response_bytes
        reply: Reply | None = None
        try:
            assert c.conn is not None
            reply = c.conn.send(head, call.body)
            reply.expire_at(call.deadline)
            await reply.head()
            answer = http_stream.interpret(reply.status, reply.headers)
            if reply.content_length is not None and reply.content_length > limit:
                raise _too_large(limit)
            parts: list[bytes] = []
            while (part := await reply.body_part()) is not None:
                parts.append(part)
                if reply.size > limit:
                    raise _too_large(limit)
                if reply.size >= STREAM_AFTER and not reply.complete:
                    body = b"".join(parts)
                    rest = self._stream_rest(call, c, reply, limit)
                    return Response(answer.status, body, answer.headers, rest)
            reply.finish()
        except BaseException as exc:
            if reply is not None:
                reply.finish()
            raise await self._failed(call, c, exc) from None
        self._release(c)
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        if answer.outcome == "error":
            raise FunctionFailed(_function_error(body))
        if answer.outcome == "timeout":
            raise CallTimeout(f"function timed out after {call.route.timeout} s")
        return Response(answer.status, body, answer.headers)

    async def _failed(self, call: Call, c: HotContainer, exc: BaseException) -> BaseException:
        """What a call whose exchange broke gets; its container is removed and replaced,
        whatever the cause (its connection's state is unknown)."""
        if self._stopping:
            self._discard(c, "shutting down")
            return ServiceUnavailable("executor shutting down: call stopped")
        if isinstance(exc, ReplyTimeout):
            self._event("timeout")
            self._discard(c, "call timed out")
            return CallTimeout(f"function timed out after {call.route.timeout} s")
        if isinstance(exc, MalformedResponse):
            self._discard(c, str(exc))
            return FunctionFailed(f"invalid response from the function: {exc}")
        if isinstance(exc, ConnectionBroken):
            reason, event = await self._death_reason(c, exc)
            self._event(event)
            self._discard(c, reason)
            return FunctionFailed(reason)
        if isinstance(exc, http_stream.ProtocolError):
            self._discard(c, str(exc))
            return FunctionFailed(f"invalid response from the function: {exc}")
        self._discard(c, exc.message if isinstance(exc, ExecutorError) else "call abandoned")
        return exc

    async def _stream_rest(
        self, call: Call, c: HotContainer, reply: Reply, limit: int
    ) -> AsyncIterator[bytes]:
        """The rest of a large response, read as the caller takes it; the container is
        released once it is all read, and removed if the response is cut off."""
        try:
            while (part := await reply.body_part()) is not None:
                if reply.size > limit:
                    raise _too_large(limit)
                yield part
        except GeneratorExit:  # the caller went away: nothing to await or answer
            reply.finish()
            self._discard(c, "response cut off")
            raise
        except BaseException as exc:
            reply.finish()
            raise await self._failed(call, c, exc) from None
        reply.finish()
        self._release(c)

    async def _wait_for_container(self, call: Call) -> str:
        """No idle container: the call queues for one freed or started meanwhile, until its
        deadline. Fails at once while starts back off and there is no container at all."""
        if self._policy.should_fail_fast() and self._last_start_error is not None:
            error = self._last_start_error
            raise type(error)(error.message)
        waiter: asyncio.Future = self._loop.create_future()
        self._policy.enqueue(waiter, urgent=not call.background)  # SPEC.md "Order"
        if self._policy.starts_wanted():
            self._reconcile()
        elif self._timer is None:
            self._schedule()  # a backoff may be running: look again when it ends
        # One timer handle rather than an asyncio.timeout scope: most calls wait here
        # when a route runs at max_containers.
        timer = self._loop.call_at(call.deadline, _expire_waiter, waiter)
        try:
            key, warm, assigned = await waiter
        except _WaitExpired:
            self._policy.cancel(waiter)
            raise self._wait_timed_out() from None
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        finally:
            timer.cancel()
        call.start = "warm" if warm else "fresh"
        call.assigned = max(assigned, call.received)
        call.started = time.perf_counter()
        return key

    def _abandon(self, waiter: asyncio.Future) -> None:
        """A call stopped waiting: out of the queue, or, if a container was handed to it
        just now, the container goes back."""
        if self._policy.cancel(waiter):
            return
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            key = waiter.result()[0]
            container = self._containers.get(key)
            if container is not None:
                self._release(container)

    def _wait_timed_out(self) -> ExecutorError:
        starting = [c for c in self._containers.values() if c.docker_id is None and not c.gone]
        if starting and all(c.waiting_for_memory for c in starting):
            return ServiceUnavailable(
                "server too busy: no memory for a container before the deadline"
            )
        if self._policy.count("starting"):
            return CallTimeout("container initialization timed out")
        return ServiceUnavailable("server too busy: no container was free before the deadline")

    async def _death_reason(self, c: HotContainer, exc: Exception) -> tuple[str, ContainerEvent]:
        # The socket usually closes before the engine reports the exit: wait for it
        # briefly, so an OOM kill is named as such (never guessed from status 137).
        if c.exited is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(c.exited), DEATH_NOTICE)
        if c.docker_id and self._ctx.events.was_oom_killed(c.docker_id):
            return f"out of memory (limit {self.route.memory} MiB)", "oom"
        if c.exited is not None and c.exited.done() and not c.exited.cancelled():
            return f"function exited during the call: exit status {c.exited.result()}", "crash"
        return f"function failed: {exc}", "crash"

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
            container = HotContainer(key, self._ctx.iofs_root / key)
            self._containers[key] = container
            self._policy.starting(key)
            container.starter = self._ctx.spawn(self._start(container))
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

    def _release(self, c: HotContainer) -> None:
        if c.gone:
            return
        if self.retired:
            self._discard(c, "pool drained")
            return
        self._hand_over(self._policy.release(c.key))
        # A release never calls for a start; a container going idle may expire, which
        # the timer covers (a timer that fires early just looks again).
        if self._timer is None:
            self._schedule()

    def _hand_over(self, assignment: Assignment | None) -> None:
        # A waiter already gone (timed out as it was served) passes the container on.
        while assignment is not None and assignment.waiter.done():
            assignment = self._policy.release(assignment.key)
        if assignment is not None:
            if assignment.warm:
                assigned = time.perf_counter()
            else:
                assigned = self._containers[assignment.key].start_began
            assignment.waiter.set_result((assignment.key, assignment.warm, assigned))

    async def _start(self, c: HotContainer) -> None:
        ctx = self._ctx
        ready: asyncio.Future[None] | None = None
        try:
            # Room in the memory budget: a start for waiting calls may evict idle
            # containers of other routes; a min_warm refill never does (SPEC.md).
            c.waiting_for_memory = True
            await ctx.admission.reserve(
                self.route.memory,
                None,
                (self.app.name, self.route.path),
                evict=self._policy.waiting > 0,
            )
            c.reserved = self.route.memory
            c.waiting_for_memory = False
            c.start_began = time.perf_counter()  # a fresh call's wait includes the above
            times = [c.start_began]
            settings = ctx.settings
            iofs.create(c.directory, settings.iofs_size, settings.iofs_tmpfs)
            ready = ctx.watcher.ready(c.directory, http_stream.SOCKET_NAME)
            host_dir = ctx.iofs_host_root / c.key
            body = spec.with_iofs(self._body, str(host_dir), http_stream.IOFS_MOUNT)
            # The start slot is held until the container is ready: a hundred functions
            # initialising at once on a few cores would each pass the start timeout.
            async with ctx.admission.starts:
                c.docker_id = await ctx.engine.create(body)
                times.append(time.perf_counter())
                c.exited = ctx.events.expect_exit(c.docker_id)
                c.exited.add_done_callback(lambda _: self._exited(c))
                c.stdio = await ctx.engine.attach(c.docker_id, stdin=False)
                ctx.spawn(self._read_output(c))
                times.append(time.perf_counter())
                await ctx.engine.start(c.docker_id)
                times.append(time.perf_counter())
                if ctx.settings.hot_sched_batch:
                    ctx.spawn(_schedule_as_batch(ctx.engine, c.docker_id))
                async with asyncio.timeout(ctx.settings.hot_start_timeout):
                    await asyncio.wait({ready, c.exited}, return_when=asyncio.FIRST_COMPLETED)
                    if not ready.done():
                        await asyncio.sleep(0.05)  # the last output may trail the exit
                        raise FunctionFailed(
                            f"container exited before it was ready (exit status "
                            f"{_status(c.exited)}): {c.tail()}"
                        )
                    times.append(time.perf_counter())
                    c.conn = await _connect(c)
                    times.append(time.perf_counter())
        except TimeoutError:
            self._start_failed(c, CallTimeout("container initialization timed out"))
            return
        except NoRoom as exc:
            self._start_failed(c, ServiceUnavailable(f"cannot start a container: {exc}"))
            return
        except Closed:
            self._start_failed(
                c, ServiceUnavailable("executor shutting down: call stopped"), quiet=True
            )
            return
        except ExecutorError as exc:
            self._start_failed(c, exc)
            return
        except EngineUnreachable as exc:
            self._start_failed(c, ServiceUnavailable(exc.message))
            return
        except EngineError as exc:
            message = f"container could not be started: {exc}"
            if missing_image(exc):
                message = f"image {self.route.image!r} is not on the Docker engine"
            elif "bind source path" in exc.message:
                message += " (EXECUTOR_IOFS_HOST_DIR must be the host path of EXECUTOR_IOFS_DIR)"
            self._start_failed(c, FunctionFailed(message))
            return
        except (UnsafeSocket, iofs.CannotMount) as exc:
            self._start_failed(c, FunctionFailed(f"container could not be started: {exc}"))
            return
        except OSError as exc:
            self._start_failed(c, FunctionFailed(f"container could not be reached: {exc}"))
            return
        except asyncio.CancelledError:
            # Discarded while starting (drain, shutdown): remove what was made so far.
            c.gone = True
            self._policy.remove(c.key)
            self._remove_later(c)
            raise
        finally:
            if ready is not None:
                ready.cancel()
        steps = ", ".join(
            f"{name} {(b - a) * 1000:.1f}"
            for name, a, b in zip(
                ("create", "attach", "start", "socket", "connect"), times, times[1:], strict=False
            )
        )
        log.debug(
            "hot container %s ready in %.1f ms (%s)",
            c.docker_id[:12],
            (times[-1] - times[0]) * 1000,
            steps,
        )
        self._ctx.metrics.container_started(
            self.app.name, self.route.path, "http-stream", times[-1] - times[0]
        )
        if c.gone:
            return
        if self.retired:
            self._discard(c, "pool drained")
            return
        self._hand_over(self._policy.ready(c.key))
        self._reconcile()

    def _start_failed(self, c: HotContainer, error: ExecutorError, quiet: bool = False) -> None:
        (log.debug if quiet else log.warning)(
            "hot container for %s%s failed to start: %s",
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
                waiter.set_exception(type(error)(error.message))
        self._remove_later(c)
        self._reconcile()

    def _exited(self, c: HotContainer) -> None:
        # A container that dies while idle is replaced. One dying mid-call fails its call
        # at once (usually its connection has broken already), which discards it.
        if c.conn is None:
            return  # still starting: the start sees the exit
        if c.conn.in_call:
            c.conn.abort(f"the container exited (status {_status(c.exited)})")
        elif not c.gone:
            self._event("crash")
            self._discard(c, f"exited (status {_status(c.exited)})")

    async def _read_output(self, c: HotContainer) -> None:
        # Read without pause within the output budget: a container whose output is not
        # read blocks on writing it. Past the budget, reading waits (formats/budget.py).
        with contextlib.suppress(EngineError):
            assert c.stdio is not None
            frames = LogFrames(http_stream.LOGFRAME_NAME)
            on_log = self._ctx.on_log
            budget = self._ctx.output_budget()
            while (chunk := await c.stdio.read()) is not None:
                stream, data = chunk
                pause = budget.spend(len(data))
                if pause:
                    if budget.throttled == 1:
                        self._event("output_flood")
                        log.warning(
                            "hot container %s of %s%s prints past its output budget: "
                            "reading it is slowed",
                            (c.docker_id or "")[:12],
                            self.app.name,
                            self.route.path,
                        )
                    await asyncio.sleep(pause)
                c.output += data
                if len(c.output) > 2 * OUTPUT_TAIL:
                    del c.output[:-OUTPUT_TAIL]
                if on_log is not None:
                    for call_id, lines in frames.feed(stream, data, c.call_id):
                        on_log(call_id, lines)

    def _discard(self, c: HotContainer, reason: str) -> None:
        """Takes the container out of the pool and removes it in the background."""
        if c.gone:
            return
        log.debug("removing hot container %s (%s)", c.docker_id, reason)
        c.gone = True
        self._policy.remove(c.key)
        if c.starter is not None and not c.starter.done():
            c.starter.cancel()  # the start removes what it made
        else:
            self._remove_later(c)
        self._reconcile()

    def _remove_later(self, c: HotContainer) -> None:
        if c.conn is not None:
            c.conn.close()
        self._ctx.spawn(self._remove(c))

    async def _remove(self, c: HotContainer) -> None:
        try:
            if c.docker_id is not None:
                self._ctx.events.forget(c.docker_id)
                try:
                    await self._ctx.engine.remove(c.docker_id)
                except EngineError as exc:
                    log.warning("could not remove container %s: %s", c.docker_id, exc.message)
            if c.stdio is not None:
                await c.stdio.close()
        finally:
            if c.reserved:
                self._ctx.admission.release(c.reserved)
                c.reserved = 0
            iofs.remove(c.directory)
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
        self._stopping = True
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
            "waiting": self._policy.waiting,
            "containers": containers,
        }


async def _schedule_as_batch(engine: DockerEngine, container_id: str) -> None:
    """Makes the container's main process SCHED_BATCH (its later threads and children
    inherit it): woken by a call, it does not preempt the executor (config.py says why)."""
    try:
        pid = await engine.pid(container_id)
        # The engine gives the pid in the host's namespace. The executor in a container
        # sees other pids, so it checks the process is in the container's cgroup first.
        if pid is not None and _in_cgroup_of(pid, container_id):
            os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
    except (EngineError, OSError) as exc:
        # Not permitted (not root): skip.
        log.debug("could not make container %s SCHED_BATCH: %s", container_id[:12], exc)


def _in_cgroup_of(pid: int, container_id: str) -> bool:
    with open(f"/proc/{pid}/cgroup") as f:
        return container_id in f.read()


class _WaitExpired(Exception):
    """A waiting call's deadline passed before a container was assigned to it."""


def _expire_waiter(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(_WaitExpired())


def _limits(route: Route) -> Limits:
    return Limits(route.min_warm, route.max_containers, float(route.idle_timeout))


def _status(exited: asyncio.Future[int] | None) -> str:
    if exited is None or not exited.done() or exited.cancelled():
        return "unknown"
    return str(exited.result())


def _too_large(limit: int) -> FunctionFailed:
    return FunctionFailed(f"response too large (limit {limit} bytes)")


def _function_error(body: bytes) -> str:
    text = body[:500].decode("utf-8", "replace").strip()
    return f"function error: {text}" if text else "function error"


async def _open(c: HotContainer) -> HotConnection:
    """A connection to the container's own socket, checked (iofs.socket_path, check_peer)."""
    conn = await HotConnection.open(iofs.socket_path(c.directory))
    try:
        iofs.check_peer(conn.peer_pid, c.docker_id or "")
    except UnsafeSocket:
        conn.close()
        raise
    return conn


async def _connect(c: HotContainer) -> HotConnection:
    # A server that binds the socket's own name (no FDK symlink) may not listen yet.
    for _ in range(100):
        try:
            return await _open(c)
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise
            await asyncio.sleep(0.01)
    return await _open(c)
