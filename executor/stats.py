"""IronFunctions' `GET /stats`: calls queued, running, complete and failed, in all and
per route, counted by the invoker (no IO; works with metrics off)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RouteKey = tuple[str, str]  # app, path

_FIELDS = ("Queue", "Running", "Complete", "Failed")


class CallStats:
    def __init__(self) -> None:
        # Per route: [running, complete, failed].
        self._routes: dict[RouteKey, list[int]] = {}

    def started(self, key: RouteKey) -> None:
        counts = self._routes.get(key)
        if counts is None:
            counts = self._routes[key] = [0, 0, 0]
        counts[0] += 1

    def ended(self, key: RouteKey, failed: bool) -> None:
        counts = self._routes[key]
        counts[0] -= 1
        counts[2 if failed else 1] += 1

    def snapshot(self, queued: Mapping[RouteKey, int]) -> dict[str, Any]:
        """IronFunctions' shape; FunctionStatsMap is keyed `app/path` (IronFunctions keyed
        it by path alone, which two apps' routes could share)."""
        per_route: dict[str, dict[str, int]] = {}
        totals = dict.fromkeys(_FIELDS, 0)
        for key in sorted({*self._routes, *queued}):
            running, complete, failed = self._routes.get(key, (0, 0, 0))
            values = (queued.get(key, 0), running, complete, failed)
            per_route[f"{key[0]}{key[1]}"] = dict(zip(_FIELDS, values, strict=True))
            for name, value in zip(_FIELDS, values, strict=True):
                totals[name] += value
        return {**totals, "FunctionStatsMap": per_route}
