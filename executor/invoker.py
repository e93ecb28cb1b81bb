"""The invoker: from a call to the runner that serves it, and the call's accounting.

api -> Invoker.invoke -> the route's HotPool (formats `http`, `http-stream`) or the
ColdRunner (`default`: in a container its PrestartPool has ready, else a new one) ->
Engine. When the call ends: its metrics and its record (CallRecords, written in the
background).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import structlog

from executor.calls import NO_START, Call, CallRecord, Response, StoredResponse, ended
from executor.cold import ColdRunner
from executor.docker.engine import ImageInfo
from executor.errors import (
    NOT_TAKING_CALLS,
    EngineDown,
    EngineUnreachable,
    ExecutorError,
    ImageMissing,
    NotFound,
    ShuttingDown,
)
from executor.lifecycle import Lifecycle
from executor.metrics import Metrics
from executor.pool.base import PoolRetired, RoutePool
from executor.pool.hot import HotPool
from executor.pool.pools import RoutePools
from executor.registry import Registry
from executor.stats import CallStats
from executor.store.calls import Records


class Invoker:
    def __init__(
        self,
        registry: Registry,
        cold: ColdRunner,
        pools: RoutePools,
        metrics: Metrics,
        records: Records,
        lifecycle: Lifecycle,
        stats: CallStats,
    ) -> None:
        self._registry = registry
        self._stats = stats
        self._cold = cold
        self._pools = pools
        self._metrics = metrics
        self._records = records
        self._lifecycle = lifecycle

    async def invoke(self, call: Call) -> Response:
        # Every log line this call causes carries its id, background tasks it starts too.
        bound = structlog.contextvars.bind_contextvars(call_id=call.id)
        try:
            response = await self._run(call)
        except ExecutorError as exc:
            self._ended(call, exc.status, exc.message)
            raise
        except asyncio.CancelledError:
            self._ended(call, None, "the caller went away")
            raise
        finally:
            structlog.contextvars.reset_contextvars(**bound)
        if response.rest is not None:
            return replace(response, rest=self._streamed(call, response.status, response.rest))
        self._ended(call, response.status, None)
        return response

    async def _streamed(
        self, call: Call, status: int, rest: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """A large response's remainder: the call ends when the caller has it all."""
        try:
            async with contextlib.aclosing(rest):  # closed early: the pool's cleanup runs
                async for part in rest:
                    yield part
        except ExecutorError as exc:
            self._ended(call, exc.status, f"response cut off: {exc.message}")
            raise
        except GeneratorExit:
            self._ended(call, None, "the caller went away")
            raise
        self._ended(call, status, None)

    async def run_queued(self, call: Call, keep: int) -> tuple[CallRecord, StoredResponse | None]:
        """Runs an async call to its end: its record, and its response (the first `keep`
        bytes of its body) if the function answered. Its log is left in `call.log` (cold
        calls; hot calls' lines go to the records as they come)."""
        bound = structlog.contextvars.bind_contextvars(call_id=call.id)
        kept = None
        error = None
        try:
            response = await self._run(call)
            body, truncated = await _kept(response, keep)
            status = response.status
            kept = StoredResponse(status, response.headers, body, truncated)
        except ExecutorError as exc:
            status, error = exc.status, exc.message
        finally:
            structlog.contextvars.reset_contextvars(**bound)
        completed = time.perf_counter()
        self._measure(call, status, completed)
        return ended(call, status, error, completed), kept

    def _ended(self, call: Call, status: int | None, error: str | None) -> None:
        completed = time.perf_counter()
        if status is not None:
            self._measure(call, status, completed)
        self._records.add(ended(call, status, error, completed), call.log)

    def _measure(self, call: Call, status: int, completed: float) -> None:
        assigned = call.assigned if call.assigned is not None else completed
        self._metrics.call_done(
            call.app.name,
            call.route.path,
            status,
            call.start or NO_START,
            completed - call.received,
            assigned - call.received,
        )

    async def _run(self, call: Call) -> Response:
        key = (call.app.name, call.route.path)
        self._stats.started(key)
        failed = True
        try:
            response = await self._serve(call)
            failed = response.status >= 500
            return response
        finally:
            self._stats.ended(key, failed)

    async def _serve(self, call: Call) -> Response:
        if self._lifecycle.draining:
            raise ShuttingDown(NOT_TAKING_CALLS)
        route = call.route
        if route.hot:
            pool = self._pools.hot(call.app.name, route.path)
            if pool is None:
                opened = self._open_pool(call, await self._image(call))
                if not isinstance(opened, HotPool):
                    raise NotFound(f"route {route.path!r} was removed while the call waited")
                pool = opened
            try:
                response = await pool.call(call)
            except PoolRetired:
                # Drained while the call waited (the route changed): its new pool.
                response = await self._pools.call_after_retire(call, pool)
        else:
            response = await self._single_use(call)
        if route.headers:
            added = [(k, v) for k, values in route.headers.items() for v in values]
            return replace(response, headers=added + response.headers)
        return response

    async def _single_use(self, call: Call) -> Response:
        """A `default` call: in a pre-started container when its route has one ready,
        else cold at once (never waiting for a pre-start)."""
        app, route = call.app, call.route
        pool = self._pools.prestarted(app.name, route.path)
        container = pool.take(call.id) if pool is not None else None
        if pool is not None and container is not None:
            return await self._cold.run_prestarted(call, container, pool)
        image = await self._image(call)
        if pool is None and route.min_warm:
            self._open_pool(call, image)  # pre-starts for the next calls
        return await self._cold.run(call, image)

    def _open_pool(self, call: Call, image: ImageInfo) -> RoutePool | None:
        """The route's pool, not announced yet (the engine was unreachable at start-up,
        say); None when the route went while its image was looked up: a deleted route's
        pool is never brought back."""
        if not self._registry.current(call.route):
            return None
        return self._pools.open(call.app, call.route, image)

    async def _image(self, call: Call) -> ImageInfo:
        try:
            image = await self._registry.image(call.route.image)
        except EngineDown as exc:
            raise EngineUnreachable(exc.message) from None
        if image is None:
            raise ImageMissing(call.route.image)
        return image


async def _kept(response: Response, keep: int) -> tuple[bytes, bool]:
    """The first `keep` bytes of a response's body, reading (and dropping) the rest; and
    whether any was dropped."""
    parts = [response.body[:keep]]
    size = len(response.body)
    if response.rest is not None:
        async with contextlib.aclosing(response.rest):
            async for part in response.rest:
                if size < keep:
                    parts.append(part[: keep - size])
                size += len(part)
    return b"".join(parts), size > keep
