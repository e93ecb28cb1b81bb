"""A route's rhythm: the histogram of its idle times, for `idle_timeout: "auto"`.

Serverless in the Wild (Shahrad et al., USENIX ATC'20) keeps, per application, a histogram
of the idle times between its invocations in minute bins over 4 hours. When it is
representative, a container is let go right after a call and started again at the 5th
percentile of those idle times (the pre-warm window, less a 10% margin), and kept until
their 99th percentile (plus 10%): a 10-minute timer is served warm by a container that
lives a minute or two around each tick, where a fixed keep-alive must hold one for
10 minutes. While it has too few idle times, most are past 4 hours, or they are spread
evenly (no pattern to follow), a fixed keep-alive applies (FALLBACK).

Pure: counts in, windows out; bounded (BINS counters a route). `counts` is what the store
keeps, so that a restart does not forget a route's rhythm.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

BIN = 60.0  # seconds
BINS = 240  # 4 hours
MIN_SAMPLES = 10
# Bins' counts spread at least this unevenly (their coefficient of variation) make a
# pattern; the paper's threshold.
MIN_CV = 2.0
HEAD, TAIL = 0.05, 0.99
MARGIN = 0.10
# The keep-alive while a route's rhythm is not known: the fixed setting that took the
# p99 lag from ~400 ms to 3 ms in the trade-off benchmark (README "The trade-off").
FALLBACK = 300.0


@dataclass(frozen=True, slots=True)
class Windows:
    """From the end of a route's last call: containers above min_warm go at once and one
    is started again at `prewarm` (0: they stay), and they go at `keep_until`."""

    prewarm: float
    keep_until: float


class IdleRhythm:
    def __init__(self, counts: list[int] | None = None, beyond: int = 0) -> None:
        self.counts = list(counts) if counts else [0] * BINS
        if len(self.counts) != BINS:
            raise ValueError(f"a rhythm has {BINS} bins")
        self.beyond = beyond  # idle times past the last bin
        self.changed = False  # since the store last saved it
        self._windows: Windows | None = None
        self._known = False
        self._since_known = 0

    def observe(self, idle: float) -> None:
        """The route was idle `idle` seconds between the end of a call and the next one."""
        index = int(max(idle, 0.0) // BIN)
        if index < BINS:
            self.counts[index] += 1
        else:
            self.beyond += 1
        self.changed = True
        # Windows are worked out again as samples come, not at each one: a busy route's
        # rhythm changes little from one call to the next.
        self._since_known += 1
        if self._since_known >= max(self.samples // 8, 1):
            self._known = False

    @property
    def samples(self) -> int:
        return sum(self.counts) + self.beyond

    def windows(self) -> Windows | None:
        """The windows the idle times call for; None while they are not representative."""
        if not self._known:
            self._windows = self._compute()
            self._known = True
            self._since_known = 0
        return self._windows

    def _compute(self) -> Windows | None:
        inside = sum(self.counts)
        if inside < MIN_SAMPLES or self.beyond > inside:
            return None
        mean = inside / BINS
        if statistics.pstdev(self.counts) / mean < MIN_CV:
            return None
        head = _percentile_bin(self.counts, HEAD) * BIN
        tail = (_percentile_bin(self.counts, TAIL) + 1) * BIN
        return Windows(prewarm=head * (1 - MARGIN), keep_until=tail * (1 + MARGIN))


def _percentile_bin(counts: list[int], share: float) -> int:
    """The first bin at which `share` of the counts is reached."""
    target = share * sum(counts)
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= target and count:
            return index
    return len(counts) - 1
