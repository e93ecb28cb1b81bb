"""Registry.catch_up: a node sharing a store reads the routes again before a call to a
route it does not know ends 404, and a flood of such calls costs the store little."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from executor.config import Settings
from executor.errors import NotFound, StoreUnavailable
from executor.registry import CATCH_UP_EVERY, Registry
from executor.store.store import Store
from tests.fake_engine import FakeEngine


async def echo(container) -> int:
    return 0


@pytest.fixture
async def nodes(postgres_url: str, tmp_path: Path) -> AsyncIterator[tuple[Registry, Registry]]:
    """Two nodes' registries on one PostgreSQL database (neither listens for notices)."""
    engine = FakeEngine({"fake/echo": echo})
    stores = [await Store.open(postgres_url, tmp_path / name) for name in ("a", "b")]
    settings = Settings(db=postgres_url, data_dir=tmp_path / "a")
    registries = [Registry(store, engine, settings) for store in stores]
    try:
        for registry in registries:
            await registry.load()
        yield registries[0], registries[1]
    finally:
        for store in stores:
            await store.close()


def count_reads(registry: Registry) -> list[int]:
    store = registry._store
    reads = [0]
    routes = store.routes

    async def counted():
        reads[0] += 1
        return await routes()

    store.routes = counted
    return reads


async def test_a_route_made_on_another_node_is_found_before_a_call_ends_404(nodes):
    a, b = nodes
    await a.create_app({"name": "shop"})
    await a.create_route("shop", {"path": "/cart", "image": "fake/echo"})
    with pytest.raises(NotFound):
        b.match("shop", "/cart")  # not heard of yet
    route, _ = await b.match_latest("shop", "/cart")
    assert route.path == "/cart"


async def test_calls_to_unknown_routes_at_once_share_one_read(nodes):
    _, b = nodes
    reads = count_reads(b)
    results = await asyncio.gather(
        *(b.match_latest("nope", "/x") for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, NotFound) for r in results)
    assert reads[0] == 1


async def test_a_flood_of_calls_to_unknown_routes_reads_at_most_ten_times_a_second(nodes):
    _, b = nodes
    reads = count_reads(b)
    loop = asyncio.get_running_loop()
    began = loop.time()
    while loop.time() - began < 0.5:
        with pytest.raises(NotFound):
            await b.match_latest("nope", "/x")
    assert reads[0] <= 0.5 / CATCH_UP_EVERY + 1


async def test_a_store_that_fails_the_read_answers_503_not_404(nodes):
    _, b = nodes

    async def broken():
        raise OSError("connection refused")

    b._store.routes = broken
    with pytest.raises(StoreUnavailable, match="could not be read"):
        await b.match_latest("nope", "/x")


async def test_a_node_with_its_own_store_never_reads_it_again(tmp_path: Path):
    store = await Store.open(str(tmp_path / "own.db"), tmp_path)
    try:
        registry = Registry(store, FakeEngine({}), Settings(db=tmp_path / "own.db"))
        await registry.load()
        reads = count_reads(registry)
        assert await registry.catch_up() is False
        with pytest.raises(NotFound):
            await registry.match_latest("nope", "/x")
        assert reads[0] == 0
    finally:
        await store.close()
