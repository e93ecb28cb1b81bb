"""Shared test helpers: every executor a test starts is tracked by its group, and every
container of those groups is removed when the test ends, passed or failed."""

from __future__ import annotations

import subprocess

import pytest

# Groups (databases) of every executor started by this test session.
GROUPS: set[str] = set()


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
