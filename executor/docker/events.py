"""Subscriptions to the engine's events: this executor group's containers, and images.

Exits and OOM kills are learnt here rather than from a `wait` request per container: one
stream costs one connection however many containers run. When the stream breaks it is
opened again with `since` set to the last event seen, so no exit is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from executor.docker.engine import Engine
from executor.errors import EngineError
from executor.tasks import TaskGroup

log = logging.getLogger(__name__)

WATCHED = ["die", "oom"]
# How many container ids to remember as OOM-killed until their exit is collected.
OOM_MEMORY = 4096


class EventStream:
    """One filtered subscription to the engine's events, reopened with `since` (so no event
    is lost) and backoff whenever it breaks."""

    def __init__(self, engine: Engine, filters: dict[str, list[str]]) -> None:
        self._engine = engine
        self._filters = filters
        self._since: str | None = None
        self.connected = asyncio.Event()
        # Set once the first subscription has succeeded or failed: start-up waits for it.
        self.tried = asyncio.Event()

    async def run(self) -> None:
        """Follows the event stream until cancelled, reconnecting with backoff."""
        backoff = 0.05
        while True:
            try:
                events = self._engine.events(
                    self._filters, since=self._since, on_subscribed=self._subscribed
                )
                async for event in events:
                    backoff = 0.05
                    self._receive(event)
                log.warning("docker events stream ended; reconnecting")
            except EngineError as exc:
                log.warning("docker events stream failed: %s", exc.message)
            self.tried.set()
            self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _subscribed(self) -> None:
        self.connected.set()
        self.tried.set()

    def _receive(self, event: dict[str, Any]) -> None:
        time_nano = event.get("timeNano")
        if time_nano:
            seconds, nanos = divmod(time_nano, 1_000_000_000)
            self._since = f"{seconds}.{nanos:09d}"
        self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        raise NotImplementedError


class ImageEvents(EventStream):
    """Image tags, builds and removals: a rebuilt tag must drain the pools that run it."""

    def __init__(
        self, engine: Engine, on_change: Callable[[], Awaitable[None]], tasks: TaskGroup
    ) -> None:
        super().__init__(
            engine, {"type": ["image"], "event": ["tag", "untag", "delete", "import", "load"]}
        )
        self._on_change = on_change
        self._tasks = tasks
        self._pending: asyncio.Task | None = None

    def _dispatch(self, event: dict[str, Any]) -> None:
        # A build sends several events at once: one refresh after them is enough.
        if self._pending is None or self._pending.done():
            self._pending = self._tasks.spawn(self._refresh(), "refresh images")

    async def _refresh(self) -> None:
        await asyncio.sleep(0.05)
        try:
            await self._on_change()
        except EngineError as exc:
            log.warning("refreshing images after an image event failed: %s", exc.message)


class ContainerEvents(EventStream):
    def __init__(self, engine: Engine, group_id: str) -> None:
        super().__init__(
            engine,
            {
                "type": ["container"],
                "label": [f"executor.group={group_id}"],
                "event": WATCHED,
            },
        )
        self._exits: dict[str, asyncio.Future[int]] = {}
        self._oom: dict[str, None] = {}

    def expect_exit(self, container_id: str) -> asyncio.Future[int]:
        """A future for the container's exit status; ask before starting the container."""
        future = self._exits.get(container_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._exits[container_id] = future
        return future

    def was_oom_killed(self, container_id: str) -> bool:
        return container_id in self._oom

    def forget(self, container_id: str) -> None:
        future = self._exits.pop(container_id, None)
        if future is not None and not future.done():
            future.cancel()
        self._oom.pop(container_id, None)

    def _dispatch(self, event: dict[str, Any]) -> None:
        container_id = event.get("id") or event.get("Actor", {}).get("ID")
        action = event.get("Action") or event.get("status")
        if not container_id:
            return
        if action == "oom":
            self._oom[container_id] = None
            if len(self._oom) > OOM_MEMORY:
                self._oom.pop(next(iter(self._oom)))
        elif action == "die":
            future = self._exits.get(container_id)
            if future is not None and not future.done():
                attributes = event.get("Actor", {}).get("Attributes", {})
                with contextlib.suppress(ValueError):
                    future.set_result(int(attributes.get("exitCode", "-1")))
