"""HotConnection against a scripted unix-socket server (no Docker)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from executor.pool.connection import (
    HEAD_MAX,
    ConnectionBroken,
    HotConnection,
    MalformedResponse,
    ReplyTimeout,
)

HEAD = b"POST /call HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], object]]:
    directory = Path(tempfile.mkdtemp(prefix="conn-", dir="/tmp"))  # short: socket path limit
    servers = []

    async def start(script: Script) -> HotConnection:
        path = str(directory / f"s{len(servers)}.sock")
        servers.append(await asyncio.start_unix_server(script, path))
        return await HotConnection.open(path)

    yield start
    for server in servers:
        server.close()
    shutil.rmtree(directory)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


async def full_body(reply) -> bytes:
    parts = []
    while (part := await reply.body_part()) is not None:
        parts.append(part)
    return b"".join(parts)


async def test_keep_alive_calls_in_turn_on_one_connection(serve):
    async def script(reader, writer):
        for _ in range(3):
            body = await read_request(reader)
            head = b"HTTP/1.1 200 OK\r\nFn-Http-Status: 201\r\nContent-Length: 2\r\n\r\n"
            writer.write(head + body)

    conn = await serve(script)
    for i in range(3):
        reply = conn.send(HEAD, f"c{i}".encode())
        await reply.head()
        assert reply.status == 200
        assert (b"Fn-Http-Status", b"201") in reply.headers
        assert await full_body(reply) == f"c{i}".encode()
        assert not conn.in_call
    assert conn.reusable and not conn.closed


async def test_chunked_and_split_responses(serve):
    async def script(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        for piece in (b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)

    conn = await serve(script)
    reply = conn.send(HEAD, b"xx")
    await reply.head()
    assert await full_body(reply) == b"hello world"


async def test_a_body_ended_by_closing_the_connection(serve):
    async def script(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil eof")
        writer.close()

    conn = await serve(script)
    reply = conn.send(HEAD, b"xx")
    await reply.head()
    assert await full_body(reply) == b"until eof"
    assert not conn.reusable


@pytest.mark.parametrize(
    "answer",
    [b"NOT HTTP\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],
)
async def test_garbage_or_a_cut_response_breaks_the_connection(serve, answer):
    async def script(reader, writer):
        await read_request(reader)
        writer.write(answer)
        writer.close()

    conn = await serve(script)
    reply = conn.send(HEAD, b"xx")
    with pytest.raises(ConnectionBroken):
        await reply.head()
        await full_body(reply)
    assert conn.closed
    with pytest.raises(ConnectionBroken):
        conn.send(HEAD, b"xx")


async def test_the_deadline_fails_the_reply(serve):
    async def script(reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)

    conn = await serve(script)
    reply = conn.send(HEAD, b"xx")
    reply.expire_at(asyncio.get_running_loop().time() + 0.1)
    with pytest.raises(ReplyTimeout):
        await reply.head()


async def test_a_response_head_past_its_limit_breaks_the_connection(serve):
    async def script(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"v" * (HEAD_MAX + 1))
        await writer.drain()
        await asyncio.sleep(5)

    conn = await serve(script)
    reply = conn.send(HEAD, b"hi")
    with pytest.raises(MalformedResponse, match="response headers over 64 KiB"):
        await reply.head()
    assert conn.closed
