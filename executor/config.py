"""Every server-wide setting in one place, read from `EXECUTOR_*` variables or CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


def default_docker_url() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECUTOR_", extra="ignore")

    host: str = "127.0.0.1"
    # With a token, /v1/* needs `Authorization: Bearer <token>`, as do calls of routes
    # with `auth: token`; other calls stay open.
    api_token: str | None = None
    port: int = 8080
    # A SQLite file (the embedded default), or a PostgreSQL URL (postgresql://...) that a
    # fleet of executors shares.
    db: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, Path) else v)] = (
        "./data/executor.db"
    )
    # What a node keeps of its own beside a shared database: its node id (the label of
    # its containers) and that id's lock. With SQLite the database file is the node's.
    data_dir: Path = Path("./data")
    docker_url: str = Field(default_factory=default_docker_url)

    # Bodies and logs (SPEC.md: server-wide defaults).
    max_request_bytes: int = 6 * MiB
    max_response_bytes: int = 6 * MiB
    max_log_bytes: int = 64 * 1024
    # How long an API request's body may take to arrive (a call's body: until its
    # deadline); past it, 408.
    body_timeout: float = 30.0
    # How long a caller may take to read a large response whose container is already
    # free (a cold call's, or a hot one read whole); past it the connection is cut.
    send_timeout: float = 10.0

    # Bounds on route fields.
    memory_min: int = 8
    memory_max: int = 8192
    timeout_max_sync: int = 300
    timeout_max_async: int = 3600
    idle_timeout_max: int = 3600
    # Routes saved without an idle_timeout get "auto" (their rhythm) rather than 30 s.
    idle_timeout_auto: bool = False
    max_containers_max: int = 256
    tmpfs_max: int = 4096
    cpus_max: float = Field(default_factory=lambda: float(os.cpu_count() or 1))
    retries_max: int = 10

    # A route's image the engine does not have is pulled first, for at most this long
    # (0: never pull).
    pull_timeout: float = 30.0

    # Host admission: MiB all function containers may reserve together (their routes'
    # `memory`; unset: 80% of the host's memory), and container starts in flight at once.
    memory_budget: int | None = None
    max_starts: int = 8
    # Function containers at once (unset: as many as keep their pids_limit together
    # within half the host's pid_max), so no function's processes can exhaust the host's.
    max_host_containers: int | None = None

    # Container hardening that is not per route.
    pids_limit: int = 128
    # What a container may print besides its response (its log: hot containers' stdout
    # and stderr, cold ones' stderr), in bytes: a burst, then a rate per second. Past
    # it the executor stops reading until the budget refills, so the function's writes
    # block (formats/budget.py).
    output_burst: int = 8 * MiB
    output_rate: int = 1 * MiB

    # Hot containers (`http-stream`): the directory under which each executor keeps its
    # containers' iofs directories (in exr-<group>/, its own, emptied at start). Keep it
    # short: <iofs_dir>/exr-<8>/<12>/lsnr.sock must fit a unix socket path (107 bytes).
    # And how long a hot container may take to create its socket.
    iofs_dir: Path = Path("/tmp")
    # The same directory as the Docker engine sees it, when they differ: the executor in
    # a container, with iofs_dir bind-mounted from this host path (the Fn Project's
    # FN_IOFS_DOCKER_PATH, which is read too). Unset: the engine sees iofs_dir itself.
    iofs_host_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "iofs_host_dir", "EXECUTOR_IOFS_HOST_DIR", "FN_IOFS_DOCKER_PATH"
        ),
    )
    hot_start_timeout: float = 10.0
    # Each hot container's iofs directory is a tmpfs of this many KiB (its socket, the
    # FDK's symlink, a few inodes), so nothing a function writes there reaches the host's
    # disk. Mounting needs root (CAP_SYS_ADMIN in a container); false: plain directories.
    iofs_size: int = 1024
    iofs_tmpfs: bool = True
    # Run hot containers' processes as SCHED_BATCH: a function woken by a call then no
    # longer preempts the executor inside its write to the function's socket, so under
    # full CPU the executor keeps serving other calls (about +20% calls/s at concurrency
    # 32 on 2 cores; no change at concurrency 1). Needs the right to renice them (root).
    hot_sched_batch: bool = True
    # Pause hot containers idle this many seconds (their cgroup's freezer), resumed when
    # a call takes one; None: never (the default: README "Pausing idle containers" has
    # the figures it was chosen from).
    pause_idle_after: float | None = None
    # Pause by writing the container's cgroup freezer (cgroup v1, the executor on the
    # host) rather than through the engine's API, where it can: 0.12 ms against ~16 ms.
    pause_direct: bool = True

    # Observability. Call records are written by one batching task (a group commit every
    # `calls_flush_interval` seconds at most) and kept up to a count and an age.
    metrics: bool = True
    call_records: bool = True
    calls_flush_interval: float = 0.05
    calls_max_count: int = 100_000
    calls_max_age: float = 7 * 24 * 3600.0
    log_format: Literal["console", "json"] = "console"
    access_log: bool = True

    # Apps and routes declared in a file (YAML or JSON), applied at start-up; with
    # `routes_prune`, apps and routes the file does not name are deleted.
    routes_file: Path | None = None
    routes_prune: bool = False

    # Async calls (`type: async` routes): how many run at once server-wide (each route
    # also at most its `max_containers`, twice that for a hot route), and how much of
    # each response is kept.
    async_concurrency: int = 32
    async_response_bytes: int = 1 * MiB
    # On a shared store: a node running an async call holds it under a lease of this many
    # seconds, renewed every third of it; a node that dies (kill -9, host lost) gives its
    # calls up when their lease runs out, and another node ends or retries them.
    async_lease: float = 30.0
    # Async calls waiting in the queue (not yet running), in calls and in request body
    # bytes, server-wide and per route: past either, a submit answers 429 with
    # Retry-After. The queue lives in the database: these bound its size.
    async_queue_max: int = 10_000
    async_queue_bytes: int = 256 * MiB
    async_route_queue_max: int = 1_000
    async_route_queue_bytes: int = 64 * MiB

    # At shutdown (SIGTERM): how long calls in flight may still run, and how long removing
    # the containers left may take.
    shutdown_grace: float = 10.0
