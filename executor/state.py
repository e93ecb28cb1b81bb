"""Typed application state: the keys under which the server's parts live."""

from __future__ import annotations

from aiohttp import web

from executor.admission import Admission
from executor.async_calls import AsyncCalls
from executor.config import Settings
from executor.docker.engine import DockerEngine
from executor.docker.spec import Identity
from executor.invoker import Invoker
from executor.metrics import Metrics
from executor.pool.events import ContainerEvents
from executor.pool.pools import HotPools
from executor.registry import Registry
from executor.store.calls import CallRecords
from executor.store.sqlite import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ENGINE = web.AppKey("engine", DockerEngine)
EVENTS = web.AppKey("events", ContainerEvents)
IDENTITY = web.AppKey("identity", Identity)
REGISTRY = web.AppKey("registry", Registry)
INVOKER = web.AppKey("invoker", Invoker)
POOLS = web.AppKey("pools", HotPools)
METRICS = web.AppKey("metrics", Metrics)
CALLS = web.AppKey("calls", CallRecords)  # absent when call records are off
ADMISSION = web.AppKey("admission", Admission)
ASYNC_CALLS = web.AppKey("async_calls", AsyncCalls)  # absent when call records are off
