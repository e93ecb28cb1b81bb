"""The dashboard's live view: per second, per route, the last WINDOW seconds of calls by
status, latency by start kind, container wait, starts and container events, with each
pool's containers and the memory reserved. No IO here: the invoker and the pools report
(through Metrics), `close_second` runs once a second (runtime.py) and `since` serves
`GET /v1/stats` (api/live.py).

Why not read Prometheus' histograms: their buckets give no per-second quantiles, and a
scrape renders every series of every route (1,000 routes: milliseconds of CPU). Here a
call appends its duration to the open second's list, and each second is rendered once,
when it closes, for every poll to share: a poll costs only the seconds it has not seen.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

RouteKey = tuple[str, str]  # app, path

# 15 minutes of seconds: the longest view the dashboard offers.
WINDOW = 900
# Durations kept per route, start kind and second for its quantiles; past this, a
# uniform sample of them (reservoir). 2,048 floats: 16 KiB, at ~2,000 calls/s a route.
# A call's report costs 0.9 µs under the cap, 1.6 µs past it (of a warm call's ~300 µs).
SAMPLES_MAX = 2048
_random = random.random


def quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted values (not interpolated: a value that was)."""
    rank = max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


class _Samples:
    __slots__ = ("count", "values")

    def __init__(self) -> None:
        self.count = 0
        self.values: list[float] = []

    def add(self, value: float) -> None:
        self.count += 1
        if len(self.values) < SAMPLES_MAX:
            self.values.append(value)
            return
        slot = int(_random() * self.count)  # random() is 15x cheaper than randrange()
        if slot < SAMPLES_MAX:
            self.values[slot] = value

    def extend(self, other: _Samples) -> None:
        for value in other.values:
            self.add(value)
        self.count += other.count - len(other.values)

    def summary(self) -> list[float]:
        """[calls, p50 ms, p99 ms]."""
        ordered = sorted(self.values)
        return [self.count, _ms(quantile(ordered, 0.5)), _ms(quantile(ordered, 0.99))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


@dataclass(slots=True)
class _Open:
    """One route's second, while it is open."""

    statuses: dict[int, int] = field(default_factory=dict)
    latency: dict[str, _Samples] = field(default_factory=dict)
    wait: _Samples = field(default_factory=_Samples)
    starts: int = 0
    events: dict[str, int] = field(default_factory=dict)

    def merge(self, other: _Open) -> None:
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        for start, samples in other.latency.items():
            self.latency.setdefault(start, _Samples()).extend(samples)
        self.wait.extend(other.wait)
        self.starts += other.starts
        for event, n in other.events.items():
            self.events[event] = self.events.get(event, 0) + n

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.statuses:
            out["calls"] = {str(s): n for s, n in sorted(self.statuses.items())}
            out["latency"] = {k: v.summary() for k, v in self.latency.items()}
            out["wait"] = self.wait.summary()[1:]
        if self.starts:
            out["starts"] = self.starts
        if self.events:
            out["events"] = dict(self.events)
        return out


@dataclass(frozen=True, slots=True)
class PoolSample:
    """A route's pool at a second's close."""

    app: str
    path: str
    idle: int
    busy: int
    starting: int
    waiting: int
    memory: int  # MiB each container reserves

    @property
    def reserved(self) -> int:
        return (self.idle + self.busy + self.starting) * self.memory


class LiveSeries:
    """The open second of every route that reported in it, and the closed seconds."""

    def __init__(self, window: int = WINDOW, clock: Callable[[], float] | None = None) -> None:
        self.window = window
        self._clock = clock or time.time
        self._open: dict[RouteKey, _Open] = {}
        # Closed seconds, oldest first: (second, its totals, its routes' parts).
        self._closed: deque[tuple[int, dict[str, Any], dict[str, Any]]] = deque(maxlen=window)

    # -- reports (the call path: a dict lookup and an append or two) ----------------------

    def _route(self, app: str, path: str) -> _Open:
        key = (app, path)
        second = self._open.get(key)
        if second is None:
            second = self._open[key] = _Open()
        return second

    def call_done(
        self, app: str, path: str, status: int, start: str, duration: float, wait: float
    ) -> None:
        second = self._route(app, path)
        second.statuses[status] = second.statuses.get(status, 0) + 1
        samples = second.latency.get(start)
        if samples is None:
            samples = second.latency[start] = _Samples()
        samples.add(duration)
        second.wait.add(wait)

    def container_started(self, app: str, path: str) -> None:
        self._route(app, path).starts += 1

    def container_event(self, app: str, path: str, event: str) -> None:
        events = self._route(app, path).events
        events[event] = events.get(event, 0) + 1

    # -- once a second --------------------------------------------------------------------

    def close_second(self, pools: Iterable[PoolSample], reserved: int, budget: int) -> None:
        """Closes the open second: rendered once, kept for WINDOW seconds."""
        now = int(self._clock())
        opened, self._open = self._open, {}
        total = _Open()
        routes: dict[str, dict[str, Any]] = {}
        for (app, path), second in opened.items():
            total.merge(second)
            routes[f"{app}{path}"] = second.render()
        for pool in pools:
            entry = routes.setdefault(f"{pool.app}{pool.path}", {})
            entry["pool"] = [pool.idle, pool.busy, pool.starting, pool.waiting]
            entry["reserved"] = pool.reserved
        if self._closed and self._closed[-1][0] >= now:
            now = self._closed[-1][0] + 1  # a slow tick: never two seconds of one name
        totals = {"t": now, **total.render(), "reserved": reserved, "budget": budget}
        self._closed.append((now, totals, routes))

    def since(self, after: int | None = None, route: str | None = None) -> list[dict[str, Any]]:
        """The closed seconds after `after` (all of the window without it): every route's
        totals, or with `route` (`app/path`) that route's part of each."""
        start = len(self._closed)
        while start and (after is None or self._closed[start - 1][0] > after):
            start -= 1
        picked = [self._closed[i] for i in range(start, len(self._closed))]
        if route is None:
            return [totals for _, totals, _ in picked]
        return [{"t": t, **routes.get(route, {})} for t, _, routes in picked]

    @property
    def last(self) -> int | None:
        return self._closed[-1][0] if self._closed else None
