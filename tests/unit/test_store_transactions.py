"""One owner of the store's connections: each writer's step is one transaction, whatever
the others do meanwhile (both backends, real databases)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from executor.models import App
from executor.store.store import Store


@pytest.fixture
async def store(db_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(db_url, tmp_path)
    yield store
    await store.close()


def app(name: str) -> App:
    stamp = "2026-01-01T00:00:00.000Z"
    return App(name=name, id=name + "-id", config={}, created_at=stamp, updated_at=stamp)


async def names(store: Store) -> list[str]:
    return [a.name for a in await store.apps()]


async def test_an_app_saved_during_a_batch_is_not_undone_by_the_batch_failing(store):
    inside = asyncio.Event()
    go_on = asyncio.Event()

    async def batch() -> None:
        async with store.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)", ("batch", "first statement")
            )
            inside.set()
            await go_on.wait()
            raise RuntimeError("the batch's second statement failed")

    failing = asyncio.ensure_future(batch())
    await inside.wait()
    saving = asyncio.ensure_future(store.save_app(app("saved-meanwhile")))
    await asyncio.sleep(0.05)  # SQLite: the save waits for the transaction; PostgreSQL: not
    go_on.set()
    with pytest.raises(RuntimeError):
        await failing
    await saving
    assert await names(store) == ["saved-meanwhile"]
    assert await store.db.fetch("SELECT value FROM meta WHERE key = ?", ("batch",)) == []


async def test_a_read_never_sees_a_transaction_not_yet_committed(store):
    inside = asyncio.Event()
    go_on = asyncio.Event()

    async def save_two() -> None:
        async with store.db.transaction() as tx:
            for name in ("one", "two"):
                a = app(name)
                await tx.execute(
                    "INSERT INTO apps (name, id, config, created_at, updated_at) "
                    "VALUES (?,?,?,?,?)",
                    (a.name, a.id, "{}", a.created_at, a.updated_at),
                )
                if name == "one":
                    inside.set()
                    await go_on.wait()

    saving = asyncio.ensure_future(save_two())
    await inside.wait()
    reading = asyncio.ensure_future(names(store))
    await asyncio.sleep(0.05)
    go_on.set()
    assert await reading in ([], ["one", "two"])  # before or after, never between
    await saving
    assert await names(store) == ["one", "two"]
