"""Scaling a fleet by wait: how many executors it wants, from every node's /metrics.

IronFunctions scaled its workers by `wait_time`; here the signal is the same, per node,
`executor_container_wait_seconds` (a call's wait for a container, not counting a start:
near 0 while a node has capacity, growing as its calls queue for containers or memory).
Two scrapes of every node an interval apart give, over that interval, each node's calls,
their wait p99, its calls refused as too busy (503), and its load (calls in flight on
average: call time over wall time, Little's law). `decide` turns those into a count:

- **add one** when the fleet's wait p99 is over `add_above` or any call got a 503;
- **remove one** when the wait p99 is under `remove_below` and the fleet's load would
  still fit the remaining nodes at half of `node_concurrency` each (a margin, so that a
  removal does not cause the next addition);
- otherwise keep, always within `min_nodes`..`max_nodes`.

Parsing and deciding are pure (unit tests replay them); `executor autoscale` (cli.py)
does the scraping, and deploy/autoscale.sh applies the count with docker compose.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

WAIT = "executor_container_wait_seconds"
DURATION = "executor_call_duration_seconds"
CALLS = "executor_calls"


@dataclass(frozen=True)
class Scrape:
    """What one scrape of a node's /metrics says, summed over its routes."""

    wait_buckets: tuple[tuple[float, float], ...]  # (le, cumulative count), ascending
    call_seconds: float  # the sum of every call's duration
    too_busy: float  # calls answered 503

    @classmethod
    def parse(cls, text: str) -> Scrape:
        buckets: dict[float, float] = {}
        call_seconds = too_busy = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == f"{WAIT}_bucket":
                    le = float(sample.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + sample.value
                elif sample.name == f"{DURATION}_sum":
                    call_seconds += sample.value
                elif sample.name == f"{CALLS}_total" and sample.labels.get("status") == "503":
                    too_busy += sample.value
        return cls(tuple(sorted(buckets.items())), call_seconds, too_busy)


@dataclass(frozen=True)
class Window:
    """One node over the interval between two scrapes."""

    wait_buckets: tuple[tuple[float, float], ...]
    calls: float
    load: float  # calls in flight on average
    too_busy: float

    @classmethod
    def between(cls, first: Scrape, then: Scrape, seconds: float) -> Window:
        before = dict(first.wait_buckets)
        # A node restarted between the scrapes counts from zero: its second scrape alone.
        restarted = then.call_seconds < first.call_seconds
        buckets = tuple(
            (le, count if restarted else max(0.0, count - before.get(le, 0.0)))
            for le, count in then.wait_buckets
        )
        calls = buckets[-1][1] if buckets else 0.0
        call_seconds = then.call_seconds - (0.0 if restarted else first.call_seconds)
        too_busy = then.too_busy - (0.0 if restarted else first.too_busy)
        return cls(buckets, calls, max(0.0, call_seconds) / seconds, max(0.0, too_busy))

    @property
    def wait_p99(self) -> float:
        return quantile(self.wait_buckets, 0.99)


def quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: the bucket holding the q-th call, interpolated
    linearly inside it (the last finite bound if it falls in +Inf); 0 with no calls."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return 0.0
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower_bound
            if count == lower_count:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return lower_bound


def merge(windows: Iterable[Window]) -> tuple[tuple[float, float], ...]:
    """The fleet's wait buckets: every node's, added bound by bound."""
    merged: dict[float, float] = {}
    for window in windows:
        for le, count in window.wait_buckets:
            merged[le] = merged.get(le, 0.0) + count
    return tuple(sorted(merged.items()))


@dataclass(frozen=True)
class Policy:
    add_above: float = 0.1  # seconds of wait p99
    remove_below: float = 0.01
    node_concurrency: float = 8.0  # calls in flight one node serves without waiting
    min_nodes: int = 1
    max_nodes: int = 9  # deploy/haproxy.cfg has nine server slots


@dataclass(frozen=True)
class Decision:
    nodes: int  # now
    wanted: int
    wait_p99: float
    load: float
    too_busy: float
    reason: str

    @property
    def action(self) -> str:
        return (
            "add" if self.wanted > self.nodes else "remove" if self.wanted < self.nodes else "keep"
        )


def decide(windows: Sequence[Window], policy: Policy) -> Decision:
    nodes = len(windows)
    p99 = quantile(merge(windows), 0.99)
    load = sum(w.load for w in windows)
    too_busy = sum(w.too_busy for w in windows)
    facts = dict(nodes=nodes, wait_p99=p99, load=load, too_busy=too_busy)
    if p99 > policy.add_above or too_busy > 0:
        why = f"wait p99 {p99 * 1000:.0f} ms (over {policy.add_above * 1000:.0f} ms)"
        if too_busy:
            why += f", {too_busy:.0f} calls refused 503"
        if nodes >= policy.max_nodes:
            return Decision(wanted=nodes, reason=f"{why}, but at max_nodes", **facts)
        return Decision(wanted=nodes + 1, reason=why, **facts)
    if nodes > policy.min_nodes and p99 <= policy.remove_below:
        room = (nodes - 1) * policy.node_concurrency / 2
        if load <= room:
            why = (f"wait p99 {p99 * 1000:.1f} ms and a load of {load:.1f} calls in flight, "
                   f"which {nodes - 1} nodes carry at half their concurrency")  # fmt: skip
            return Decision(wanted=nodes - 1, reason=why, **facts)
    why = f"wait p99 {p99 * 1000:.1f} ms, load {load:.1f} calls in flight"
    return Decision(wanted=nodes, reason=why, **facts)
