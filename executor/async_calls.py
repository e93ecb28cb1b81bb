"""Async calls (`type: async` routes): stored, answered 202, run later from a durable queue.

api -> AsyncCalls.submit (committed, then 202) ... dispatcher -> Invoker.run_queued, the
same pools and cold runner as sync calls, behind sync calls where they wait for a route's
containers. Calls leave the queue oldest first, at most `async_concurrency` running at
once and at most a route's `max_containers` per route (twice that for hot routes); a
call's deadline counts from when it leaves the queue (SPEC.md "Order").

Each step is committed with the call's record before it is taken: queued before the 202,
running (a run counted) before the call reaches a container, ended with the row's removal.
So after a crash the queue tells which calls may have run: those become `error`
("executor restarted") or, with retries left, run again; the rest run once.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass

import aiosqlite

from executor.calls import Call, CallRecord, CallState, unended
from executor.config import MiB, Settings
from executor.errors import (
    NOT_TAKING_CALLS,
    NotFound,
    ServiceUnavailable,
    ShuttingDown,
    TooManyRequests,
)
from executor.invoker import Invoker
from executor.lifecycle import Lifecycle
from executor.registry import Registry
from executor.routing import bind, call_path
from executor.store import queue
from executor.store.calls import CallRecords, Op
from executor.store.queue import Queued, Request
from executor.tasks import TaskGroup

log = logging.getLogger(__name__)

RESTARTED = "executor restarted while the call ran"
# Async calls running at once per hot route, per container it may have.
HOT_ROUTE_SHARE = 2
# Requests of queued calls kept in memory, in all (past it they are read from the store
# when they run): a SQLite round trip less per call.
HELD_MAX = 64 * 1024 * 1024

RouteKey = tuple[str, str]  # app, path
# Ended calls' bodies freed before the store gives the space back.
RECLAIM_AFTER = 8 * MiB
# What a 429 tells the caller to wait, in seconds.
RETRY_AFTER = 1


class AsyncCalls:
    def __init__(
        self,
        db: aiosqlite.Connection,
        records: CallRecords,
        registry: Registry,
        invoker: Invoker,
        settings: Settings,
        lifecycle: Lifecycle,
    ) -> None:
        self._db = db
        self._records = records
        self._registry = registry
        self._invoker = invoker
        self._limit = settings.async_concurrency
        self._keep = settings.async_response_bytes
        # Each route's queued calls, oldest first; and every queued call by id (cancel).
        self._queues: dict[RouteKey, deque[Queued]] = {}
        self._queued: dict[str, Queued] = {}
        self._running: Counter[RouteKey] = Counter()
        self._runs = TaskGroup("async calls")
        self._held = 0  # bytes of request bodies held in memory
        # What is queued, in calls and body bytes, server-wide and per route (submitted
        # ones counted before their commit): the bounds that answer 429.
        self._settings = settings
        self._backlog = _Backlog()
        self._route_backlog: dict[RouteKey, _Backlog] = {}
        self._freed = 0  # body bytes of calls ended since the store last reclaimed space
        # Draining: nothing is submitted or taken from the queue; what is queued stays.
        self._lifecycle = lifecycle

    @property
    def queued(self) -> int:
        return len(self._queued)

    @property
    def running(self) -> int:
        return len(self._runs)

    def queued_by_route(self) -> dict[RouteKey, int]:
        return {key: backlog.calls for key, backlog in self._route_backlog.items()}

    # -- start-up ------------------------------------------------------------------------

    async def recover(self) -> None:
        """Takes the queue over from the process before (before serving): calls it was
        running end in `error`, or are queued again if their route has retries left."""
        ops: list[Op] = []
        restarted = 0
        for q in await queue.pending(self._db):
            if q.state == "running":
                restarted += 1
                if q.attempts <= self._retries(q):
                    note = f"{RESTARTED}; run {q.attempts} of {self._retries(q) + 1}"
                    ops += queue.requeued(_record(q, "queued", note))
                    q.state = "queued"
                else:
                    ops += queue.ended(_record(q, "error", RESTARTED, ended=True), None)
                    self._ended(q)
                    continue
            self._push(q)
        if ops:
            await self._records.write(ops)
        if self._queued or restarted:
            log.info(
                "async calls: %d queued, %d were running when the executor stopped",
                len(self._queued),
                restarted,
            )

    def start(self) -> None:
        self._dispatch()

    # -- the API's side ------------------------------------------------------------------

    async def submit(self, call: Call) -> None:
        """Stores the call; returns once it is committed (then it is queued to run)."""
        if self._lifecycle.draining:
            raise ShuttingDown(NOT_TAKING_CALLS)
        q = Queued(
            call.id,
            call.app.name,
            call.route.path,
            call.method,
            call.created_at.timestamp(),
            0,
            "queued",
            len(call.body),
        )
        self._admit(q)
        request = Request(call.method, call.url, call.headers, call.body)
        if self._held + len(call.body) <= HELD_MAX:
            q.request = request
            self._held += len(call.body)
        committed = self._records.write(queue.enqueued(_record(q, "queued"), request))
        # Queued once committed, whether or not the caller still waits for its 202.
        committed.add_done_callback(lambda f: self._committed(f, q))
        try:
            await asyncio.shield(committed)
        except (aiosqlite.Error, ValueError) as exc:
            raise ServiceUnavailable(f"could not store the call: {exc}") from None

    def _committed(self, done: asyncio.Future, q: Queued) -> None:
        if not done.cancelled() and done.exception() is None:
            self._push(q, counted=True)
            self._dispatch()
        else:
            self._release(q)
            self._count(q, -1)

    def _release(self, q: Queued) -> Request | None:
        """The call's request, no longer held in memory."""
        request, q.request = q.request, None
        if request is not None:
            self._held -= len(request.body)
        return request

    async def cancel(self, call_id: str) -> bool:
        """Cancels a queued call; False if it is not queued (running, ended, unknown)."""
        q = self._queued.pop(call_id, None)
        if q is None:
            return False
        self._queues[(q.app, q.route)].remove(q)
        self._release(q)
        self._count(q, -1)
        await self._records.write(queue.ended(_record(q, "cancelled", ended=True), None))
        self._ended(q)
        return True

    def _admit(self, q: Queued) -> None:
        """Counts the call in, or refuses it (429) if a bound on queued calls is reached."""
        s = self._settings
        route = self._route_backlog.get((q.app, q.route), _Backlog())
        for backlog, calls, size, where in (
            (self._backlog, s.async_queue_max, s.async_queue_bytes, "server-wide"),
            (route, s.async_route_queue_max, s.async_route_queue_bytes, f"for {q.route}"),
        ):
            if backlog.calls >= calls or backlog.bytes + q.size > size:
                raise TooManyRequests(
                    f"too many async calls queued {where} ({backlog.calls} calls, "
                    f"{backlog.bytes / MiB:.1f} MiB; bounds {calls} calls, "
                    f"{size / MiB:.0f} MiB): retry later",
                    retry_after=RETRY_AFTER,
                )
        self._count(q, +1)

    def _count(self, q: Queued, sign: int) -> None:
        key = (q.app, q.route)
        route = self._route_backlog.setdefault(key, _Backlog())
        for backlog in (self._backlog, route):
            backlog.calls += sign
            backlog.bytes += sign * q.size
        if not route.calls:
            del self._route_backlog[key]

    def _ended(self, q: Queued) -> None:
        """The call's row is gone: past a few MiB of bodies freed, the store gives the
        space back (the database file does not keep the size of a burst)."""
        self._freed += q.size
        if self._freed >= RECLAIM_AFTER:
            self._freed = 0
            self._records.reclaim_soon()

    # -- running them --------------------------------------------------------------------

    def _push(self, q: Queued, counted: bool = False) -> None:
        bisect.insort(self._queues.setdefault((q.app, q.route), deque()), q, key=_by_id)
        self._queued[q.id] = q
        if not counted:
            self._count(q, +1)

    def _dispatch(self) -> None:
        """Starts the oldest queued calls whose routes have room, while the server has."""
        while not self._lifecycle.draining and len(self._runs) < self._limit:
            ready = [
                (waiting[0].id, key)
                for key, waiting in self._queues.items()
                if waiting and self._running[key] < self._route_limit(key)
            ]
            if not ready:
                return
            best = min(ready)[1]
            q = self._queues[best].popleft()
            del self._queued[q.id]
            self._count(q, -1)
            q.state = "running"
            self._running[best] += 1
            task = self._runs.spawn(self._run(q), f"async call {q.id}")
            task.add_done_callback(lambda _: self._dispatch())

    async def _run(self, q: Queued) -> None:
        key = (q.app, q.route)
        try:
            await self._run_once(q)
        finally:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
            if not self._queues.get(key, True):
                del self._queues[key]

    async def _run_once(self, q: Queued) -> None:
        held = self._release(q)
        try:
            app = self._registry.app(q.app)
            route = self._registry.route(q.app, q.route)
        except NotFound as exc:
            record = _record(q, "error", exc.message, ended=True)._replace(http_status=404)
            await self._records.write(queue.ended(record, None))
            self._ended(q)
            return
        request = held or await queue.request(self._db, q.id)
        if request is None:  # cannot happen while this process owns the queue
            log.error("async call %s is gone from the queue", q.id)
            return
        q.attempts += 1
        await self._records.write(queue.began(_record(q, "running")))
        call = Call(
            app=app,
            route=route,
            method=request.method,
            url=request.url,
            headers=request.headers,
            body=request.body,
            id=q.id,
            background=True,
            params=bind(route.path, call_path(request.url, q.app)) if route.parameters else {},
        )
        record, response = await self._invoker.run_queued(call, self._keep)
        record = record._replace(created_at=q.created_at)
        if call.log:
            self._records.add_log(q.id, call.log)
        status = record.http_status or 0
        if call.assigned is None and self._lifecycle.draining:
            # Turned away by the shutdown before it ran: it stays queued for the next start.
            q.attempts -= 1
            await self._records.write(queue.requeued(_record(q, "queued"), undo_attempt=True))
        elif status >= 500 and q.attempts <= route.retries:
            note = f"run {q.attempts} of {route.retries + 1} failed ({status}): {record.error}"
            await self._records.write(queue.requeued(_record(q, "queued", note)))
            q.state = "queued"
            self._push(q)
        else:
            await self._records.write(queue.ended(record, response))
            self._ended(q)

    def _route_limit(self, key: RouteKey) -> int:
        """A route's `max_containers`; for a hot route twice that: its pool holds it to
        its containers, and a call's store steps (its request read, its start committed)
        overlap the call before it, so a warm container does not idle between queued
        calls. The calls ahead wait in the pool, behind any sync call."""
        try:
            route = self._registry.route(*key)
        except NotFound:
            return 1  # its calls end at once, in error
        share = HOT_ROUTE_SHARE if route.hot else 1
        return share * route.max_containers

    def _retries(self, q: Queued) -> int:
        try:
            return self._registry.route(q.app, q.route).retries
        except NotFound:
            return 0

    # -- shutdown ------------------------------------------------------------------------

    async def close(self) -> None:
        """Past the shutdown grace, stops the calls still running; their rows stay
        `running`, so the next start ends them as restarted (or retries them)."""
        await self._runs.close(0)


class NoAsyncCalls:
    """The stand-in while call records are off: async calls are call records first, so
    there are none; one submitted is refused with the reason."""

    queued = 0
    running = 0

    def queued_by_route(self) -> dict[tuple[str, str], int]:
        return {}

    async def recover(self) -> None:
        pass

    def start(self) -> None:
        pass

    async def submit(self, call: Call) -> None:
        raise ServiceUnavailable("async calls need call records (EXECUTOR_CALL_RECORDS=false)")

    async def cancel(self, call_id: str) -> bool:
        return False

    async def close(self) -> None:
        pass


@dataclass(slots=True)
class _Backlog:
    calls: int = 0
    bytes: int = 0


def _by_id(q: Queued) -> str:
    return q.id


def _record(
    q: Queued, state: CallState, error: str | None = None, ended: bool = False
) -> CallRecord:
    record = unended(q.id, q.app, q.route, q.method, q.created_at, state, error)
    return record._replace(completed_at=time.time()) if ended else record
