"""Hostile and broken callers on the real engine: bad input gets a 4xx, never a 500; slow
or vanishing peers hold no container and no memory past their bounds."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from yarl import URL

from executor.app import create_app
from executor.state import EXECUTOR
from tests.conftest import GROUPS, remove_group_containers
from tests.integration.conftest import Executor, running, settings_for
from tests.integration.test_async import ended, submit
from tests.integration.test_invoke_hot import HOT, call, hot_containers, wait_pool


async def raw(ex: Executor, data: bytes, *, then: bytes | None = None, pause: float = 0.0):
    """Sends `data` on a connection of its own (and `then` after `pause`); the reader and
    writer, for the test to read the answer (or not)."""
    url = URL(ex.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(data)
    await writer.drain()
    if then is not None:
        await asyncio.sleep(pause)
        writer.write(then)
        await writer.drain()
    return reader, writer


async def answer(reader: asyncio.StreamReader, within: float = 10) -> tuple[int, bytes]:
    """The status and the body of the response on a raw connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), within)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, await asyncio.wait_for(reader.readexactly(length), within)


# -- bad input: 4xx, never 500 -------------------------------------------------------------


async def test_odd_numbers_in_call_queries_are_400s(executor):
    await executor.route("/echo", "executor-test/echo")
    for query in ("since=inf", "since=nan", "since=1e300", "since=-1", "per_page=%C2%B2"):
        response = await executor.client.get(f"/v1/apps/t/calls?{query}")
        assert response.status == 400, query
        assert "message" in (await response.json())["error"]


async def test_a_token_that_is_not_utf8_is_a_401(db: Path):
    async with running(settings_for(db, api_token="sekret")) as ex:
        reader, writer = await raw(
            ex, b"GET /v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\r\n\r\n"
        )
        status, body = await answer(reader)
        writer.close()
        assert (status, body) == (401, b'{"error":{"message":"wrong API token"}}')


async def test_a_header_that_is_not_utf8_reaches_an_async_call_unchanged(executor):
    await executor.route("/env", "executor-test/env")
    reader, writer = await raw(
        executor,
        b"POST /r/t/env HTTP/1.1\r\nHost: x\r\nFn-Invoke-Type: detached\r\n"
        b"X-Odd: caf\xe9\r\nContent-Length: 0\r\n\r\n",
    )
    status, body = await answer(reader)
    writer.close()
    assert status == 202, body
    call_id = body.split(b'"')[3].decode()
    record = await ended(executor, call_id)
    assert record["state"] == "success", record
    response = await executor.client.get(f"/v1/calls/{call_id}/response")
    seen = await response.read()
    assert b"FN_HEADER_X_ODD=caf\xe9" in seen or b"FN_HEADER_X_ODD=caf\xef\xbf\xbd" in seen


async def test_a_client_that_leaves_mid_body_is_logged_as_gone_not_as_an_error(db, caplog):
    # Served as `executor serve` serves (aiohttp's test server cancels the handler of a
    # client that leaves, which hides what the handler would do).
    caplog.set_level(logging.INFO)
    app = create_app(settings_for(db))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    GROUPS.add(app[EXECUTOR].identity.group)
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
            await client.post("/v1/apps", json={"app": {"name": "t"}})
            route = {"route": {"image": "executor-test/echo"}}
            await client.put("/v1/apps/t/routes/echo", json=route)
        for head in (b"PUT /v1/apps/t/routes/x", b"POST /r/t/echo"):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.close()
            await asyncio.sleep(0.3)
    finally:
        await runner.cleanup()
        remove_group_containers(app[EXECUTOR].identity.group)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert caplog.text.count("client disconnected during") == 2


async def test_route_headers_that_frame_the_response_are_refused(executor):
    await executor.json("POST", "/v1/apps", {"app": {"name": "t"}}, 200)
    for name in ("Content-Length", "transfer-encoding", "Connection", "Upgrade"):
        route = {"image": "executor-test/echo", "headers": {name: "1"}}
        data = await executor.json("PUT", "/v1/apps/t/routes/x", {"route": route}, 400)
        assert "frames the response" in data["error"]["message"]


# -- slow peers ----------------------------------------------------------------------------


async def test_a_request_body_that_never_ends_is_cut_at_the_calls_deadline(executor):
    await executor.route("/echo", "executor-test/echo", timeout=1)
    started = time.monotonic()
    reader, writer = await raw(
        executor, b"POST /r/t/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"
    )
    status, body = await answer(reader)
    writer.close()
    assert status == 408, body
    assert b"before the call's deadline" in body
    assert time.monotonic() - started < 5


