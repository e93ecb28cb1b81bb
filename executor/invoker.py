"""The invoker: from a call to the runner that serves it.

api -> Invoker.invoke -> HotPools (format `http-stream`) or ColdRunner (`default`)
-> DockerEngine.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from executor.calls import Call, Response
from executor.cold import ColdRunner
from executor.docker.engine import EngineUnreachable, ImageInfo
from executor.errors import FunctionFailed, ServiceUnavailable
from executor.pool.hot import PoolRetired
from executor.pool.pools import HotPools
from executor.registry import Registry


class Invoker:
    def __init__(self, registry: Registry, cold: ColdRunner, pools: HotPools) -> None:
        self._registry = registry
        self._cold = cold
        self._pools = pools
        self._draining = False

    async def drain(self, grace: float) -> None:
        """At shutdown: refuses new calls, lets calls in flight finish within `grace`."""
        self._draining = True
        await asyncio.gather(self._cold.drain(grace), self._pools.drain(grace))

    async def invoke(self, call: Call) -> Response:
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
