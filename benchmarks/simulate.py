"""Replays a workload through the pool policy (executor/pool/policy.py) in simulated time:
for one pool setting (`min_warm`, `idle_timeout`, or always cold; a hot pool, or a
`default` route's pre-started single-use containers), the share of cold, fresh and warm
starts, the latency percentiles, and the idle containers' memory-seconds.

Each function is its own route and pool (max_containers unbounded: no call waits for
another's container). Latencies are drawn from measured distributions: a cold call's
whole latency, a fresh container's start, and the executor's warm overhead; the
function's own execution time is added to each.
"""

from __future__ import annotations

import heapq
import itertools
import random
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from benchmarks.workload import FunctionLoad, arrivals, exec_time
from executor.pool.policy import Limits, PoolPolicy

UNBOUNDED = 10**6


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    min_warm: int = 0
    idle_timeout: float | None = 0.0  # seconds; None: "auto" (executor/pool/rhythm.py)
    cold: bool = False  # format `default`: a new container per call
    prestarted: bool = False  # format `default` with min_warm: pre-started, else cold


@dataclass(frozen=True, slots=True)
class StartLatencies:
    """Measured samples, in seconds (benchmarks/hot.py's start kinds)."""

    cold: Sequence[float]
    fresh: Sequence[float]
    warm: Sequence[float]
    # A pre-started `default` call's whole latency (benchmarks/starts.py's sh-prestarted).
    prestarted: Sequence[float] = (0.012, 0.011, 0.015)


@dataclass(slots=True)
class Outcome:
    setting: str
    calls: int = 0
    cold: int = 0
    fresh: int = 0
    warm: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    # The lag the executor and its starts add to a call (its latency less the function's
    # own work): what a pool setting changes.
    lag_mean_ms: float = 0.0
    lag_p99_ms: float = 0.0
    idle_mib_seconds: float = 0.0
    containers_started: int = 0

    def shares(self) -> dict[str, float]:
        total = self.calls or 1
        return {k: getattr(self, k) / total for k in ("cold", "fresh", "warm")}


def simulate(
    loads: Sequence[FunctionLoad],
    setting: Setting,
    latencies: StartLatencies,
    seed: int = 0,
    cap_per_minute: int | None = None,
    given: dict[str, list[tuple[float, float]]] | None = None,
) -> Outcome:
    """`given`: each function's calls as (arrival, execution seconds), instead of drawing
    them (the live check replays the very same calls)."""
    rng = random.Random(seed)
    outcome = Outcome(setting.name)
    all_latencies: list[float] = []
    lags: list[float] = []
    for load in loads:
        if given is not None:
            times = [at for at, _ in given[load.name]]
            load_exec = _replaying(took for _, took in given[load.name])
        else:
            times = list(arrivals(load, rng, cap_per_minute))
            load_exec = exec_time
        end = 60.0 * len(load.per_minute)
        if setting.cold:
            for _ in times:
                lag = rng.choice(latencies.cold)
                lags.append(lag)
                all_latencies.append(lag + load_exec(load, rng))
            outcome.cold += len(times)
            outcome.containers_started += len(times)
        else:
            _replay(
                load, times, end, setting, latencies, rng, outcome, all_latencies, lags, load_exec
            )
    outcome.calls = len(all_latencies)
    if lags:
        lags.sort()
        outcome.lag_mean_ms = 1000 * statistics.fmean(lags)
        outcome.lag_p99_ms = 1000 * lags[min(len(lags) - 1, int(0.99 * len(lags)))]
    if all_latencies:
        all_latencies.sort()
        outcome.p50_ms = 1000 * statistics.median(all_latencies)
        outcome.p99_ms = (
            1000 * all_latencies[min(len(all_latencies) - 1, int(0.99 * len(all_latencies)))]
        )
    return outcome


def _replaying(work: Iterator[float]):
    """An execution-time source that hands out the given times in order."""
    return lambda _load, _rng: next(work)