async def test_an_api_body_that_never_ends_is_cut_at_the_body_timeout(db: Path):
    async with running(settings_for(db, body_timeout=0.5)) as ex:
        reader, writer = await raw(
            ex, b"POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        status, body = await answer(reader)
        writer.close()
        assert status == 408, body


async def test_a_caller_that_never_reads_a_hot_response_frees_the_container_at_its_deadline(
    executor,
):
    await executor.route("/hot", HOT, format="http-stream", max_containers=1, timeout=2)
    await wait_pool(executor, "/hot", idle=1)
    # 5 MB the caller never reads: more than the socket buffers hold.
    _, writer = await raw(
        executor, b"POST /r/t/hot HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nbig 5000000"
    )
    await wait_pool(executor, "/hot", busy=1)
    [held] = hot_containers(executor)
    # At the deadline (2 s) the response is cut and the container replaced: the caller,
    # who still reads nothing, holds it no longer.
    await wait_pool(executor, "/hot", within=8, idle=1, busy=0)
    assert held not in hot_containers(executor)
    response, body = await call(executor, "/hot")
    assert response.status == 200, body
    writer.close()


async def test_a_caller_that_never_reads_a_large_cold_response_is_cut_off(db: Path):
    async with running(settings_for(db, send_timeout=0.5)) as ex:
        await ex.route("/echo", "executor-test/echo")
        body = b"x" * 6_000_000  # more than the kernel's socket buffers hold (4 MiB)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # a window that stays small
        url = URL(ex.url)
        sock.connect((url.host, url.port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(
            b"POST /r/t/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        writer.write(body)
        await writer.drain()
        await asyncio.sleep(3)  # the call ends, its answer waits for the caller, is cut
        received = b""
        while chunk := await asyncio.wait_for(reader.read(1 << 20), 5):
            received += chunk
        writer.close()
        assert received.startswith(b"HTTP/1.1 200")
        assert len(received) < len(body)  # cut: the connection closed before the end


# -- bounds on the async queue -----------------------------------------------------------------


async def test_queued_async_calls_are_bounded_per_route_in_calls_and_bytes(db: Path):
    settings = settings_for(db, async_route_queue_max=3, async_route_queue_bytes=1024 * 1024)
    async with running(settings) as ex:
        await ex.route("/slow", "executor-test/sleep", type="async", max_containers=1, timeout=5)
        first = await submit(ex, "/slow")
        await asyncio.sleep(0.5)  # it runs (and hangs), the next ones queue
        queued = [await submit(ex, "/slow") for _ in range(3)]
        response = await ex.client.post("/r/t/slow")
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        assert (
            "too many async calls queued for /slow" in (await response.json())["error"]["message"]
        )
        await ex.json("DELETE", f"/v1/apps/t/calls/{queued[0]}")
        big = await ex.client.post("/r/t/slow", data=b"x" * (2 * 1024 * 1024))
        assert big.status == 429  # over the bytes bound, though one place is free
        assert (await ex.client.post("/r/t/slow", data=b"x" * 1000)).status == 202
        await ex.json("DELETE", f"/v1/apps/t/calls/{first}", status=409)


async def test_the_space_of_cancelled_calls_bodies_is_given_back(db: Path):
    async with running(settings_for(db)) as ex:
        await ex.route("/slow", "executor-test/sleep", type="async", max_containers=1, timeout=5)
        await submit(ex, "/slow")
        await asyncio.sleep(0.5)
        body = b"x" * (4 * 1024 * 1024)
        ids = [await submit(ex, "/slow", body) for _ in range(6)]
        with sqlite3.connect(db) as peek:
            before = peek.execute("PRAGMA page_count").fetchone()[0]
            page = peek.execute("PRAGMA page_size").fetchone()[0]
        assert before * page > 24 * 1024 * 1024
        for call_id in ids:
            await ex.json("DELETE", f"/v1/apps/t/calls/{call_id}")
        deadline = time.monotonic() + 10
        while True:
            with sqlite3.connect(db) as peek:
                after = peek.execute("PRAGMA page_count").fetchone()[0]
            if after * page < 4 * 1024 * 1024:
                break
            assert time.monotonic() < deadline, f"{after} pages still"
            await asyncio.sleep(0.1)


# -- a deleted route stays deleted -----------------------------------------------------------


async def test_a_call_whose_body_arrives_after_its_route_was_deleted_brings_nothing_back(
    executor,
):
    await executor.route("/hot", HOT, format="http-stream", min_warm=0)
    reader, writer = await raw(
        executor, b"POST /r/t/hot HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab"
    )
    await asyncio.sleep(0.2)
    await executor.json("DELETE", "/v1/apps/t/routes/hot")
    writer.write(b"cd")
    status, body = await answer(reader)
    writer.close()
    assert status == 404, body
    await asyncio.sleep(1)
    assert not hot_containers(executor)
    assert executor.app[EXECUTOR].pools.pool("t", "/hot") is None
