"""A call: one invocation of a route, filled in as it goes through the executor."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from ulid import ULID

from executor.models import App, Route

StartKind = Literal["cold", "warm", "fresh"]
# The start label of calls that never got a container (turned away, or failed before one).
NO_START = "none"
CallState = Literal["queued", "running", "success", "error", "timeout", "cancelled"]

# Never passed to a function: they describe one hop only, or carry credentials.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "authorization",
    }
)


def new_id() -> str:
    return str(ULID())


@dataclass(slots=True)
class Call:
    app: App
    route: Route
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    # A ULID of created_at (set after it, below): its time is the call's creation to the
    # millisecond, so `since` a record's created_at finds that record. Drawn apart, the
    # id's millisecond could come before created_at's (a test caught it).
    id: str = ""
    # Loop-clock times (seconds, time.monotonic): arrival, and arrival + the route's timeout.
    arrived: float = field(default_factory=time.monotonic)
    deadline: float = 0.0
    # perf_counter times for Executor-Wait-Ms: uvloop's loop clock ticks in milliseconds.
    received: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Filled in by the runner that serves the call.
    start: StartKind | None = None
    assigned: float | None = None  # perf_counter
    started: float | None = None  # perf_counter: when the function got the call
    container_id: str | None = None
    log: bytes = b""
    # An async call, run from the queue: it waits for hot containers behind sync calls.
    background: bool = False
    # The values of the route's `:name` path segments in this call's URL.
    params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = str(ULID.from_datetime(self.created_at))
        if not self.deadline:
            self.deadline = self.arrived + self.route.timeout

    @property
    def deadline_utc(self) -> datetime:
        return self.created_at + timedelta(seconds=self.deadline - self.arrived)

    @property
    def wait_ms(self) -> float:
        """From arrival to the assignment of a container (not counting its start)."""
        end = time.perf_counter() if self.assigned is None else self.assigned
        return (end - self.received) * 1000


@dataclass(frozen=True, slots=True)
class Response:
    """A function's answer, ready to send to the caller."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    # A large response: `body` is its start and `rest` streams the remainder.
    rest: AsyncIterator[bytes] | None = None


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What is kept of an async call's response: its body up to a cap."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool


class CallRecord(NamedTuple):
    """SPEC.md "Call records": what is kept of a call once it has ended (its log apart).

    Built on the call path, so kept cheap: a tuple, its times as unix seconds (the API
    shows them as RFC 3339). Durations in milliseconds: `wait_ms` from arrival to the
    assignment of a container, `start_ms` the container's start (cold and fresh calls),
    `exec_ms` the function's part."""

    id: str
    app: str
    route: str
    method: str
    state: CallState
    http_status: int | None
    start: StartKind | None
    container_id: str | None
    created_at: float
    started_at: float | None
    completed_at: float | None
    wait_ms: float | None
    start_ms: float | None
    exec_ms: float | None
    error: str | None


def unended(
    call_id: str,
    app: str,
    route: str,
    method: str,
    created_at: float,
    state: CallState,
    error: str | None = None,
) -> CallRecord:
    """The record of an async call not ended yet: queued (again), or running."""
    return CallRecord(
        call_id, app, route, method, state, None, None, None, created_at,
        None, None, None, None, None, error,
    )  # fmt: skip


def ended(call: Call, status: int | None, error: str | None, completed: float) -> CallRecord:
    """The record of a call that ended at `completed` (perf_counter) with that HTTP status
    (None: the caller went away) and error message (None: the function answered)."""
    if status is None:
        state: CallState = "cancelled"
    elif status == 504:
        state = "timeout"
    elif error is not None:
        state = "error"
    else:
        state = "success"
    # Unix time of the perf_counter reading `received`: the other readings follow it.
    epoch = call.created_at.timestamp() - call.received
    assigned = call.assigned if call.assigned is not None else completed
    started = call.started
    return CallRecord(
        call.id,
        call.app.name,
        call.route.path,
        call.method,
        state,
        status,
        call.start,
        call.container_id,
        epoch + call.received,
        epoch + started if started is not None else None,
        epoch + completed,
        round((assigned - call.received) * 1000, 3),
        round((started - assigned) * 1000, 3) if started is not None else None,
        round((completed - started) * 1000, 3) if started is not None else None,
        error,
    )