# Event kinds, in the order they are handled at the same instant.
READY, DONE, ARRIVAL, TICK = range(4)


def _replay(
    load: FunctionLoad,
    times: list[float],
    end: float,
    setting: Setting,
    latencies: StartLatencies,
    rng: random.Random,
    outcome: Outcome,
    all_latencies: list[float],
    lags: list[float],
    load_exec=exec_time,
) -> None:
    now = 0.0
    policy: PoolPolicy[int] = PoolPolicy(
        Limits(setting.min_warm, UNBOUNDED, setting.idle_timeout), lambda: now
    )
    events: list[tuple[float, int, int, object]] = []
    order = itertools.count()
    keys = itertools.count()
    arrived: dict[int, float] = {}
    idle_area = 0.0  # idle containers x seconds
    last = 0.0

    def push(at: float, kind: int, data: object) -> None:
        heapq.heappush(events, (at, kind, next(order), data))

    started: dict[str, float] = {}  # container -> when its start began
    serving: dict[str, float] = {}  # container -> how long its call takes

    def start_wanted() -> None:
        for _ in range(policy.starts_wanted()):
            key = f"c{next(keys)}"
            policy.starting(key)
            outcome.containers_started += 1
            started[key] = now
            push(now + rng.choice(latencies.fresh), READY, key)

    def single_use() -> None:
        """A `default` route's pre-start pool: a ready container (warm, used once and
        gone), else a cold start at once, and the pool grows as PrestartPool's does."""
        if policy.take_idle_once() is not None:
            lag = rng.choice(latencies.prestarted)
            outcome.warm += 1
        else:
            policy.missed()
            lag = rng.choice(latencies.cold)
            outcome.cold += 1
            outcome.containers_started += 1
        lags.append(lag)
        all_latencies.append(lag + load_exec(load, rng))

    def serve(call: int, key: str, warm: bool) -> None:
        overhead = rng.choice(latencies.warm)
        work = load_exec(load, rng)
        lag = now - arrived.pop(call) + overhead  # the wait for a start, if any, and the call
        lags.append(lag)
        all_latencies.append(lag + work)
        if warm:
            outcome.warm += 1
        else:
            outcome.fresh += 1
        serving[key] = overhead + work
        push(now + overhead + work, DONE, key)

    for call, at in enumerate(times):
        push(at, ARRIVAL, call)
    start_wanted()  # min_warm, before the day begins
    next_tick: float | None = None
    while events:
        now, kind, _, data = heapq.heappop(events)
        idle_area += policy.count("idle") * (min(now, end) - min(last, end))
        last = now
        if kind == ARRIVAL and setting.prestarted:
            single_use()
        elif kind == ARRIVAL:
            call = data
            arrived[call] = now
            key = policy.acquire_idle()
            if key is not None:
                serve(call, key, warm=True)
            else:
                policy.enqueue(call)
                start_wanted()
        elif kind == READY:
            policy.observed_start(now - started.pop(data))
            assignment = policy.ready(data)
            if assignment is not None:
                serve(assignment.waiter, assignment.key, warm=False)
        elif kind == DONE:
            policy.observed_call(serving.pop(data))
            assignment = policy.release(data)
            if assignment is not None:
                serve(assignment.waiter, assignment.key, warm=True)
        policy.expired()  # idle containers past idle_timeout leave
        start_wanted()  # and min_warm refills
        # A tick for the policy's next expiry, within the day (an extra one is harmless).
        wakeup = policy.next_wakeup()
        due = next_tick is None or next_tick <= now or (wakeup or 0) < next_tick
        if wakeup is not None and now < wakeup <= end and due:
            next_tick = wakeup
            push(wakeup, TICK, None)
    idle_area += policy.count("idle") * max(end - last, 0.0)
    outcome.idle_mib_seconds += idle_area * load.memory_mib
