"""The executor's lifecycle: its parts, built in one place, and `start`, `drain`, `close`,
each a straight-line sequence (uvicorn's `Server.startup / shutdown` is the model).

start:  open the store (its lock, its group) -> build every part (no IO) -> the records
        writer -> the engine's event stream -> apps and routes, then the routes file ->
        orphans of an earlier process removed -> pools announced (min_warm starts) ->
        async calls recovered and dispatched -> SERVING
drain:  DRAINING (no new call; queued async calls stay queued) -> reservations waiting
        for memory refused -> pools retired -> calls in flight get the grace ->
        STOPPING -> every container removed, running calls stopped (503)
close:  async runs stopped -> containers still there removed -> starts and removals
        finish (`work`) -> socket watcher and iofs folder -> event streams (`services`)
        -> records flushed -> engine client -> store -> CLOSED

The aiohttp wiring (app.py) runs `start` in its cleanup context, `drain` when the
listening socket closes (before aiohttp waits for handlers), and `close` at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

from ulid import ULID

from executor import routes_file
from executor.admission import Admission, host_container_limit, host_memory_mib
from executor.async_calls import QUEUE_CHANGED, AsyncCalls, NoAsyncCalls
from executor.cold import ColdRunner
from executor.config import Settings
from executor.docker.engine import DockerEngine, Engine
from executor.docker.events import ContainerEvents, ImageEvents
from executor.docker.reaper import remove_orphans_when_connected
from executor.docker.spec import Identity
from executor.errors import BadSetting, ExecutorError
from executor.invoker import Invoker
from executor.lifecycle import Lifecycle, Phase
from executor.metrics import Metrics
from executor.pool.pools import RoutePools
from executor.registry import Registry
from executor.stats import CallStats
from executor.store.calls import CallRecords, NoCallRecords
from executor.store.database import STORE_ERRORS
from executor.store.store import ROUTES_CHANGED, Store
from executor.tasks import TaskGroup

log = logging.getLogger(__name__)

# How long start-up waits for the engine's event stream before serving without it.
EVENTS_CONNECT_TIMEOUT = 5.0
# How often the routes' rhythms (idle_timeout "auto") that changed are saved.
RHYTHMS_SAVED_EVERY = 60.0
# The live view (live.py, GET /v1/stats): one second closed this often.
LIVE_SECOND = 1.0
# On a shared store: routes read again this often, whatever the notices said (one missed
# heals within this), and the notices' connection made again if it was lost.
RESYNC_EVERY = 5.0


class Executor:
    """Every part of one executor process. `async with Executor(settings) as ex` starts it
    and closes it; `drain` comes in between, at shutdown."""

    # Built by start(), in this order.
    store: Store
    identity: Identity
    metrics: Metrics
    records: CallRecords | NoCallRecords
    engine: Engine
    events: ContainerEvents
    images: ImageEvents
    registry: Registry
    admission: Admission
    cold: ColdRunner
    pools: RoutePools
    stats: CallStats
    invoker: Invoker
    async_calls: AsyncCalls | NoAsyncCalls

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.lifecycle = Lifecycle()
        # Streams that live as long as the executor (cancelled at close), and container
        # starts and removals (waited for, bounded by the grace, before the engine closes).
        self.services = TaskGroup("services")
        self.work = TaskGroup("container work")
        self._engine = engine  # tests drive the executor on a fake engine
        self._built = False

    async def __aenter__(self) -> Executor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        settings = self.settings
        # A routes file is read and checked before anything starts: a bad one stops the start.
        declared = (
            routes_file.read(settings.routes_file, settings) if settings.routes_file else None
        )
        self.store = await Store.open(settings.db, settings.data_dir)
        try:
            self._build()
        except BaseException:
            await self.store.close()
            raise
        try:
            self.records.start()
            self.services.spawn(self.events.run(), "container events")
            self.services.spawn(self.images.run(), "image events")
            await self.registry.load()
            if declared is not None:
                await self._apply(declared)
            await self._wait_for_engine()
            self.pools.load_rhythms(await self.store.rhythms())
            self.services.every(
                RHYTHMS_SAVED_EVERY, self._save_rhythms_now, "save the routes' rhythms"
            )
            self.services.every(LIVE_SECOND, self._close_live_second, "the live view's seconds")
            # min_warm containers start now, in the background, once orphans are gone.
            self.registry.watch(self.pools)
            await self.registry.announce_all()
            if self.store.db.shared:
                await self._follow_store()
                self.services.every(RESYNC_EVERY, self._resync, "routes of the other nodes")
            await self.async_calls.recover()
            self.async_calls.start()
        except BaseException:
            await self.close()
            raise
        # Everything built so far lives as long as the process: out of the collector's
        # sight, each collection on the warm path has far fewer objects to walk.
        gc.collect()
        gc.freeze()
        self.lifecycle.enter(Phase.SERVING)
        log.info(
            "executor ready: group %s, instance %s, %d app(s)",
            self.identity.group,
            self.identity.instance,
            len(self.registry.apps()),
        )

    def _build(self) -> None:
        """Every part, wired; nothing started and no IO but the iofs folder's reset."""
        s, lifecycle, work = self.settings, self.lifecycle, self.work
        self.identity = Identity(group=self.store.group_id, instance=str(ULID()).lower())
        self.metrics = metrics = Metrics(enabled=s.metrics)
        if s.call_records:
            self.records = CallRecords(
                self.store.db,
                node=self.identity.group,
                flush_interval=s.calls_flush_interval,
                # A cold call's stderr comes capped already, with a note of what was
                # dropped: room for that note.
                max_log_bytes=s.max_log_bytes + 64,
                max_count=s.calls_max_count,
                max_age=s.calls_max_age,
            )
        else:
            self.records = NoCallRecords()
        self.engine = engine = self._engine or DockerEngine(
            s.docker_url, work, on_error=metrics.docker_error, direct_freezer=s.pause_direct
        )
        self.events = events = ContainerEvents(engine, self.identity.group)
        self.registry = registry = Registry(self.store, engine, s)
        self.images = ImageEvents(engine, registry.refresh_images, self.services)
        budget = s.memory_budget or int(host_memory_mib() * 0.8)
        containers = s.max_host_containers or host_container_limit(s.pids_limit)
        self.admission = Admission(budget, s.max_starts, containers, lifecycle)
        parts = (engine, events, self.identity, s, metrics, self.admission)
        self.cold = ColdRunner(*parts, lifecycle, work)
        self.pools = RoutePools(*parts, self.records.add_log, lifecycle, work)
        self.admission.evict_with(self.pools.evict_idle)
        metrics.watch_pools(self.pools.counts)
        self.stats = CallStats()
        self.invoker = Invoker(
            registry, self.cold, self.pools, metrics, self.records, lifecycle, self.stats
        )
        if isinstance(self.records, CallRecords):
            self.async_calls = AsyncCalls(
                self.store.db,
                self.identity.group,
                self.records,
                registry,
                self.invoker,
                s,
                lifecycle,
            )
        else:
            # Async calls are call records first: without them there are none.
            self.async_calls = NoAsyncCalls()
        async_calls = self.async_calls
        metrics.watch_async(lambda: async_calls.queued, lambda: async_calls.running)
        records = self.records
        metrics.watch_records(lambda: records.dropped, lambda: records.waiting)
        self._built = True

    async def _apply(self, declared: list[routes_file.DeclaredApp]) -> None:
        try:
            applied = await routes_file.apply(self.registry, declared, self.settings.routes_prune)
        except ExecutorError as exc:
            where = str(self.settings.routes_file)
            raise BadSetting(f"routes file {where!r}: {exc.message}") from None
        log.info("routes file %s applied: %s", self.settings.routes_file, applied)

    async def _wait_for_engine(self) -> None:
        """Exits are learnt from the event stream: it must be up before a container runs.
        With the engine unreachable the executor still starts (not ready, calls 503) and
        catches up when the engine answers; orphans go once it does."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.events.tried.wait(), EVENTS_CONNECT_TIMEOUT)
        reaping = self.services.spawn(
            remove_orphans_when_connected(self.engine, self.identity, self.events), "orphans"
        )
        if self.events.connected.is_set():
            await asyncio.wait({reaping}, timeout=EVENTS_CONNECT_TIMEOUT)

    # -- drain and close -----------------------------------------------------------------

    async def drain(self, grace: float) -> None:
        """Stops taking calls; calls in flight get `grace` seconds, then are stopped (503).
        What is queued for async runs stays queued for the next start."""
        if self.lifecycle.phase != Phase.SERVING:
            return  # start-up did not finish: close() does it all
        self.lifecycle.enter(Phase.DRAINING)
        self.admission.refuse_waiting()  # calls waiting for memory: 503 now
        self.pools.retire_all()  # idle containers go; busy ones when their call ends
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.gather(self.cold.wait_idle(), self.pools.wait_empty())
        self.lifecycle.enter(Phase.STOPPING)
        self.pools.remove_all()  # busy ones too: their calls are answered 503
        await self.cold.stop()

    async def _follow_store(self) -> None:
        """Other nodes' route changes and async calls, heard as the store's notices (and,
        past a lost connection, what was missed meanwhile)."""
        try:
            await self.store.db.listen(ROUTES_CHANGED, self.registry.resync)
            await self.store.db.listen(QUEUE_CHANGED, self.async_calls.heard)
        except STORE_ERRORS as exc:
            log.warning("database %s: not hearing other nodes: %s", self.store.db.where, exc)

    async def _resync(self) -> None:
        await self._follow_store()
        try:
            await self.registry.resync()
        except STORE_ERRORS as exc:
            log.warning("database %s: routes not resynced: %s", self.store.db.where, exc)

    async def _close_live_second(self) -> None:
        admission = self.admission
        self.metrics.live.close_second(self.pools.samples(), admission.reserved, admission.budget)

    async def _save_rhythms_now(self) -> None:
        changed = self.pools.changed_rhythms()
        if changed:
            try:
                await self.store.save_rhythms(changed)
            except STORE_ERRORS as exc:
                log.warning("could not save the routes' rhythms: %s", exc)

    async def close(self) -> None:
        """Stops what still runs and releases everything, in dependency order: nothing
        is closed while a part that uses it may still run."""
        if not self._built or self.lifecycle.phase == Phase.CLOSED:
            return
        grace = self.settings.shutdown_grace
        self.lifecycle.enter(Phase.STOPPING)
        await self.async_calls.close()  # before the records: their last steps are written
        self.pools.remove_all()
        await self.cold.stop()
        await self.work.close(grace)  # removals need the engine client
        self.pools.close()
        await self.services.close(0)
        await self.records.close(grace)  # after every call has ended: SIGTERM loses none
        await self._save_rhythms_now()
        await self.engine.close()
        await self.store.close()
        self.lifecycle.enter(Phase.CLOSED)
