"""The Docker engine going away and coming back, without stopping the machine's engine: the
executor talks to it through a unix-socket proxy that the test cuts and restores."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path

from tests.integration.conftest import running, settings_for
from tests.integration.test_invoke_hot import HOT, call, hot_containers, wait_pool

ENGINE = "/var/run/docker.sock"


class EngineProxy:
    """Forwards connections on `path` to the engine's socket; cut() closes every one
    of them and refuses new ones until restore()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.is_cut = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.is_cut = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_unix_connection(ENGINE)
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._writers -= {writer, up_writer}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # a half-close (a cold call's stdin) passes through
        except (ConnectionError, OSError):
            writer.transport.abort()


async def until(check, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_the_engine_cut_then_restored_answers_503_then_recovers_without_restart(
    db: Path, tmp_path: Path
):
    proxy = EngineProxy(tmp_path / "engine.sock")
    await proxy.start()
    try:
        async with running(settings_for(db, docker_url=f"unix://{proxy.path}")) as ex:
            await ex.route("/hello", "executor/hello")
            await ex.route("/hot", HOT, format="http-stream", min_warm=1)
            await wait_pool(ex, "/hot", idle=1)
            assert (await call(ex, "/hello"))[0].status == 200
            [first] = hot_containers(ex)

            proxy.cut()

            async def not_ready() -> bool:
                return (await ex.client.get("/health/ready")).status == 503

            await until(not_ready, 5, "/health/ready stayed 200 with the engine cut off")
            ready = await ex.json("GET", "/health/ready", status=503)
            assert "Docker" in ready["error"]["message"]
            response, body = await call(ex, "/hello")
            assert response.status == 503, body
            assert b"Docker engine unreachable" in body
            # The warm path needs no engine: a warm container still answers.
            response, _ = await call(ex, "/hot")
            assert response.status == 200
            # Meanwhile the hot container dies; the executor cannot hear of it yet.
            subprocess.run(["docker", "kill", first], capture_output=True, check=True)

            proxy.restore()

            async def ready_again() -> bool:
                return (await ex.client.get("/health/ready")).status == 200

            await until(ready_again, 10, "/health/ready never came back")
            assert (await call(ex, "/hello"))[0].status == 200

            async def replaced() -> bool:
                return bool(set(hot_containers(ex)) - {first})

            await until(replaced, 15, "the dead hot container was never replaced")
            await wait_pool(ex, "/hot", idle=1)
            response, _ = await call(ex, "/hot")
            assert response.status == 200
            assert response.headers["Executor-Start"] == "warm"
    finally:
        with contextlib.suppress(Exception):
            await proxy.close()
