"""Typed application state: the one key under which the executor's parts live."""

from __future__ import annotations

from aiohttp import web

from executor.runtime import Executor

EXECUTOR = web.AppKey("executor", Executor)
