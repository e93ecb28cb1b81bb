"""The aiohttp application: its parts are built, started and stopped by one cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from ulid import ULID

from executor import api, routes_file
from executor.admission import Admission, host_container_limit, host_memory_mib
from executor.async_calls import AsyncCalls
from executor.cold import ColdRunner
from executor.config import Settings
from executor.docker.engine import DockerEngine
from executor.docker.spec import Identity
from executor.errors import BadSetting, ExecutorError
from executor.invoker import Invoker
from executor.metrics import Metrics
from executor.pool.events import ContainerEvents, ImageEvents
from executor.pool.pools import HotPools
from executor.pool.reaper import remove_orphans_when_connected
from executor.registry import Registry
from executor.state import (
    ADMISSION,
    ASYNC_CALLS,
    CALLS,
    ENGINE,
    EVENTS,
    IDENTITY,
    INVOKER,
    METRICS,
    POOLS,
    REGISTRY,
    SETTINGS,
    STORE,
)
from executor.store.calls import CallRecords
from executor.store.sqlite import Store

log = logging.getLogger(__name__)

# How long start-up waits for the engine's event stream before serving without it.
EVENTS_CONNECT_TIMEOUT = 5.0


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[api.errors.error_middleware, api.auth.token_middleware],
        client_max_size=settings.max_request_bytes,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_executor)
    app.on_shutdown.append(_drain)
    api.setup_routes(app)
    return app


async def _executor(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # A routes file is read and checked before anything starts: a bad one stops the start.
    declared = routes_file.read(settings.routes_file, settings) if settings.routes_file else None
    async with contextlib.AsyncExitStack() as stack:
        store = await Store.open(settings.db)
        stack.push_async_callback(store.close)
        metrics = Metrics(enabled=settings.metrics)
        records = None
        if settings.call_records:
            records = CallRecords(
                store.connection,
                flush_interval=settings.calls_flush_interval,
                # A cold call's stderr comes capped already, with a note of what was
                # dropped: room for that note.
                max_log_bytes=settings.max_log_bytes + 64,
                max_count=settings.calls_max_count,
                max_age=settings.calls_max_age,
            )
            # Closed after every call has ended and before the store: SIGTERM loses none.
            stack.push_async_callback(records.close, asyncio.create_task(records.run()))
        engine = DockerEngine(settings.docker_url, on_error=metrics.docker_error)
        stack.push_async_callback(engine.close)
        identity = Identity(group=store.group_id, instance=str(ULID()).lower())

        events = ContainerEvents(engine, identity.group)
        stack.push_async_callback(_cancel, asyncio.create_task(events.run()))
        registry = Registry(store, engine, settings)
        await registry.load()
        if declared is not None:
            try:
                applied = await routes_file.apply(registry, declared, settings.routes_prune)
            except ExecutorError as exc:
                raise BadSetting(
                    f"routes file {str(settings.routes_file)!r}: {exc.message}"
                ) from None
            log.info("routes file %s applied: %s", settings.routes_file, applied)
        budget = settings.memory_budget or int(host_memory_mib() * 0.8)
        containers = settings.max_host_containers or host_container_limit(settings.pids_limit)
        admission = Admission(budget, settings.max_starts, containers)
        cold = ColdRunner(engine, events, identity, settings, metrics, admission)
        stack.push_async_callback(cold.close)
        on_log = records.add_log if records is not None else None
        pools = HotPools(engine, events, identity, settings, metrics, admission, on_log)
        stack.push_async_callback(pools.close)
        admission.evict_with(pools.evict_idle)
        metrics.watch_pools(pools.counts)
        images = ImageEvents(engine, registry.refresh_images)
        stack.push_async_callback(images.stop)
        stack.push_async_callback(_cancel, asyncio.create_task(images.run()))

        # Exits are learnt from the event stream: it must be up before a container runs.
        # With the engine unreachable the executor still starts (not ready, calls 503)
        # and catches up when the engine answers.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(events.tried.wait(), EVENTS_CONNECT_TIMEOUT)
        reaping = asyncio.create_task(remove_orphans_when_connected(engine, identity, events))
        stack.push_async_callback(_cancel, reaping)
        if events.connected.is_set():
            await asyncio.wait({reaping}, timeout=EVENTS_CONNECT_TIMEOUT)
        # min_warm containers start now, in the background, once orphans are gone.
        registry.watch(pools)
        await registry.announce_all()

        app[STORE] = store
        app[ENGINE] = engine
        app[EVENTS] = events
        app[IDENTITY] = identity
        app[REGISTRY] = registry
        app[POOLS] = pools
        app[METRICS] = metrics
        app[ADMISSION] = admission
        invoker = Invoker(registry, cold, pools, metrics, records)
        app[INVOKER] = invoker
        if records is not None:
            app[CALLS] = records
            # Async calls are call records first: without them there are none.
            async_calls = AsyncCalls(store.connection, records, registry, invoker, settings)
            stack.push_async_callback(async_calls.close)  # before the records' writer
            await async_calls.recover()
            async_calls.start()
            app[ASYNC_CALLS] = async_calls
            metrics.watch_async(lambda: async_calls.queued, lambda: async_calls.running)
        # Everything built so far lives as long as the process: out of the collector's
        # sight, each collection on the warm path has far fewer objects to walk.
        gc.collect()
        gc.freeze()
        log.info(
            "executor ready: group %s, instance %s, %d app(s)",
            identity.group,
            identity.instance,
            len(registry.apps()),
        )
        yield


async def _drain(app: web.Application) -> None:
    # Runs once the listening socket is closed and before aiohttp waits for handlers,
    # so every call in flight is answered (its own result, or 503) before it stops.
    if ASYNC_CALLS in app:
        app[ASYNC_CALLS].stop()  # what is still queued waits for the next start
    if INVOKER in app:
        app[ADMISSION].close()  # calls waiting for memory are answered now (503)
        await app[INVOKER].drain(app[SETTINGS].shutdown_grace)


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
