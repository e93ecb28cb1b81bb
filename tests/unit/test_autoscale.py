"""executor/autoscale.py: a node's /metrics read into its wait, and the fleet's count."""

from __future__ import annotations

import pytest

from executor.autoscale import Policy, Scrape, Window, decide, quantile
from executor.metrics import Metrics


def scrape(metrics: Metrics) -> Scrape:
    return Scrape.parse(metrics.render().decode())


def node(calls: list[tuple[int, float, float]]) -> Metrics:
    """A node's metrics after calls of (status, duration s, wait s), over two routes."""
    metrics = Metrics()
    for n, (status, duration, wait) in enumerate(calls):
        metrics.call_done("app", f"/r{n % 2}", status, "warm", duration, wait)
    return metrics


def window(calls: list[tuple[int, float, float]], seconds: float = 10.0) -> Window:
    return Window.between(scrape(Metrics()), scrape(node(calls)), seconds)


def test_a_scrape_sums_every_routes_wait_buckets_call_time_and_503s():
    s = scrape(node([(200, 0.5, 0.0), (200, 0.5, 0.2), (503, 1.0, 1.0)]))
    buckets = dict(s.wait_buckets)
    assert buckets[float("inf")] == 3
    assert buckets[0.0001] == 1  # the call that did not wait
    assert buckets[0.25] == 2
    assert s.call_seconds == pytest.approx(2.0)
    assert s.too_busy == 1


def test_a_window_counts_only_what_happened_between_the_scrapes():
    metrics = node([(200, 1.0, 0.5)] * 4)
    first = scrape(metrics)
    for _ in range(6):
        metrics.call_done("app", "/r0", 200, "warm", 2.0, 0.0)
    w = Window.between(first, scrape(metrics), seconds=4.0)
    assert w.calls == 6
    assert w.load == pytest.approx(3.0)  # 12 s of calls in 4 s: 3 in flight on average
    assert w.wait_p99 < 0.0001


def test_a_node_restarted_between_the_scrapes_counts_from_zero():
    first = scrape(node([(200, 5.0, 0.0)] * 10))
    w = Window.between(first, scrape(node([(200, 1.0, 0.0)] * 2)), seconds=1.0)
    assert (w.calls, w.load) == (2, pytest.approx(2.0))


def test_the_quantile_interpolates_inside_its_bucket_as_prometheus_does():
    buckets = ((0.1, 0.0), (0.2, 100.0), (float("inf"), 100.0))
    assert quantile(buckets, 0.5) == pytest.approx(0.15)
    assert quantile(((0.1, 0.0), (float("inf"), 10.0)), 0.99) == 0.1  # in +Inf: its bound
    assert quantile((), 0.99) == 0.0


def test_a_fleet_whose_calls_wait_gets_one_more_node():
    waiting = window([(200, 1.0, 0.4)] * 50)
    idle = window([(200, 0.01, 0.0)] * 50)
    d = decide([waiting, idle], Policy())
    assert (d.action, d.wanted) == ("add", 3)
    assert "wait p99" in d.reason and d.wait_p99 > 0.1


def test_calls_refused_as_too_busy_add_a_node_even_without_waits_measured():
    d = decide([window([(503, 0.0, 0.0)])], Policy())
    assert d.action == "add" and "503" in d.reason


def test_an_idle_fleet_loses_one_node_but_never_goes_below_its_minimum():
    quiet = [window([(200, 0.01, 0.0)] * 10) for _ in range(3)]
    assert decide(quiet, Policy()).wanted == 2
    assert decide(quiet[:1], Policy(min_nodes=1)).action == "keep"


def test_a_fleet_that_does_not_wait_but_is_loaded_keeps_its_nodes():
    # 3 nodes, 30 calls in flight in all: 2 nodes at half their concurrency (8) take 8.
    busy = [window([(200, 10.0, 0.0)] * 10, seconds=10.0) for _ in range(3)]
    d = decide(busy, Policy())
    assert d.action == "keep" and d.load == pytest.approx(30.0)


def test_a_fleet_at_its_maximum_says_so_rather_than_adding():
    d = decide([window([(200, 1.0, 1.0)] * 10)], Policy(max_nodes=1))
    assert d.action == "keep" and "max_nodes" in d.reason
