"""Start-up and restart: the store's lock, persistence, and cleanup of own orphans only."""

import asyncio
import os
import sqlite3
import subprocess
import sys

import pytest

from executor.errors import StoreLocked
from executor.pool.pools import iofs_root
from executor.state import EXECUTOR
from executor.store.store import Store
from tests.conftest import GROUPS, group_containers, remove_group_containers
from tests.integration.conftest import running, settings_for
from tests.integration.test_invoke_hot import wait_pool


def create_container(group: str, instance: str) -> str:
    """A container as an executor of `group`, process `instance`, would have left it."""
    labels = {
        "executor.managed": "true",
        "executor.group": group,
        "executor.instance": instance,
        "executor.app": "t",
        "executor.route": "/x",
        "executor.kind": "cold",
    }
    args = ["docker", "create"]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    return subprocess.run(
        [*args, "executor-test/sleep"], capture_output=True, text=True, check=True
    ).stdout.strip()


async def test_startup_removes_own_orphans_and_nothing_else(db, tmp_path):
    store = await Store.open(str(db), db.parent)
    own_group = store.group_id
    await store.close()
    other_group = "other-" + own_group
    GROUPS.update({own_group, other_group})

    create_container(own_group, "an-earlier-process")
    foreign = create_container(other_group, "another-executor")
    try:
        async with running(settings_for(db)):
            assert group_containers(own_group) == []
            assert group_containers(other_group) == [foreign[:12]]
    finally:
        remove_group_containers(other_group)


async def test_two_executors_on_one_engine_leave_each_other_alone(tmp_path):
    async with (
        running(settings_for(tmp_path / "a.db")) as a,
        running(settings_for(tmp_path / "b.db")) as b,
    ):
        assert a.group != b.group
        await a.route("/hello", "executor/hello")
        await b.route("/hello", "executor/hello")
        assert (await a.client.post("/r/t/hello")).status == 200
        assert (await b.client.post("/r/t/hello")).status == 200


async def test_a_second_executor_on_the_same_database_is_refused(executor, db):
    with pytest.raises(StoreLocked, match="in use by another executor"):
        await Store.open(str(db), db.parent)


async def test_apps_and_routes_survive_a_restart(db):
    async with running(settings_for(db)) as first:
        await first.json("POST", "/v1/apps", {"app": {"name": "t", "config": {"A": "1"}}}, 200)
        route = await first.route("/hello", "executor/hello", memory=64, config={"B": "2"})
        app = (await first.json("GET", "/v1/apps/t"))["app"]
    async with running(settings_for(db)) as second:
        assert second.group == first.group and second.instance != first.instance
        assert (await second.json("GET", "/v1/apps/t"))["app"] == app
        assert (await second.json("GET", "/v1/apps/t/routes/hello"))["route"] == route
        response = await second.client.post("/r/t/hello")
        assert await response.text() == "Hello World!\n"


async def test_an_unreachable_engine_gives_clear_503s(db, tmp_path):
    async with running(settings_for(db)) as first:
        await first.route("/hello", "executor/hello")
    down = settings_for(db, docker_url=f"unix://{tmp_path}/no-engine.sock")
    async with running(down) as executor:
        ready = await executor.json("GET", "/health/ready", status=503)
        assert "Docker engine unreachable" in ready["error"]["message"]
        call = await executor.client.post("/r/t/hello")
        assert call.status == 503
        assert "Docker engine unreachable" in (await call.json())["error"]["message"]
        save = await executor.json(
            "PUT", "/v1/apps/t/routes/other", {"route": {"image": "executor/hello"}}, 503
        )
        assert "Docker engine unreachable" in save["error"]["message"]
        # What does not need the engine keeps working.
        assert (await executor.json("GET", "/v1/apps/t/routes/hello"))["route"]["path"] == "/hello"
        assert (await executor.json("GET", "/health/live"))["status"] == "live"


async def test_a_copy_of_the_database_never_touches_the_originals_containers(tmp_path):
    original = tmp_path / "a.db"
    async with running(settings_for(original)) as first:
        await first.route("/hot", "executor-test/hot", format="http-stream", min_warm=2)
        await wait_pool(first, "/hot", idle=2)
        mine = set(group_containers(first.group))
        copy = tmp_path / "copy.db"
        with sqlite3.connect(original) as source, sqlite3.connect(copy) as target:
            source.backup(target)  # the file as `cp` would give it, WAL included
        async with running(settings_for(copy)) as second:
            assert second.group != first.group
            assert set(group_containers(first.group)) == mine  # not taken for orphans
            await wait_pool(second, "/hot", idle=2)
        assert set(group_containers(first.group)) == mine
        assert iofs_root(first.app[EXECUTOR].settings, first.group).is_dir()  # its folder too
        response = await first.client.post("/r/t/hot")
        assert response.status == 200
    async with running(settings_for(original)) as again:
        assert again.group == first.group  # the original keeps its own group


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda db: db.write_bytes(b"this is not a database" * 100), "file is not a database"),
        (lambda db: _sql(db, "DROP TABLE routes"), "table(s) routes missing"),
    ],
    ids=["bad header", "dropped table"],
)
def test_a_damaged_database_is_named_in_one_line_and_the_start_fails(tmp_path, damage, said):
    db = tmp_path / "executor.db"
    _sql(db, "SELECT 1")  # made by an executor first, where the damage needs it
    if "routes" in said:
        asyncio.run(_made(db))
    damage(db)
    done = subprocess.run(
        [sys.executable, "-m", "executor", "serve", "--db", str(db), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "EXECUTOR_LOG_FORMAT": "console"},
    )
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"executor: database {db}"), done.stderr
    assert said in last
    assert "Traceback" not in done.stderr


async def test_a_damaged_route_row_is_skipped_and_named(db, caplog):
    async with running(settings_for(db)) as first:
        await first.route("/good", "executor/hello")
        await first.route("/bad", "executor/hello")
    _sql(db, "UPDATE routes SET spec = '{\"path\": 5' WHERE path = '/bad'")
    async with running(settings_for(db)) as second:
        routes = (await second.json("GET", "/v1/apps/t/routes"))["routes"]
        assert [r["path"] for r in routes] == ["/good"]
        assert (await second.client.post("/r/t/good")).status == 200
    assert "of app 't' skipped, its row is damaged" in caplog.text


def _sql(db, statement: str) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(statement)


async def _made(db) -> None:
    store = await Store.open(str(db), db.parent)
    await store.close()
