"""Every route's pool: created, re-keyed, drained and removed as routes change. A hot
route (`http-stream`, `http`) has a HotPool; a `default` route with `min_warm` has a
PrestartPool of single-use containers; a `default` route without has none (every call
starts cold).

A route's pool is keyed by the hash of its container-create body (SPEC.md "Pool
identity"). A change of that body (image ID, memory, config, ...) retires the old pool
(calls in flight finish there) and opens a new one; min_warm, max_containers, timeout and
idle_timeout change in place.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from executor.admission import Admission
from executor.calls import Call, Response
from executor.config import Settings
from executor.docker import spec
from executor.docker.engine import Engine, ImageInfo
from executor.docker.events import ContainerEvents
from executor.errors import NOT_TAKING_CALLS, BadSetting, ServiceUnavailable, ShuttingDown
from executor.formats import default, hot, http_stream
from executor.lifecycle import Lifecycle
from executor.live import PoolSample
from executor.metrics import Metrics
from executor.models import App, Route
from executor.pool import iofs, launcher
from executor.pool.base import PoolRetired, RoutePool
from executor.pool.container import PoolContext
from executor.pool.hot import HotPool
from executor.pool.prestart import PrestartPool
from executor.pool.readiness import SocketWatcher
from executor.pool.rhythm import IdleRhythm
from executor.tasks import TaskGroup

log = logging.getLogger(__name__)


# The longest path a unix socket may have (sun_path is 108 bytes with its NUL).
SOCKET_PATH_MAX = 107


def iofs_root(settings: Settings, group: str) -> Path:
    """This executor's own folder of iofs directories (each <root>/<12 hex>/)."""
    root = settings.iofs_dir.absolute() / _own_folder(group)
    longest = len(str(root / ("x" * 12) / f"phony{http_stream.SOCKET_NAME}").encode())
    if longest > SOCKET_PATH_MAX:
        raise BadSetting(
            f"iofs_dir {str(settings.iofs_dir)!r} is too long: hot containers' sockets "
            f"would have {longest}-byte paths, over the {SOCKET_PATH_MAX}-byte limit"
        )
    return root


def iofs_host_root(settings: Settings, group: str) -> Path:
    """The same folder as the Docker engine sees it: what hot containers bind-mount."""
    if settings.iofs_host_dir is None:
        return iofs_root(settings, group)
    if not settings.iofs_host_dir.is_absolute():
        raise BadSetting(f"iofs_host_dir {str(settings.iofs_host_dir)!r} is not an absolute path")
    return settings.iofs_host_dir / _own_folder(group)


def _own_folder(group: str) -> str:
    return f"exr-{group[-8:]}"


