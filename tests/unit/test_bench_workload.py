"""The benchmark's workload generator: the Azure 2019 trace's shape, seeded."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from benchmarks.workload import (
    MINUTES_PER_DAY,
    FunctionLoad,
    arrivals,
    generate,
    read_azure_csv,
)


def test_the_same_seed_gives_the_same_day():
    assert generate(20, seed=3) == generate(20, seed=3)
    assert generate(20, seed=3) != generate(20, seed=4)


def test_rates_have_the_traces_shape():
    loads = generate(600, seed=1)
    daily = [load.daily for load in loads]
    at_most_hourly = sum(d <= 24 for d in daily) / len(daily)
    at_most_per_minute = sum(d <= 1440 for d in daily) / len(daily)
    assert 0.40 <= at_most_hourly <= 0.52  # the paper: 45%
    assert 0.76 <= at_most_per_minute <= 0.86  # the paper: 81%
    busiest = max(daily)
    quietest_active = min(d for d in daily if d > 0)
    assert busiest / quietest_active >= 10**6  # rates span (about) 8 orders of magnitude
    assert {load.trigger for load in loads} == {"http", "timer", "queue", "event"}
    assert all(len(load.per_minute) == MINUTES_PER_DAY for load in loads)


def test_timers_are_periodic_and_others_bursty():
    loads = generate(400, seed=2)
    timer = next(load for load in loads if load.trigger == "timer" and 30 < load.daily < 1440)
    ticks = [m for m, count in enumerate(timer.per_minute) if count]
    gaps = {b - a for a, b in itertools.pairwise(ticks)}
    assert len(gaps) == 1  # a fixed period
    http = [load for load in loads if load.trigger == "http" and load.daily > 20_000]
    assert http, "no busy HTTP function generated"
    counts = http[0].per_minute
    mean = sum(counts) / len(counts)
    assert max(counts) > 3 * mean  # bursts


def test_arrivals_fall_within_their_minute_in_order_and_can_be_capped():
    load = FunctionLoad("f", "http", (2, 0, 3), 0.1, 0.5, 128)
    times = list(arrivals(load, random.Random(0)))
    assert len(times) == 5 and times == sorted(times)
    assert all(0 <= t < 60 for t in times[:2]) and all(120 <= t < 180 for t in times[2:])
    assert len(list(arrivals(load, random.Random(0), cap_per_minute=1))) == 2


def test_the_public_traces_csv_format_is_read(tmp_path: Path):
    header = ["HashOwner", "HashApp", "HashFunction", "Trigger", *map(str, range(1, 1441))]
    row = ["o", "a", "function-hash-1", "timer", *(["1"] + ["0"] * 1439)]
    path = tmp_path / "invocations_per_function_md.anon.d01.csv"
    path.write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    [load] = read_azure_csv(path)
    assert (load.trigger, load.daily, load.per_minute[0]) == ("timer", 1, 1)
