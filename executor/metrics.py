"""`/metrics`: SPEC.md's metrics table, with prometheus-client, one registry per executor.

Label values stay bounded: an app and a route path are registered names, a status is an
HTTP status, a start kind is one of four. The warm path pays a dict lookup, one counter
increment and two histogram observations: each route's labelled children are cached.
The same reports feed the dashboard's live series (live.py), metrics on or off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from executor.live import LiveSeries

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The `_created` series would double the output for no use here (process-wide setting).
disable_created_metrics()

# From 100 µs (a warm call's own cost) to the longest sync timeout.
CALL_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
# Container starts: 50 ms (a small image, warm engine) to the start timeout and beyond.
START_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)

# output_flood: a container printed past its output budget, and reading it was paused.
ContainerEvent = Literal["oom", "timeout", "crash", "evicted", "start_failed", "output_flood"]
# (app, route, state, count) for every pool: read at scrape time, never on the call path.
PoolCounts = Callable[[], Iterable[tuple[str, str, str, int]]]


class Metrics:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.live = LiveSeries()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._calls = Counter(
            "executor_calls", "Calls answered.", ["app", "route", "status", "start"], registry=r
        )
        self._duration = Histogram(
            "executor_call_duration_seconds",
            "From a call's arrival to its answer.",
            ["app", "route", "start"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self._wait = Histogram(
            "executor_container_wait_seconds",
            "From a call's arrival to the assignment of a container (not its start).",
            ["app", "route"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self._start = Histogram(
            "executor_container_start_seconds",
            "From a container's create to its readiness (hot) or its start (cold).",
            ["app", "route", "format"],
            buckets=START_BUCKETS,
            registry=r,
        )
        self._events = Counter(
            "executor_container_events",
            "Containers that ran out of memory, timed out, crashed, were evicted or did not start.",
            ["app", "route", "event"],
            registry=r,
        )
        self._docker_errors = Counter(
            "executor_docker_errors", "Docker engine calls that failed.", ["operation"], registry=r
        )
        self._children: dict[tuple[str, str, int, str], tuple] = {}

    def watch_pools(self, counts: PoolCounts) -> None:
        """Serves `executor_pool_containers` from the pools' own state at scrape time."""
        self.registry.register(_PoolGauge(counts))

    def watch_async(self, queued: Callable[[], int], running: Callable[[], int]) -> None:
        """Serves `executor_async_calls`: the backlog of async calls, read at scrape time."""
        gauge = Gauge(
            "executor_async_calls",
            "Async calls queued or running.",
            ["state"],
            registry=self.registry,
        )
        gauge.labels("queued").set_function(queued)
        gauge.labels("running").set_function(running)

    def watch_records(self, dropped: Callable[[], int], waiting: Callable[[], int]) -> None:
        """Serves the call records dropped (the store too slow, or gone past the buffer)
        and those waiting to be written, read at scrape time."""
        Gauge(
            "executor_call_records_dropped",
            "Call records dropped since the start: the store could not take them in time.",
            registry=self.registry,
        ).set_function(dropped)
        Gauge(
            "executor_call_records_waiting",
            "Call records waiting to be written (the store slow or unavailable).",
            registry=self.registry,
        ).set_function(waiting)

    def call_done(
        self, app: str, route: str, status: int, start: str, duration: float, wait: float
    ) -> None:
        self.live.call_done(app, route, status, start, duration, wait)
        if not self.enabled:
            return
        key = (app, route, status, start)
        children = self._children.get(key)
        if children is None:
            children = (
                self._calls.labels(app, route, str(status), start),
                self._duration.labels(app, route, start),
                self._wait.labels(app, route),
            )
            self._children[key] = children
        calls, duration_h, wait_h = children
        calls.inc()
        duration_h.observe(duration)
        wait_h.observe(wait)

    def container_started(self, app: str, route: str, format: str, seconds: float) -> None:
        self.live.container_started(app, route)
        if self.enabled:
            self._start.labels(app, route, format).observe(seconds)

    def container_event(self, app: str, route: str, event: ContainerEvent) -> None:
        self.live.container_event(app, route, event)
        if self.enabled:
            self._events.labels(app, route, event).inc()

    def docker_error(self, operation: str) -> None:
        if self.enabled:
            self._docker_errors.labels(operation).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _PoolGauge(Collector):
    def __init__(self, counts: PoolCounts) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "executor_pool_containers",
            "Hot containers by state.",
            labels=["app", "route", "state"],
        )
        for app, route, state, count in self._counts():
            gauge.add_metric([app, route, state], count)
        yield gauge

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("executor_pool_containers", "", labels=["app", "route", "state"])
