"""A day of serverless invocations in the shape of the Azure Functions 2019 trace
("Serverless in the Wild", Shahrad et al., USENIX ATC 2020), seeded; or the public trace
itself, from its CSV files.

The shape kept from the paper: invocation rates spanning 8 orders of magnitude across
functions, 45% of them invoked at most once an hour and 81% at most once a minute;
triggers about 55% HTTP, 16% timer, 15% queue and 14% events, timers periodic and the rest
bursty (Poisson with on/off bursts and a daily swing); execution times log-normal.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MINUTES_PER_DAY = 1440
# log10 of daily invocations: the share of functions at most once an hour (24 a day), at
# most once a minute (1440 a day), and the rest up to 1e8 a day.
RATE_BANDS = ((0.45, 0.0, math.log10(24)), (0.36, math.log10(24), math.log10(1440)),
              (0.19, math.log10(1440), 8.0))  # fmt: skip
TRIGGERS = (("http", 0.55), ("timer", 0.16), ("queue", 0.15), ("event", 0.14))
MEMORY_MIB = ((128, 0.5), (256, 0.35), (512, 0.15))
BURST_CHANCE = 0.02  # a quiet minute starts a burst
BURST_END = 0.2  # a bursting minute ends it
BURST_FACTOR = 10.0


@dataclass(frozen=True, slots=True)
class FunctionLoad:
    name: str
    trigger: str
    per_minute: tuple[int, ...]  # invocations in each minute of the day
    exec_median: float  # seconds: a log-normal's median
    exec_sigma: float
    memory_mib: int

    @property
    def daily(self) -> int:
        return sum(self.per_minute)


def generate(functions: int, minutes: int = MINUTES_PER_DAY, seed: int = 0) -> list[FunctionLoad]:
    """`functions` synthetic functions over `minutes` minutes, the same for the same seed."""
    rng = random.Random(seed)
    return [_function(f"f{i:04d}", minutes, rng) for i in range(functions)]


def _function(name: str, minutes: int, rng: random.Random) -> FunctionLoad:
    low, high = _pick(rng, [((low, high), share) for share, low, high in RATE_BANDS])
    daily = 10 ** rng.uniform(low, high)
    per_minute_rate = daily / MINUTES_PER_DAY
    trigger = _pick(rng, TRIGGERS)
    if trigger == "timer":
        counts = _timer(per_minute_rate, minutes, rng)
    else:
        counts = _bursty(per_minute_rate, minutes, rng)
    median = min(max(math.exp(rng.gauss(math.log(0.5), 1.2)), 0.005), 60.0)
    return FunctionLoad(name, trigger, tuple(counts), median, 0.6, _pick(rng, MEMORY_MIB))


def _timer(rate: float, minutes: int, rng: random.Random) -> list[int]:
    """A fixed schedule: every `period` minutes, `per_tick` invocations."""
    period = max(1, round(1 / rate)) if rate < 1 else 1
    per_tick = max(1, round(rate)) if rate >= 1 else 1
    phase = rng.randrange(period)
    return [per_tick if (m + phase) % period == 0 else 0 for m in range(minutes)]


def _bursty(rate: float, minutes: int, rng: random.Random) -> list[int]:
    """Poisson per minute around a daily swing, with on/off bursts; the mean stays `rate`."""
    # A burst multiplies the rate by BURST_FACTOR; quiet minutes are scaled down so that
    # the long-run mean is unchanged.
    bursting_share = BURST_CHANCE / (BURST_CHANCE + BURST_END)
    quiet = 1 / (1 - bursting_share + bursting_share * BURST_FACTOR)
    counts, bursting = [], False
    for m in range(minutes):
        bursting = rng.random() < (1 - BURST_END if bursting else BURST_CHANCE)
        swing = 1 + 0.5 * math.sin(2 * math.pi * m / MINUTES_PER_DAY)
        counts.append(_poisson(rate * swing * quiet * (BURST_FACTOR if bursting else 1), rng))
    return counts


def _poisson(mean: float, rng: random.Random) -> int:
    if mean < 30:  # Knuth's method: exact, and quick for small means
        limit, k, p = math.exp(-mean), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


def _pick(rng: random.Random, choices):
    x = rng.random() * sum(weight for _, weight in choices)
    for value, weight in choices:
        x -= weight
        if x <= 0:
            return value
    return choices[-1][0]


def read_azure_csv(path: Path, limit: int | None = None, seed: int = 0) -> list[FunctionLoad]:
    """Functions from the public trace's invocation file
    (invocations_per_function_md.anon.d01.csv: HashOwner, HashApp, HashFunction, Trigger,
    then one column per minute "1" to "1440"). The trace's durations and memory are in
    other files: here each function gets a log-normal execution time and a memory size as
    `generate` gives them."""
    rng = random.Random(seed)
    loads: list[FunctionLoad] = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            minutes = [int(row.get(str(m), 0) or 0) for m in range(1, MINUTES_PER_DAY + 1)]
            median = min(max(math.exp(rng.gauss(math.log(0.5), 1.2)), 0.005), 60.0)
            loads.append(
                FunctionLoad(
                    name=row["HashFunction"][:12],
                    trigger=row.get("Trigger", "http"),
                    per_minute=tuple(minutes),
                    exec_median=median,
                    exec_sigma=0.6,
                    memory_mib=_pick(rng, MEMORY_MIB),
                )
            )
            if limit is not None and len(loads) >= limit:
                break
    return loads


def arrivals(
    load: FunctionLoad, rng: random.Random, cap_per_minute: int | None = None
) -> Iterator[float]:
    """Each invocation's time (seconds from the start of the day), spread at random within
    its minute; at most `cap_per_minute` a minute when a cap is given."""
    for minute, count in enumerate(load.per_minute):
        if cap_per_minute is not None:
            count = min(count, cap_per_minute)
        yield from sorted(60.0 * (minute + rng.random()) for _ in range(count))


def exec_time(load: FunctionLoad, rng: random.Random) -> float:
    return rng.lognormvariate(math.log(load.exec_median), load.exec_sigma)
