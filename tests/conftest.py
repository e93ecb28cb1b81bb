"""Shared test helpers: every executor a test starts is tracked by its group, and every
container of those groups is removed when the test ends, passed or failed."""

from __future__ import annotations

import socket
import subprocess

import pytest

# Groups (databases) of every executor started by this test session.
GROUPS: set[str] = set()


def free_port() -> int:
    """A loopback port free now (for a process that binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_containers(group: str, *filters: str) -> list[str]:
    args = ["docker", "ps", "-aq", "--filter", f"label=executor.group={group}"]
    for extra in filters:
        args += ["--filter", extra]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()


def remove_group_containers(group: str) -> list[str]:
    ids = group_containers(group)
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)
    return ids


@pytest.fixture(scope="session", autouse=True)
def no_container_left_behind():
    yield
    leaked = {group: remove_group_containers(group) for group in sorted(GROUPS)}
    leaked = {group: ids for group, ids in leaked.items() if ids}
    assert not leaked, f"containers left behind by the suite (now removed): {leaked}"


@pytest.fixture(scope="session")
def postgres_cluster():
    """The session's PostgreSQL cluster, started the first time a test needs it."""
    import os

    from tests.postgres import Cluster, binaries

    bin_dir = binaries()
    if bin_dir is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("EXECUTOR_TEST_STRICT"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = Cluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def postgres_url(postgres_cluster):
    """A database of its own for one test, dropped after it."""
    name = postgres_cluster.create_database()
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    """The store a test runs on: each store test runs on both backends."""
    if request.param == "sqlite":
        return str(tmp_path / "x.db")
    return request.getfixturevalue("postgres_url")
