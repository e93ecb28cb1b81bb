"""A call: one invocation of a route, filled in as it goes through the executor."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from ulid import ULID

from executor.models import App, Route

StartKind = Literal["cold", "warm", "fresh"]

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
    id: str = field(default_factory=new_id)
    # Loop-clock times (seconds, time.monotonic): arrival, and arrival + the route's timeout.
    arrived: float = field(default_factory=time.monotonic)
    deadline: float = 0.0
    # perf_counter times for Executor-Wait-Ms: uvloop's loop clock ticks in milliseconds.
    received: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Filled in by the runner that serves the call.
    start: StartKind | None = None
    assigned: float | None = None  # perf_counter
    container_id: str | None = None
    log: bytes = b""

    def __post_init__(self) -> None:
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
