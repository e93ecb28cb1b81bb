"""What a container may make the executor read besides its response (no IO).

Every byte a container prints costs the executor CPU to read, frame and file, whether or
not it is kept (a call's log keeps 64 KiB). A token bucket bounds it per container: a
burst, then a steady rate. Past it the executor stops reading until the bucket refills:
the container's own writes block, so a function printing without end (`yes`) is slowed
to the rate rather than taking the executor's CPU from every other route.
"""

from __future__ import annotations

from collections.abc import Callable

from executor.config import Settings

# Each chunk read costs this much on top of its bytes: a function writing a byte at a
# time costs per write (the engine frames each), not per byte.
CHUNK_COST = 512


class OutputBudget:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()
        self.throttled = 0  # times reading was paused

    @classmethod
    def of(cls, settings: Settings, clock: Callable[[], float]) -> OutputBudget:
        """A new container's budget, as the settings give it (config.py: output_*)."""
        return cls(settings.output_rate, settings.output_burst, clock)

    def spend(self, size: int) -> float:
        """Takes a chunk of `size` bytes from the bucket; the seconds to wait before
        reading on (0 while within the budget)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= size + CHUNK_COST
        if self._tokens >= 0:
            return 0.0
        self.throttled += 1
        return -self._tokens / self._rate
