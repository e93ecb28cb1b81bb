"""The one persistent connection to a hot container: HTTP/1.1, one call at a time.

A bare asyncio protocol with llhttp (httptools) as the response parser: the request head
is built once per call as bytes and written with the body, and the response is collected
in the parser's callbacks. No client session, no per-call connection pool lookup. Its
transport is the container's socket (`http-stream`), or its stdin and stdout (`http`,
`StdioTransport`: the container's output reader feeds the protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import httptools

from executor.docker.engine import Stdio
from executor.errors import EngineError

# Past this much unread response body, reading from the container pauses until the
# caller's side takes it (a slow caller must not make the executor buffer a flood).
HIGH_WATER = 1024 * 1024
# struct ucred: pid, uid, gid.
PEERCRED = struct.Struct("3i")
# The most a response's status line and headers may take: past it the container is
# replaced and the call answered 502 (a function must not make the executor hold, or
# pass on, megabytes of headers).
HEAD_MAX = 64 * 1024


class ConnectionBroken(Exception):
    """The container closed the connection or sent something that is not HTTP."""


class MalformedResponse(ConnectionBroken):
    """What the container sent is not an acceptable HTTP response (the connection is
    closed): not HTTP, an upgrade, or a head over HEAD_MAX."""


class ReplyTimeout(Exception):
    """The call's deadline passed before the container had answered."""


