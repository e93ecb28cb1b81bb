"""A route's hot pool: `http-stream` or `http` containers started ahead of calls and kept
between them. Its upkeep (starts, expiry, deaths, drains) is every pool's (base.py); here
is the call path: a call takes an idle container (a list pop) or queues for one, sends its
request on the container's persistent connection, reads the answer, and gives the
container back (the policy hands it to the next waiting call, or it goes idle).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from types import ModuleType

from executor.calls import Call, Response
from executor.errors import (
    EngineError,
    ExecutorError,
    FunctionFailed,
    FunctionTimedOut,
    ResponseTooLarge,
    ServerBusy,
    ShuttingDown,
    StartTimedOut,
)
from executor.formats import http_stream
from executor.formats.hot import protocol
from executor.pool.base import PoolRetired, RoutePool
from executor.pool.connection import (
    ConnectionBroken,
    MalformedResponse,
    Reply,
    ReplyTimeout,
)
from executor.pool.container import PooledContainer
from executor.pool.iofs import UnsafeSocket

log = logging.getLogger(__name__)

# Responses up to this size are answered in one piece; past it the rest is streamed.
STREAM_AFTER = 256 * 1024


class HotPool(RoutePool):
    @functools.cached_property
    def _format(self) -> ModuleType:
        """The format's protocol logic (formats/): a format change re-keys the pool."""
        return protocol(self.route.format)

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
        if c.paused or c.pausing:
            try:
                await c.resume()
            except EngineError as exc:
                self._discard(c, f"could not be unpaused: {exc.message}")
                return await self.call(call)
        c.served_since = time.perf_counter()
        if c.conn is None or c.conn.closed:
            # The function closed its idle connection (a keep-alive timeout, or no
            # keep-alive at all): open a new one; a container that no longer listens goes.
            try:
                c.conn = await c.open()
            except UnsafeSocket as exc:
                self._discard(c, str(exc))
                raise FunctionFailed(f"container removed: {exc}") from None
            except OSError as exc:
                self._discard(c, f"socket unreachable: {exc}")
                return await self.call(call)
        call.container_id = c.docker_id
        head = self._format.call_head(call)
        limit = self._ctx.settings.max_response_bytes
        reply: Reply | None = None
        try:
            assert c.conn is not None
            reply = c.conn.send(head, call.body)
            reply.expire_at(call.deadline)
            await reply.head()
            answer = self._format.interpret(reply.status, reply.headers)
            if reply.content_length is not None and reply.content_length > limit:
                raise ResponseTooLarge(limit)
            parts: list[bytes] = []
            while (part := await reply.body_part()) is not None:
                parts.append(part)
                if reply.size > limit:
                    raise ResponseTooLarge(limit)
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
            raise FunctionTimedOut(call.route.timeout)
        return Response(answer.status, body, answer.headers)

    async def _failed(self, call: Call, c: PooledContainer, exc: BaseException) -> BaseException:
        """What a call whose exchange broke gets; its container is removed and replaced,
        whatever the cause (its connection's state is unknown)."""
        if self._ctx.lifecycle.stopping:
            self._discard(c, "shutting down")
            return ShuttingDown()
        if isinstance(exc, ReplyTimeout):
            c.event("timeout")
            self._discard(c, "call timed out")
            return FunctionTimedOut(call.route.timeout)
        if isinstance(exc, MalformedResponse):
            self._discard(c, str(exc))
            return FunctionFailed(f"invalid response from the function: {exc}")
        if isinstance(exc, ConnectionBroken):
            reason, event = await c.death_reason(exc)
            c.event(event)
            self._discard(c, reason)
            return FunctionFailed(reason)
        if isinstance(exc, http_stream.ProtocolError):
            self._discard(c, str(exc))
            return FunctionFailed(f"invalid response from the function: {exc}")
        self._discard(c, exc.message if isinstance(exc, ExecutorError) else "call abandoned")
        return exc

    async def _stream_rest(
        self, call: Call, c: PooledContainer, reply: Reply, limit: int
    ) -> AsyncIterator[bytes]:
        """The rest of a large response, read as the caller takes it; the container is
        released once it is all read, and removed if the response is cut off."""
        try:
            while (part := await reply.body_part()) is not None:
                if reply.size > limit:
                    raise ResponseTooLarge(limit)
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
            raise error.again()
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
            return ServerBusy("no memory for a container before the deadline")
        if self._policy.count("starting"):
            return StartTimedOut()
        return ServerBusy("no container was free before the deadline")

    def _release(self, c: PooledContainer) -> None:
        if c.gone:
            return
        if self.retired:
            self._discard(c, "pool drained")
            return
        if c.served_since is not None:
            self._policy.observed_call(time.perf_counter() - c.served_since)
            c.served_since = None
        self._hand_over(self._policy.release(c.key))
        self._went_idle(c)
        if self._policy.waiting:
            self._reconcile()  # calls still wait: the averages may call for a start now
        elif self._timer is None:
            # A container going idle may expire, which the timer covers (a timer that
            # fires early just looks again).
            self._schedule()

    def _went_idle(self, c: PooledContainer) -> None:
        after = self._ctx.settings.pause_idle_after
        if after is not None and self._policy.is_idle(c.key):
            c.pause_later(after)

    def _exited(self, c: PooledContainer) -> None:
        # A container that dies while idle is replaced. One dying mid-call fails its call
        # at once (usually its connection has broken already), which discards it.
        if c.conn is None:
            return  # still starting: the start sees the exit
        if c.conn.in_call:
            c.conn.abort(f"the container exited (status {c.exit_status()})")
        elif not c.gone:
            c.event("crash")
            self._discard(c, f"exited (status {c.exit_status()})")


class _WaitExpired(Exception):
    """A waiting call's deadline passed before a container was assigned to it."""


def _expire_waiter(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(_WaitExpired())


def _function_error(body: bytes) -> str:
    text = body[:500].decode("utf-8", "replace").strip()
    return f"function error: {text}" if text else "function error"
