"""The executor's phase, shared by every part (uvicorn's `ServerState` is the model): one
place says whether calls are taken, rather than a stop flag per part.

STARTING -> SERVING -> DRAINING (no new calls; those in flight get the shutdown grace)
-> STOPPING (past the grace: calls still running are stopped, answered 503) -> CLOSED.
"""

from __future__ import annotations

import enum


class Phase(enum.IntEnum):
    STARTING = 0
    SERVING = 1
    DRAINING = 2
    STOPPING = 3
    CLOSED = 4


class Lifecycle:
    def __init__(self) -> None:
        self.phase = Phase.STARTING

    def enter(self, phase: Phase) -> None:
        # Phases only move forward: a drain that ends after close() does not undo it.
        self.phase = max(self.phase, phase)

    @property
    def draining(self) -> bool:
        """No new call is taken (sync or async), nor queued async calls started."""
        return self.phase >= Phase.DRAINING

    @property
    def stopping(self) -> bool:
        """Calls still running are being stopped: what they get is "shutting down"."""
        return self.phase >= Phase.STOPPING
