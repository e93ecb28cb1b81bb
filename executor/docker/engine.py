"""The container driver: `Engine`, what the executor asks of a container engine, and
`DockerEngine`, the one thin wrapper over aiodocker that makes every Docker Engine API
call. Tests drive the pools, the cold runner and the invoker with a fake `Engine`
(tests/fake_engine.py).

Two clients share the engine: `_api` for short requests, and `_streams`, with a connector
of its own and no connection limit, for attach and events streams that last as long as a
container. Without that split, 100 concurrent cold calls would hold aiodocker's whole
default pool (100 connections) and the next `create` would wait forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiodocker
import aiohttp
import orjson
from aiodocker.stream import Stream
from yarl import URL

from executor.errors import EngineDown, EngineError
from executor.tasks import TaskGroup

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ImageInfo:
    id: str
    user: str
    # What a container of it runs: its Entrypoint then its Cmd (a pre-started container
    # gives it to the launcher).
    command: tuple[str, ...] = ()


class Stdio(Protocol):
    """A container's attached stdin/stdout/stderr, opened before the container starts."""

    async def write(self, data: bytes) -> None: ...

    def send(self, data: bytes) -> None:
        """Writes without waiting for the engine to take it (a hot `http` call's request,
        as a socket write would)."""

    def end_input(self) -> None:
        """Ends the container's stdin (what `docker run -i` does at EOF)."""

    async def read(self) -> tuple[int, bytes] | None:
        """The next chunk of output as (stream, data), or None at EOF; stream is Docker's
        attach stream number (1 stdout, 2 stderr)."""

    async def close(self) -> None: ...


