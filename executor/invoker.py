"""The invoker: from a call to the runner that serves it, and the call's accounting.

api -> Invoker.invoke -> HotPools (format `http-stream`) or ColdRunner (`default`)
-> DockerEngine. When the call ends: its metrics and its record (CallRecords, written in
the background).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import structlog

from executor.calls import Call, Response, ended
from executor.cold import ColdRunner
from executor.docker.engine import EngineUnreachable, ImageInfo
from executor.errors import ExecutorError, FunctionFailed, ServiceUnavailable
from executor.metrics import Metrics
from executor.pool.hot import PoolRetired
from executor.pool.pools import HotPools
from executor.registry import Registry
from executor.store.calls import CallRecords

# Label of calls that never got a container (turned away, or failed before one).
NO_START = "none"


class Invoker:
    def __init__(
        self,
        registry: Registry,
        cold: ColdRunner,
        pools: HotPools,
        metrics: Metrics,
        records: CallRecords | None,
    ) -> None:
        self._registry = registry
        self._cold = cold
        self._pools = pools
        self._metrics = metrics
        self._records = records
        self._draining = False

    async def drain(self, grace: float) -> None:
        """At shutdown: refuses new calls, lets calls in flight finish within `grace`."""
        self._draining = True
        await asyncio.gather(self._cold.drain(grace), self._pools.drain(grace))

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

    def _ended(self, call: Call, status: int | None, error: str | None) -> None:
        completed = time.perf_counter()
        if status is not None:
            assigned = call.assigned if call.assigned is not None else completed
            self._metrics.call_done(
                call.app.name,
                call.route.path,
                status,
                call.start or NO_START,
                completed - call.received,
                assigned - call.received,
            )
        if self._records is not None:
            self._records.add(ended(call, status, error, completed), call.log)

    async def _run(self, call: Call) -> Response:
        if self._draining:
            raise ServiceUnavailable("executor shutting down: not taking calls")
        route = call.route
        if route.format == "http-stream":
            pool = self._pools.pool(call.app.name, route.path)
            if pool is None:
                # Not announced yet (the engine was unreachable at start-up, say).
                self._pools.sync(call.app, route, await self._image(call))
                pool = self._pools.pool(call.app.name, route.path)
                if pool is None:
                    raise ServiceUnavailable("executor shutting down: not taking calls")
            try:
                response = await pool.call(call)
            except PoolRetired:
                # Drained while the call waited (the route changed): its new pool.
                response = await self._pools.call_after_retire(call, pool)
        else:
            response = await self._cold.run(call, await self._image(call))
        if route.headers:
            added = [(k, v) for k, values in route.headers.items() for v in values]
            return replace(response, headers=added + response.headers)
        return response

    async def _image(self, call: Call) -> ImageInfo:
        try:
            image = await self._registry.image(call.route.image)
        except EngineUnreachable as exc:
            raise ServiceUnavailable(exc.message) from None
        if image is None:
            raise FunctionFailed(f"image {call.route.image!r} is not on the Docker engine")
        return image
