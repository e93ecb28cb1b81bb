"""Every server-wide setting in one place, read from `EXECUTOR_*` variables or CLI flags."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


def default_docker_url() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECUTOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    db: Path = Path("./data/executor.db")
    docker_url: str = Field(default_factory=default_docker_url)

    # Bodies and logs (SPEC.md: server-wide defaults).
    max_request_bytes: int = 6 * MiB
    max_response_bytes: int = 6 * MiB
    max_log_bytes: int = 64 * 1024

    # Bounds on route fields.
    memory_min: int = 8
    memory_max: int = 8192
    timeout_max_sync: int = 300
    timeout_max_async: int = 3600
    idle_timeout_max: int = 3600
    max_containers_max: int = 256
    tmpfs_max: int = 4096
    cpus_max: float = Field(default_factory=lambda: float(os.cpu_count() or 1))
    retries_max: int = 10

    # Container hardening that is not per route.
    pids_limit: int = 256

    # Hot containers (`http-stream`): where their iofs directories live on the host (kept
    # short: a unix socket path has at most 107 bytes; default /tmp/exr-<group>), and how
    # long one may take to create its socket.
    iofs_dir: Path | None = None
    hot_start_timeout: float = 10.0

    # At shutdown (SIGTERM): how long calls in flight may still run, and how long removing
    # the containers left may take.
    shutdown_grace: float = 10.0