class Engine(Protocol):
    """What the executor asks of a container engine. Failures raise `EngineError`
    (`EngineDown` when it does not answer)."""

    async def close(self) -> None: ...

    async def version(self) -> dict[str, Any]: ...

    async def image(self, ref: str) -> ImageInfo | None:
        """The image's ID, USER and command, or None when the engine does not have it."""

    async def pull(self, ref: str) -> None: ...

    async def create(self, config: dict[str, Any], name: str | None = None) -> str:
        """A new container's id. Cancel-safe: one created after the caller gave up is
        removed."""

    async def attach(self, container_id: str, stdin: bool = True) -> Stdio: ...

    async def start(self, container_id: str) -> None: ...

    async def pause(self, container_id: str) -> None:
        """Freezes every process of the container (its cgroup's freezer)."""

    async def unpause(self, container_id: str) -> None: ...

    async def pid(self, container_id: str) -> int | None:
        """The host pid of the container's main process, None when it is not running."""

    def owns(self, pid: int, container_id: str) -> bool:
        """Whether process `pid` (as this process sees it) runs in the container."""

    async def remove(self, container_id: str) -> None:
        """Kill (if running) and remove; a container already gone is not an error."""

    async def containers(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """All containers (running or not) carrying every one of these labels."""

    def events(
        self,
        filters: dict[str, list[str]],
        since: str | None = None,
        on_subscribed: Callable[[], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The engine's event stream, one dict per event, until the stream breaks;
        `on_subscribed` runs once no later event can be missed."""


class DockerStdio:
    """Stdio over an aiodocker attach stream."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    async def write(self, data: bytes) -> None:
        await _attached(self._stream.write_in, data)

    def send(self, data: bytes) -> None:
        transport = self._transport()
        if transport is None or transport.is_closing():
            raise EngineError(500, "the attach stream is closed")
        transport.write(data)

    def _transport(self) -> asyncio.Transport | None:
        resp = self._stream._resp
        return resp.connection.transport if resp and resp.connection else None  # type: ignore[return-value]

    def end_input(self) -> None:
        # Stream.close() would close both directions and lose the output. Half-closing
        # the hijacked connection is how `docker run -i` ends stdin; aiodocker has no
        # public call for it (pinned in pyproject.toml for this private access).
        transport = self._transport()
        if transport is not None and transport.can_write_eof():
            transport.write_eof()

    async def read(self) -> tuple[int, bytes] | None:
        message = await _attached(self._stream.read_out)
        return None if message is None else (message.stream, message.data)

    async def close(self) -> None:
        await self._stream.close()


# cgroup v1's freezer of each container, as the engine's cgroupfs driver lays it out.
FREEZER = Path("/sys/fs/cgroup/freezer/docker")


class DockerEngine:
    def __init__(
        self,
        url: str,
        work: TaskGroup,
        on_error: Callable[[str], None] | None = None,
        direct_freezer: bool = True,
    ) -> None:
        self._direct_freezer = direct_freezer
        # Told the operation of every call that failed (executor_docker_errors_total).
        self._on_error = on_error
        self._api = aiodocker.Docker(url=url)
        self._streams = _unlimited_client(url)
        self._work = work  # removals of containers created after their caller gave up

    async def _call(
        self, operation: str, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """Runs one aiodocker call, turning its failures into EngineError/EngineDown."""
        try:
            return await fn(*args, **kwargs)
        except aiodocker.DockerError as exc:
            error: EngineError = _engine_error(exc)
        except (aiohttp.ClientError, OSError) as exc:
            error = EngineDown(str(exc) or type(exc).__name__)
        if not _expected(operation, error):
            self._failed(operation)
        raise error

    async def close(self) -> None:
        await asyncio.gather(self._api.close(), self._streams.close(), return_exceptions=True)

    async def version(self) -> dict[str, Any]:
        return await self._call("version", self._api.version)

    async def image(self, ref: str) -> ImageInfo | None:
        try:
            data = await self._call("image_inspect", self._api.images.inspect, ref)
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        config = data.get("Config") or {}
        command = (*(config.get("Entrypoint") or ()), *(config.get("Cmd") or ()))
        return ImageInfo(id=data["Id"], user=config.get("User") or "", command=command)

    async def pull(self, ref: str) -> None:
        """Pulls the image from its registry; EngineError when that fails."""
        result = await self._call("pull", self._api.images.pull, ref)
        # The engine reports some failures inside the progress stream, not as a status.
        for item in result if isinstance(result, list) else []:
            if isinstance(item, dict) and item.get("error"):
                raise EngineError(500, str(item["error"]))

    async def create(self, config: dict[str, Any], name: str | None = None) -> str:
        """Creates a container. Cancel-safe: if the caller stops waiting, the engine may
        still create it, so it is removed once created rather than leaked."""
        creating = asyncio.ensure_future(
            self._call("create", self._api.containers.create, config, name=name)
        )
        try:
            container = await asyncio.shield(creating)
        except asyncio.CancelledError:
            self._work.spawn(self._remove_once_created(creating), "remove once created")
            raise
        return container.id

    async def _remove_once_created(self, creating: asyncio.Future) -> None:
        with contextlib.suppress(EngineError, asyncio.CancelledError):
            await self.remove((await creating).id)

    async def attach(self, container_id: str, stdin: bool = True) -> Stdio:
        # aiodocker's DockerContainer.attach() inspects the container first to learn
        # whether it has a TTY; ours never do, so skip that round trip.
        async def setup() -> tuple[URL, bytes | None, bool]:
            query = {
                "stdin": int(stdin),
                "stdout": 1,
                "stderr": 1,
                "stream": 1,
                "detachKeys": "",
            }
            return URL(f"containers/{container_id}/attach").with_query(query), None, False

        stream = Stream(self._streams, setup, aiohttp.ClientTimeout())
        await self._call("attach", stream._init)
        return DockerStdio(stream)

    async def pid(self, container_id: str) -> int | None:
        data = await self._call("inspect", self._api.containers.container(container_id).show)
        return (data.get("State") or {}).get("Pid") or None

    async def start(self, container_id: str) -> None:
        await self._call("start", self._api.containers.container(container_id).start)

    async def pause(self, container_id: str) -> None:
        if not self._freeze(container_id, "FROZEN"):
            await self._call("pause", self._api.containers.container(container_id).pause)

    async def unpause(self, container_id: str) -> None:
        if not self._freeze(container_id, "THAWED"):
            await self._call("unpause", self._api.containers.container(container_id).unpause)

    def _freeze(self, container_id: str, state: str) -> bool:
        """The container's freezer written directly, where this process sees it (on the
        host, cgroup v1): thawing takes 0.12 ms, the engine's unpause about 16 ms on a
        warm call (benchmarks/pause.py). The engine does not know (it shows the container
        running); its forced removal kills a frozen container all the same."""
        if not self._direct_freezer:
            return False
        try:
            (FREEZER / container_id / "freezer.state").write_text(state)
        except OSError:
            return False
        return True

    def owns(self, pid: int, container_id: str) -> bool:
        # The engine's cgroup for a container is named after its id.
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                return container_id in f.read()
        except OSError:
            return False

    async def remove(self, container_id: str) -> None:
        try:
            await self._call(
                "remove", self._api.containers.container(container_id).delete, force=True
            )
        except EngineError as exc:
            if exc.status == 404 or (exc.status == 409 and "in progress" in exc.message):
                return
            raise

    async def containers(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        filters = orjson.dumps({"label": [f"{k}={v}" for k, v in labels.items()]}).decode()
        containers = await self._call("list", self._api.containers.list, all=True, filters=filters)
        return [c._container for c in containers]

    async def events(
        self,
        filters: dict[str, list[str]],
        since: str | None = None,
        on_subscribed: Callable[[], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        # The engine answers with headers as soon as the subscription is in place.
        params = {"filters": orjson.dumps(filters).decode()}
        if since is not None:
            params["since"] = since
        try:
            response = await self._streams._do_query(
                "events", method="GET", params=params, timeout=aiohttp.ClientTimeout()
            )
            try:
                if on_subscribed is not None:
                    on_subscribed()
                async for line in response.content:
                    if line.strip():
                        yield orjson.loads(line)
            finally:
                # aiodocker's _query() context does not release the response on exit.
                response.close()
        except aiodocker.DockerError as exc:
            self._failed("events")
            raise _engine_error(exc) from None
        except (aiohttp.ClientError, OSError) as exc:
            self._failed("events")
            raise EngineDown(str(exc) or type(exc).__name__) from None

    def _failed(self, operation: str) -> None:
        if self._on_error is not None:
            self._on_error(operation)


def _unlimited_client(url: str) -> aiodocker.Docker:
    if url.startswith("unix://"):
        connector = aiohttp.UnixConnector(path=url.removeprefix("unix://"), limit=0)
        # aiodocker composes request URLs from a dummy host when it owns a unix connector.
        return aiodocker.Docker(url="unix://localhost", connector=connector)
    return aiodocker.Docker(url=url, connector=aiohttp.TCPConnector(limit=0))


# aiodocker's status for "could not connect" (it wraps aiohttp's connection errors).
AIODOCKER_CANNOT_CONNECT = 900


async def _attached(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """A read or write on an attached stream (a container's own IO, not an engine call)."""
    try:
        return await fn(*args)
    except aiodocker.DockerError as exc:
        raise _engine_error(exc) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise EngineDown(str(exc) or type(exc).__name__) from None


def _expected(operation: str, error: EngineError) -> bool:
    """Answers that are not failures: an image not there, a container already gone."""
    if operation == "image_inspect":
        return error.status == 404
    if operation == "remove":
        return error.status in (404, 409)
    return False


def _engine_error(exc: aiodocker.DockerError) -> EngineError:
    message = exc.message
    if isinstance(message, dict):
        message = message.get("message", str(message))
    if exc.status == AIODOCKER_CANNOT_CONNECT:
        return EngineDown(str(message))
    return EngineError(exc.status, str(message))
