"""An in-process `Engine` (executor/docker/engine.py) for unit tests: no Docker.

An image is a program. A `ColdProgram` is a coroutine given the container: it reads its
stdin, prints, and returns its exit status. A `HotProgram` serves `http-stream` calls:
at start, the container listens on `lsnr.sock` in the iofs directory its create body
mounts (an aiohttp server in this process), so the executor's real readiness watcher,
socket checks and connection code run against it. A container whose entrypoint is the
launcher (a pre-started one) does what images/launcher/launch.c does: it waits for the
header on stdin, runs the program with that environment and the rest of stdin, and ends
stdout and stderr with the trailer. Exits reach the executor as the engine's `die` (and
`oom`) events, on the same event stream the real engine gives.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from executor.docker.engine import ImageInfo
from executor.errors import EngineDown, EngineError
from executor.formats import default, http_stream

ColdProgram = Callable[["FakeContainer"], Awaitable[int]]
# An `http`-format function: given each request (method, target, headers, body), the raw
# bytes it writes on stdout (a whole HTTP response, or anything else), or None to exit.
StdioHandler = Callable[["FakeContainer", str, str, dict[str, str], bytes], Awaitable[bytes | None]]
Handler = Callable[["FakeContainer", web.Request], Awaitable[web.StreamResponse]]


@dataclass
class HotProgram:
    """An http-stream function: `handle` answers each call, after `ready_after` seconds
    of start-up; with `listens` False it never binds its socket, and with `exit_code` set
    it prints `output` and exits instead."""

    handle: Handler
    ready_after: float = 0.0
    listens: bool = True
    exit_code: int | None = None
    output: bytes = b""


@dataclass
class StdioProgram:
    """An `http`-format function: it reads requests from stdin one after another."""

    handle: StdioHandler

    async def __call__(self, c: FakeContainer) -> int:
        while (request := await c.read_request()) is not None:
            answer = await self.handle(c, *request)
            if answer is None:
                return 3
            c.print(answer)
        return 0


class FakeStdio:
    def __init__(self) -> None:
        self.output: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self.stdin = bytearray()
        self.stdin_ended = asyncio.Event()
        self.stdin_grew = asyncio.Event()
        self.closed = False

    async def write(self, data: bytes) -> None:
        self.send(data)

    def send(self, data: bytes) -> None:
        if self.closed:
            raise EngineError(500, "attach stream closed")
        self.stdin += data
        self.stdin_grew.set()

    def end_input(self) -> None:
        self.stdin_ended.set()
        self.stdin_grew.set()

    async def read(self) -> tuple[int, bytes] | None:
        if self.closed:
            return None
        return await self.output.get()

    async def close(self) -> None:
        self.closed = True
        self.output.put_nowait(None)


@dataclass(eq=False)
class FakeContainer:
    id: str
    config: dict[str, Any]
    program: ColdProgram | HotProgram
    engine: FakeEngine
    stdio: FakeStdio = field(default_factory=FakeStdio)
    running: bool = False
    exit_code: int | None = None
    calls: int = 0
    # A pre-started container's call environment, from its launcher header.
    call_env: dict[str, str] = field(default_factory=dict)
    paused: bool = False
    _task: asyncio.Task | None = None
    _runner: web.AppRunner | None = None
    # Calls being handled: their task and connection, cut when the process dies.
    _in_call: dict[Any, Any] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        return self.config.get("Labels") or {}

    @property
    def env(self) -> dict[str, str]:
        env = dict(item.split("=", 1) for item in self.config.get("Env") or [])
        return {**env, **self.call_env}

    @property
    def prestarted(self) -> bool:
        return self.config.get("Entrypoint") == [default.LAUNCHER_PATH]

    @property
    def iofs(self) -> Path:
        mounts = self.config["HostConfig"].get("Mounts") or []
        return Path(next(m["Source"] for m in mounts if m["Target"] == http_stream.IOFS_MOUNT))

    def print(self, data: bytes, stream: int = 1) -> None:
        self.stdio.output.put_nowait((stream, data))

    async def read_stdin(self) -> bytes:
        await self.stdio.stdin_ended.wait()
        return bytes(self.stdio.stdin)

    async def read_request(self) -> tuple[str, str, dict[str, str], bytes] | None:
        """The next HTTP request on stdin (its body by Content-Length), None at its end."""
        stdin = self.stdio.stdin
        while True:
            end = stdin.find(b"\r\n\r\n")
            if end >= 0:
                lines = stdin[:end].decode().split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:])
                length = int(headers.get("Content-Length", "0"))
                if len(stdin) >= end + 4 + length:
                    body = bytes(stdin[end + 4 : end + 4 + length])
                    del stdin[: end + 4 + length]
                    method, target, _ = lines[0].split(" ")
                    return method, target, headers, body
            if self.stdio.stdin_ended.is_set():
                return None
            self.stdio.stdin_grew.clear()
            await self.stdio.stdin_grew.wait()

    async def exit(self, code: int, oom: bool = False) -> None:
        """The process ends: its socket closes, its output ends, the engine reports it."""
        if not self.running:
            return
        self.running = False
        self.exit_code = code
        for task, transport in list(self._in_call.items()):
            task.cancel()
            if transport is not None:
                transport.abort()  # as the kernel closes a dead process's sockets
        self.stdio.output.put_nowait(None)
        if oom:
            self.engine.emit(self.id, "oom")
        self.engine.emit(self.id, "die", code)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _run_cold(self, program: ColdProgram) -> None:
        try:
            if self.prestarted:
                nonce = await self._launcher_header()
                if nonce is None:
                    await self.exit(0)  # stdin ended before any call
                    return
            code = await program(self)
        except asyncio.CancelledError:
            return
        if self.prestarted and not self.engine.launcher_killed:
            trailer = nonce + code.to_bytes(4, "big")
            self.print(trailer)
            self.print(trailer, stream=2)
        await self.exit(code)

    async def _launcher_header(self) -> bytes | None:
        """As the launcher: the header's nonce, its entries set in `call_env` and taken
        off stdin; None if stdin ends first."""
        stdin = self.stdio.stdin
        fixed = len(default.LAUNCHER_MAGIC) + default.NONCE_SIZE + 4
        while True:
            if len(stdin) >= fixed:
                size = int.from_bytes(stdin[fixed - 4 : fixed], "big")
                if len(stdin) >= fixed + size:
                    assert stdin[:4] == default.LAUNCHER_MAGIC
                    nonce = bytes(stdin[4 : 4 + default.NONCE_SIZE])
                    entries = bytes(stdin[fixed : fixed + size]).split(b"\0")[:-1]
                    self.call_env = dict(e.decode().split("=", 1) for e in entries)
                    del stdin[: fixed + size]
                    return nonce
            if self.stdio.stdin_ended.is_set():
                return None
            self.stdio.stdin_grew.clear()
            await self.stdio.stdin_grew.wait()

    async def _serve(self, program: HotProgram) -> None:
        await asyncio.sleep(program.ready_after)
        if program.exit_code is not None:
            self.print(program.output, stream=2)
            await self.exit(program.exit_code)
            return
        if not program.listens:
            return

        async def handle(request: web.Request) -> web.StreamResponse:
            if self.paused:  # a frozen process answers nothing: the test sees it broken
                return web.Response(status=599, text="called while paused")
            self.calls += 1
            task = asyncio.current_task()
            self._in_call[task] = request.transport
            try:
                return await program.handle(self, request)
            finally:
                self._in_call.pop(task, None)

        app = web.Application()
        app.router.add_post("/call", handle)
        # Stopped at once when the container exits: a call in flight sees its connection cut.
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0)
        await runner.setup()
        await web.UnixSite(runner, str(self.iofs / http_stream.SOCKET_NAME)).start()
        self._runner = runner


class FakeEngine:
    def __init__(self, images: dict[str, ColdProgram | HotProgram] | None = None) -> None:
        # A StdioProgram is a ColdProgram that reads requests: both run as the process.
        self.images: dict[str, ColdProgram | HotProgram] = dict(images or {})
        self.live: dict[str, FakeContainer] = {}  # created and not removed
        self.created: list[str] = []
        self.removed: list[str] = []
        self.down = False  # every call fails as if the engine were unreachable
        self.fail: dict[str, EngineError] = {}  # operation -> the error it raises
        self.create_delay = 0.0
        self.pauses: list[str] = []
        self.unpauses: list[str] = []
        # Pre-started containers' launchers die with their program: no trailer comes.
        self.launcher_killed = False
        self._subscribers: list[tuple[dict[str, list[str]], asyncio.Queue]] = []
        self._next = 0

    # -- what tests use ------------------------------------------------------------------

    def running(self) -> list[FakeContainer]:
        return [c for c in self.live.values() if c.running]

    def emit(self, container_id: str, action: str, code: int = 0) -> None:
        event = {
            "Type": "container",
            "id": container_id,
            "Action": action,
            "Actor": {"ID": container_id, "Attributes": {"exitCode": str(code)}},
            "timeNano": time.time_ns(),
        }
        for filters, queue in self._subscribers:
            if "container" in filters.get("type", ["container"]):
                queue.put_nowait(event)

    def _check(self, operation: str) -> None:
        if self.down:
            raise EngineDown("connection refused (fake)")
        if operation in self.fail:
            raise self.fail[operation]

    def _image_id(self, ref: str) -> str:
        return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()

    # -- the Engine protocol -------------------------------------------------------------

    async def close(self) -> None:
        for c in list(self.live.values()):
            await c.exit(137)

    async def version(self) -> dict[str, Any]:
        self._check("version")
        return {"Version": "fake"}

    async def image(self, ref: str) -> ImageInfo | None:
        self._check("image_inspect")
        if ref in self.images:
            return ImageInfo(id=self._image_id(ref), user="", command=("/func",))
        return None

    async def pull(self, ref: str) -> None:
        self._check("pull")
        raise EngineError(404, f"pull access denied for {ref} (fake: no registry)")

    async def create(self, config: dict[str, Any], name: str | None = None) -> str:
        self._check("create")
        await asyncio.sleep(self.create_delay)
        programs = {self._image_id(ref): program for ref, program in self.images.items()}
        program = programs.get(config["Image"]) or self.images.get(config["Image"])
        if program is None:
            raise EngineError(404, f"No such image: {config['Image']}")
        self._next += 1
        container_id = f"{self._next:012x}" + "f" * 52
        self.live[container_id] = FakeContainer(container_id, config, program, self)
        self.created.append(container_id)
        return container_id

    async def attach(self, container_id: str, stdin: bool = True) -> FakeStdio:
        self._check("attach")
        return self._container(container_id).stdio

    async def start(self, container_id: str) -> None:
        self._check("start")
        c = self._container(container_id)
        c.running = True
        if isinstance(c.program, HotProgram):
            c._task = asyncio.create_task(c._serve(c.program))
        else:
            c._task = asyncio.create_task(c._run_cold(c.program))

    async def pause(self, container_id: str) -> None:
        self._check("pause")
        self._container(container_id).paused = True
        self.pauses.append(container_id)

    async def unpause(self, container_id: str) -> None:
        self._check("unpause")
        self._container(container_id).paused = False
        self.unpauses.append(container_id)

    async def pid(self, container_id: str) -> int | None:
        return None

    def owns(self, pid: int, container_id: str) -> bool:
        # Every fake container's process is this one.
        return pid == os.getpid() and container_id in self.live

    async def remove(self, container_id: str) -> None:
        self._check("remove")
        c = self.live.pop(container_id, None)
        if c is None:
            return
        self.removed.append(container_id)
        if c._task is not None:
            c._task.cancel()
        await c.exit(137)
        await c.stdio.close()

    async def containers(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        self._check("list")
        return [
            {"Id": c.id, "Labels": c.labels}
            for c in self.live.values()
            if all(c.labels.get(k) == v for k, v in labels.items())
        ]

    async def events(
        self,
        filters: dict[str, list[str]],
        since: str | None = None,
        on_subscribed: Callable[[], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        self._check("events")
        queue: asyncio.Queue = asyncio.Queue()
        entry = (filters, queue)
        self._subscribers.append(entry)
        try:
            if on_subscribed is not None:
                on_subscribed()
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(entry)

    def _container(self, container_id: str) -> FakeContainer:
        c = self.live.get(container_id)
        if c is None:
            raise EngineError(404, f"No such container: {container_id}")
        return c


# -- programs ------------------------------------------------------------------------------


async def echo(c: FakeContainer) -> int:
    """A default-format function: its stdin back on stdout."""
    c.print(await c.read_stdin())
    return 0


def exits_with(code: int, stderr: bytes = b"") -> ColdProgram:
    async def program(c: FakeContainer) -> int:
        await c.read_stdin()
        if stderr:
            c.print(stderr, stream=2)
        return code

    return program


async def hangs(c: FakeContainer) -> int:
    await asyncio.Event().wait()
    return 0


async def hot_echo(c: FakeContainer, request: web.Request) -> web.Response:
    """An http-stream function: the body back, with the call id it was given."""
    body = await request.read()
    return web.Response(body=body, headers={"Fn-Http-H-Call": request.headers["Fn-Call-Id"]})


def hot_sleeps(seconds: float) -> Handler:
    async def handle(c: FakeContainer, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(seconds)
        return web.Response(body=b"slept")

    return handle


async def hot_dies(c: FakeContainer, request: web.Request) -> web.Response:
    """Dies mid-call, out of memory."""
    await request.read()
    asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(c.exit(137, oom=True)))
    await asyncio.sleep(10)
    return web.Response(body=b"never")


def http_response(status: int, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def http_echo(
    c: FakeContainer, method: str, target: str, headers: dict[str, str], body: bytes
) -> bytes | None:
    """An `http` function: `crash` exits mid-call, `garbage` is not HTTP, `nolength` has
    no Content-Length; anything else comes back with what the request said."""
    if body == b"crash":
        return None
    if body == b"garbage":
        return b"not http at all\r\n\r\n"
    if body == b"nolength":
        return b"HTTP/1.1 200 OK\r\n\r\nbody"
    if body == b"twice":  # a second answer nobody asked for, printed while idle
        return http_response(200, b"first") + http_response(200, b"unasked")
    seen = f"{method} {target} {headers.get('PARAM_ID', '-')} {headers.get('Task-ID')}"
    return http_response(200, body + b" " + seen.encode(), "X-Fn: http")
