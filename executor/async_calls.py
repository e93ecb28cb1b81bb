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
from executor.store.calls import CallRecords, bound
from executor.store.database import STORE_ERRORS, Database
from executor.store.queue import Queued, Request
from executor.tasks import TaskGroup

log = logging.getLogger(__name__)

RESTARTED = "executor restarted while the call ran"
NODE_LOST = "the node running the call was lost (its lease ran out)"
# The notices of calls queued through a node (shared store): the payload is the call id.
QUEUE_CHANGED = "executor_queue"
# On a shared store: how often a node reads the queue for calls whose notice it missed
# and for running calls whose node's lease ran out.
POLL_EVERY = 1.0
# A call whose store step failed (the store gone) is tried again after this.
STORE_RETRY_AFTER = 1.0
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
        db: Database,
        node: str,
        records: CallRecords,
        registry: Registry,
        invoker: Invoker,
        settings: Settings,
        lifecycle: Lifecycle,
    ) -> None:
        self._db = db
        # This node: it claims the calls it runs, under a lease it renews (shared store).
        self._node = node
        self._lease = settings.async_lease
        self._mine: set[str] = set()  # ids of the calls this node runs now
        self._upkeep = TaskGroup("async queue upkeep")
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
        """Takes the queue over from this node's process before (before serving): calls it
        was running end in `error`, or are queued again if their route has retries left;
        every queued call (any node's, on a shared store) is known."""
        restarted = await self._take_over(mine=True)
        for q in await queue.queued(self._db):
            self._learn(q)
        if self._queued or restarted:
            log.info(
                "async calls: %d queued, %d were running when the executor stopped",
                len(self._queued),
                restarted,
            )

    def start(self) -> None:
        if self._db.shared:
            self._upkeep.every(self._lease / 3, self._renew_leases, "renew async calls' leases")
            self._upkeep.every(POLL_EVERY, self._read_queue, "async calls of other nodes")
        self._dispatch()

    async def heard(self, notice: str) -> None:
        """A notice of a call queued through a node (shared store; "<node> <call id>"):
        known now, run by the node that claims it first; this node's own are known
        already. An empty notice (missed ones): the whole queue."""
        node, _, call_id = notice.partition(" ")
        if node == self._node:
            return
        for q in await queue.queued(self._db, call_id or None):
            self._learn(q)
        self._dispatch()

    def _learn(self, q: Queued) -> None:
        if q.id not in self._queued and q.id not in self._mine:
            self._push(q)

    async def _take_over(self, mine: bool) -> int:
        """Running calls no live node runs: this node's from before its restart (mine), or
        any node's whose lease ran out. Each is queued again if its route has retries
        left, else ends in `error`, in one transaction that holds their rows."""
        now, why = time.time(), RESTARTED if mine else NODE_LOST
        again: list[Queued] = []
        done: list[Queued] = []
        async with self._db.transaction() as tx:
            lock = self._db.lock_rows
            found = await (
                queue.orphaned(tx, self._node, lock) if mine else queue.expired(tx, now, lock)
            )
            for q in found:
                if q.attempts <= self._retries(q):
                    note = f"{why}; run {q.attempts} of {self._retries(q) + 1}"
                    ops = queue.requeued(_record(q, "queued", note))
                    q.state = "queued"
                    again.append(q)
                else:
                    ops = queue.ended(_record(q, "error", why, ended=True), None)
                    done.append(q)
                for op in ops:
                    await tx.execute(*bound(op, self._node))
        for q in again:
            self._learn(q)
        for q in done:
            self._ended(q)
        if found and not mine:
            log.warning("async calls: %d taken over from a lost node", len(found))
        return len(found)

    async def _renew_leases(self) -> None:
        if self._mine:
            try:
                until = time.time() + self._lease
                await queue.renew(self._db, list(self._mine), self._node, until)
            except STORE_ERRORS as exc:
                log.warning("async calls: leases not renewed: %s", exc)

    async def _read_queue(self) -> None:
        """Calls queued by other nodes whose notice was missed, and calls of lost nodes."""
        try:
            await self._take_over(mine=False)
            await self.heard("")
        except STORE_ERRORS as exc:
            log.warning("async calls: the shared queue not read: %s", exc)

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
        ops = queue.enqueued(_record(q, "queued"), request)
        if self._db.shared:  # the other nodes hear of it once it commits
            ops.append(("SELECT pg_notify(?, ?)", (QUEUE_CHANGED, f"{self._node} {q.id}")))
        committed = self._records.write(ops)
        # Queued once committed, whether or not the caller still waits for its 202.
        committed.add_done_callback(lambda f: self._committed(f, q))
        try:
            await asyncio.shield(committed)
        except STORE_ERRORS as exc:
            raise ServiceUnavailable(f"could not store the call: {exc}") from None

    def _committed(self, done: asyncio.Future, q: Queued) -> None:
        if not done.cancelled() and done.exception() is None:
            if q.id in self._queued or q.id in self._mine:
                # Already read back from the shared queue (a poll between the commit and
                # this callback): that one stays, its request read when it runs.
                self._release(q)
                self._count(q, -1)
                return
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
        if q is not None:
            self._queues[(q.app, q.route)].remove(q)
            self._release(q)
            self._count(q, -1)
        elif self._db.shared:  # queued through another node, maybe not heard of yet
            found = await queue.queued(self._db, call_id)
            if not found:
                return False
            q = found[0]
        else:
            return False
        if not await queue.cancel(self._db, _record(q, "cancelled", ended=True), self._node):
            return False  # another node began it meanwhile
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
            self._queued.pop(q.id, None)
            self._count(q, -1)
            q.state = "running"
            self._running[best] += 1
            task = self._runs.spawn(self._run(q), f"async call {q.id}")
            task.add_done_callback(lambda _: self._dispatch())

    async def _run(self, q: Queued) -> None:
        key = (q.app, q.route)
        try:
            await self._run_once(q)
        except STORE_ERRORS as exc:
            # The store is gone: tried again later. A claim that did commit is not claimed
            # twice (it is conditional); a call whose end was not written is taken over
            # once its lease runs out, as that of a lost node.
            log.warning("async call %s: the store failed: %s", q.id, exc)
            q.state = "queued"
            asyncio.get_running_loop().call_later(STORE_RETRY_AFTER, self._retry, q)
        finally:
            self._mine.discard(q.id)
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
            if not self._queues.get(key, True):
                del self._queues[key]

    async def _run_once(self, q: Queued) -> None:
        held = self._release(q)
        # Claimed first: of the nodes that know of the call only one runs or ends it, and
        # a node that loses the claim reads no body.
        until = time.time() + self._lease
        attempt = await queue.claim(self._db, _record(q, "running"), self._node, until)
        if attempt is None:
            return  # another node claimed it first, or it was cancelled
        self._mine.add(q.id)
        q.attempts = attempt
        try:
            # On a shared store a route made through another node a moment ago may not
            # be here yet (its call's notice can come first).
            app, route = await self._registry.route_latest(q.app, q.route)
        except NotFound as exc:
            record = _record(q, "error", exc.message, ended=True)._replace(http_status=404)
            await self._records.write(queue.ended(record, None))
            self._ended(q)
            return
        request = held or await queue.request(self._db, q.id)
        if request is None:  # cannot happen: the row is this node's until it ends
            log.error("async call %s is gone from the queue", q.id)
            return
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

    def _retry(self, q: Queued) -> None:
        if not self._lifecycle.draining:
            self._learn(q)
            self._dispatch()

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
        `running`, so the next start ends them as restarted (or retries them), or another
        node does once their lease runs out."""
        await self._upkeep.close(0)
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

    async def heard(self, notice: str) -> None:
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
