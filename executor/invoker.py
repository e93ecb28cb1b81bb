"""The invoker: from a call to the runner that serves it.

api -> Invoker.invoke -> ColdRunner (format `default`) -> DockerEngine.
"""

from __future__ import annotations

from executor.calls import Call, Response
from executor.cold import ColdRunner
from executor.docker.engine import EngineUnreachable
from executor.errors import FunctionFailed, ServiceUnavailable
from executor.registry import Registry


class Invoker:
    def __init__(self, registry: Registry, cold: ColdRunner) -> None:
        self._registry = registry
        self._cold = cold
        self._draining = False

    async def drain(self, grace: float) -> None:
        """At shutdown: refuses new calls, lets calls in flight finish within `grace`."""
        self._draining = True
        await self._cold.drain(grace)

    async def invoke(self, call: Call) -> Response:
        if self._draining:
            raise ServiceUnavailable("executor shutting down: not taking calls")
        try:
            image = await self._registry.image(call.route.image)
        except EngineUnreachable as exc:
            raise ServiceUnavailable(exc.message) from None
        if image is None:
            raise FunctionFailed(f"image {call.route.image!r} is not on the Docker engine")
        response = await self._cold.run(call, image)
        headers = [(k, v) for k, values in call.route.headers.items() for v in values]
        return Response(response.status, response.body, headers + response.headers)