class Reply:
    """A container's response to one call, filled in by the connection as bytes arrive."""

    __slots__ = (
        "_conn",
        "_timer",
        "_waiter",
        "buffered",
        "chunks",
        "complete",
        "content_length",
        "error",
        "head_done",
        "headers",
        "size",
        "status",
    )

    def __init__(self, conn: HotConnection) -> None:
        self._conn = conn
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.head_done = False
        self.chunks: list[bytes] = []
        self.size = 0  # body bytes received so far
        self.buffered = 0  # of which not yet taken by body_part
        self.complete = False
        self.error: Exception | None = None

    def expire_at(self, deadline: float) -> None:
        """Fails the reply with ReplyTimeout at `deadline` (loop time) unless it is all
        read by then: one timer handle, cheaper than an asyncio.timeout scope per call."""
        self._timer = self._conn.loop.call_at(deadline, self._expire)

    def finish(self) -> None:
        """Stops the deadline's timer (the reply is read, or abandoned)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if not self.complete:
            self.error = ReplyTimeout()
            self._wake()

    async def head(self) -> None:
        """Until the status and headers are in (raises ConnectionBroken)."""
        while not self.head_done:
            await self._wait()

    async def body_part(self) -> bytes | None:
        """The body received since the last part, or None once it is all read."""
        while not self.chunks:
            if self.complete:
                return None
            await self._wait()
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        self._conn._resume()
        return data

    async def _wait(self) -> None:
        if self.error is not None:
            raise self.error
        self._waiter = self._conn.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self.error is not None:
            raise self.error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None and not self.complete:
            self.error = error
            self._wake()


class HotConnection(asyncio.Protocol):
    def __init__(self) -> None:
        # Kept: asyncio.get_running_loop() costs a getpid() system call each time.
        self.loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._reply: Reply | None = None
        self._paused = False
        self._chunked = False
        self._head_bytes = 0  # of the response in progress, until its head is complete
        self.closed = False
        self.reusable = True  # False after a response that asked to close
        # Over stdio no end of stream delimits a body: a response must give its length.
        self.lengths_required = False

    @property
    def in_call(self) -> bool:
        return self._reply is not None

    @property
    def peer_pid(self) -> int:
        """The pid of the process listening on the other end (0: not in our namespace)."""
        sock = self._transport.get_extra_info("socket") if self._transport else None
        if sock is None:
            return 0
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size)
        return PEERCRED.unpack(creds)[0]

    @classmethod
    async def open(cls, path: str) -> HotConnection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_unix_connection(cls, path)
        return conn

    @classmethod
    def over_stdio(cls, stdio: Stdio) -> tuple[HotConnection, StdioTransport]:
        """A connection over a container's attached stdin and stdout: what the container
        prints on stdout goes to `data_received`, its end to `connection_lost`."""
        conn = cls()
        conn.lengths_required = True
        transport = StdioTransport(stdio, conn)
        conn.connection_made(transport)  # type: ignore[arg-type]  # duck-typed transport
        return conn, transport

    def send(self, head: bytes, body: bytes) -> Reply:
        if self.closed or self._transport is None:
            raise ConnectionBroken("connection to the container is closed")
        reply = Reply(self)
        self._reply = reply
        self._chunked = False
        self._head_bytes = 0
        self._transport.write(head + body if len(body) < 16384 else head)
        if len(body) >= 16384:
            self._transport.write(body)
        return reply

    def abort(self, message: str) -> None:
        """Fails the call in progress (its container is gone) and closes the connection."""
        self._broken(message)

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self._reply is None:
            self._broken("the container sent data while no call was running")
            return
        reply = self._reply
        try:
            self._parser.feed_data(data)
            if not reply.head_done:
                # Every byte so far is head: llhttp holds header values whole until each
                # ends, so this is checked before they pile up.
                self._head_bytes += len(data)
                if self._head_bytes > HEAD_MAX:
                    self._broken(f"response headers over {HEAD_MAX // 1024} KiB", MalformedResponse)
        except httptools.HttpParserError as exc:
            self._broken(f"malformed response from the container: {exc}", MalformedResponse)
        except httptools.HttpParserUpgrade:
            self._broken("the container asked for a protocol upgrade", MalformedResponse)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reply = self._reply
        if reply is not None:
            if reply.head_done and reply.content_length is None and not self._chunked:
                # A body delimited by the end of the connection (no length, not chunked):
                # llhttp would complete it on EOF, which httptools has no call for.
                self.on_message_complete()
            else:
                reply._fail(ConnectionBroken("the container closed the connection"))

    # -- httptools callbacks ---------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._reply is not None
        self._reply.headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            with contextlib.suppress(ValueError):
                self._reply.content_length = int(value)
        elif lower == b"transfer-encoding" and b"chunked" in value.lower():
            self._chunked = True

    def on_headers_complete(self) -> None:
        reply = self._reply
        assert reply is not None
        reply.status = self._parser.get_status_code()
        unbounded = reply.content_length is None and not self._chunked
        if self.lengths_required and unbounded and reply.status not in (204, 304):
            self._broken("a response with no Content-Length (format http)", MalformedResponse)
            return
        reply.head_done = True
        self.reusable = self._parser.should_keep_alive()
        reply._wake()

    def on_body(self, body: bytes) -> None:
        reply = self._reply
        assert reply is not None
        reply.chunks.append(body)
        reply.size += len(body)
        reply.buffered += len(body)
        if reply.buffered > HIGH_WATER and not self._paused:
            assert self._transport is not None
            self._transport.pause_reading()
            self._paused = True
        reply._wake()

    def on_message_complete(self) -> None:
        reply = self._reply
        assert reply is not None
        reply.complete = True
        self._reply = None
        reply._wake()
        if not self.reusable:
            self.close()

    # -- internals -------------------------------------------------------------------

    def _resume(self) -> None:
        if self._paused and self._transport is not None and not self.closed:
            self._paused = False
            self._transport.resume_reading()

    def _broken(self, message: str, kind: type[ConnectionBroken] = ConnectionBroken) -> None:
        reply = self._reply
        self.close()
        if reply is not None:
            reply._fail(kind(message))


class StdioTransport:
    """The little of asyncio.Transport a HotConnection uses, over an attach stream:
    writes go to the container's stdin; pausing makes its stdout reader wait."""

    def __init__(self, stdio: Stdio, conn: HotConnection) -> None:
        self._stdio = stdio
        self._conn = conn
        self.reading = asyncio.Event()  # cleared while the reader must wait
        self.reading.set()
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self._stdio.send(data)
        except EngineError as exc:
            self._conn.abort(f"the container's stdin is closed: {exc.message}")

    def close(self) -> None:
        # The stream itself is the container's: it closes when the container is removed.
        self.closed = True
        self.reading.set()

    def pause_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default  # no socket: no peer credentials