class RoutePools:
    def __init__(
        self,
        engine: Engine,
        events: ContainerEvents,
        identity: spec.Identity,
        settings: Settings,
        metrics: Metrics,
        admission: Admission,
        on_log: Callable[[str, bytes], None],
        lifecycle: Lifecycle,
        work: TaskGroup,
    ) -> None:
        self._settings = settings
        self._identity = identity
        self._lifecycle = lifecycle
        root = iofs_root(settings, identity.group)
        # This group's directories: nothing else uses them while we hold the store lock.
        iofs.clear(root)
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        # The launcher pre-started containers bind-mount, as the engine sees it; None
        # when it was not built (`default` routes then start every call cold).
        installed = launcher.install(root)
        host_root = iofs_host_root(settings, identity.group)
        self._launcher = str(host_root / installed.name) if installed is not None else None
        self._ctx = PoolContext(
            engine=engine,
            events=events,
            watcher=SocketWatcher(),
            settings=settings,
            iofs_root=root,
            iofs_host_root=host_root,
            metrics=metrics,
            admission=admission,
            on_log=on_log,
            lifecycle=lifecycle,
            work=work,
        )
        self._pools: dict[tuple[str, str], RoutePool] = {}
        self._retired: set[RoutePool] = set()
        # Each route's idle times (its rhythm), kept across its pools' re-keys; the store
        # keeps them across restarts (`load_rhythms`, `changed_rhythms`).
        self._rhythms: dict[tuple[str, str], IdleRhythm] = {}

    # -- routes --------------------------------------------------------------------------

    def sync(self, app: App, route: Route, image: ImageInfo) -> None:
        """The route was saved (or its app, or its image changed): keep, update or replace
        its pool. While the executor drains, no pool is opened."""
        with contextlib.suppress(ShuttingDown):
            self.open(app, route, image)

    def open(self, app: App, route: Route, image: ImageInfo) -> RoutePool | None:
        """The route's pool, opened or re-keyed as its container body says (None for a
        route with no pool); ShuttingDown while the executor drains."""
        where = (app.name, route.path)
        body = self._container_body(app, route, image)
        if body is None:
            self.remove(*where)
            return None
        key = spec.pool_key(body)
        current = self._pools.get(where)
        if current is not None and current.key == key:
            current.update(app, route)
            return current
        if self._lifecycle.draining:
            raise ShuttingDown(NOT_TAKING_CALLS)
        rhythm = self._rhythms.setdefault(where, IdleRhythm())
        kind = HotPool if route.hot else PrestartPool
        pool = kind(self._ctx, app, route, body, key, rhythm)
        self._pools[where] = pool
        if current is not None:
            log.info("route %s%s changed: draining its pool", app.name, route.path)
            self._retire(current)
        pool.update(app, route)  # starts min_warm
        return pool

    def _container_body(self, app: App, route: Route, image: ImageInfo) -> dict[str, Any] | None:
        """What the route's pool creates its containers with; None for no pool."""
        pids_limit = self._settings.pids_limit
        if route.hot:
            env = hot.protocol(route.format).environment(app, route)
            return spec.hot_container(
                identity=self._identity,
                app=app,
                route=route,
                image=image,
                env=env,
                pids_limit=pids_limit,
            )
        if not route.min_warm or self._launcher is None:
            return None
        return spec.prestart_container(
            identity=self._identity,
            app=app,
            route=route,
            image=image,
            env=default.static_environment(app, route),
            pids_limit=pids_limit,
            launcher=self._launcher,
        )

    def remove(self, app_name: str, path: str) -> None:
        self._rhythms.pop((app_name, path), None)
        pool = self._pools.pop((app_name, path), None)
        if pool is not None:
            self._retire(pool)

    def pool(self, app_name: str, path: str) -> RoutePool | None:
        return self._pools.get((app_name, path))

    def hot(self, app_name: str, path: str) -> HotPool | None:
        pool = self._pools.get((app_name, path))
        return pool if isinstance(pool, HotPool) else None

    def prestarted(self, app_name: str, path: str) -> PrestartPool | None:
        pool = self._pools.get((app_name, path))
        return pool if isinstance(pool, PrestartPool) else None

    def load_rhythms(self, saved: dict[tuple[str, str], tuple[list[int], int]]) -> None:
        """The routes' rhythms as the store kept them (before any pool opens)."""
        for where, (counts, beyond) in saved.items():
            try:
                self._rhythms[where] = IdleRhythm(counts, beyond)
            except ValueError:
                log.warning("the rhythm of %s%s does not fit: forgotten", *where)

    def changed_rhythms(self) -> dict[tuple[str, str], tuple[list[int], int]]:
        """The rhythms changed since the last call, for the store to save."""
        changed = {}
        for where, rhythm in self._rhythms.items():
            if rhythm.changed:
                rhythm.changed = False
                changed[where] = (list(rhythm.counts), rhythm.beyond)
        return changed

    def evict_idle(self, mib: int, owner: tuple[str, str] | None) -> int:
        """Makes room for `mib` MiB: idle containers of routes other than `owner` go, least
        recently used first. Returns the MiB their removal will free."""
        candidates = [
            (last_used, pool, key)
            for where, pool in self._pools.items()
            if where != owner
            for last_used, key in pool.idle()
        ]
        candidates.sort(key=lambda candidate: candidate[0])
        freed = 0
        for _, pool, key in candidates:
            if freed >= mib:
                break
            freed += pool.evict(key)
        return freed

    def counts(self) -> Iterator[tuple[str, str, str, int]]:
        """(app, route, state, containers) of every route's pool, draining ones included."""
        totals: dict[tuple[str, str, str], int] = {}
        for pool in [*self._pools.values(), *self._retired]:
            for state, count in pool.counts().items():
                where = (pool.app.name, pool.route.path, state)
                totals[where] = totals.get(where, 0) + count
        for (app, route, state), count in totals.items():
            yield app, route, state, count

    def state(self, app_name: str, path: str) -> dict[str, Any] | None:
        pool = self._pools.get((app_name, path))
        return pool.state() if pool is not None else None

    def states(self) -> Iterator[tuple[RoutePool, dict[str, Any]]]:
        """Every route's pool (not the draining ones) with its state: the live view's."""
        for pool in self._pools.values():
            yield pool, pool.state()

    def samples(self) -> list[PoolSample]:
        """Every route's pool as the live view samples it each second."""
        samples = []
        for (app, path), pool in self._pools.items():
            counts = pool.counts()
            idle, busy, starting = counts["idle"], counts["busy"], counts["starting"]
            waiting, memory = pool.waiting, pool.route.memory
            samples.append(PoolSample(app, path, idle, busy, starting, waiting, memory))
        return samples

    # -- calls ---------------------------------------------------------------------------

    async def call_after_retire(self, call: Call, pool: HotPool) -> Response:
        """A call whose pool was drained while it waited moves to the route's new pool."""
        while True:
            if self._lifecycle.draining:
                raise ShuttingDown()
            latest = self.hot(call.app.name, call.route.path)
            if latest is None or latest is pool:
                raise ServiceUnavailable("route removed while the call waited")
            pool = latest
            try:
                return await pool.call(call)
            except PoolRetired:
                continue

    # -- retired pools and shutdown ------------------------------------------------------

    def _retire(self, pool: RoutePool) -> None:
        pool.retire()
        if not pool.empty.is_set():
            self._retired.add(pool)
            self._ctx.work.spawn(self._forget_when_empty(pool), "forget a drained pool")

    async def _forget_when_empty(self, pool: RoutePool) -> None:
        await pool.empty.wait()
        self._retired.discard(pool)

    def _all(self) -> list[RoutePool]:
        return [*self._pools.values(), *self._retired]

    def retire_all(self) -> None:
        """At the drain: no pool takes calls; idle containers go, busy ones once done."""
        for pool in self._all():
            pool.retire()

    async def wait_empty(self) -> None:
        """Until every pool's containers are gone."""
        for pool in self._all():
            await pool.empty.wait()

    def remove_all(self) -> None:
        """Past the grace: removes every container, busy ones too (their calls: 503)."""
        for pool in self._all():
            pool.remove_all()

    def close(self) -> None:
        """Once every container is removed: the socket watcher and the iofs folder go."""
        self._ctx.watcher.close()
        with contextlib.suppress(OSError):
            iofs.clear(self._ctx.iofs_root)
