"""The real `executor` command: serve in a subprocess, then the client commands."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import GROUPS, group_containers

EXECUTOR = [sys.executable, "-m", "executor"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, stdin: bytes = b"", url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EXECUTOR_URL": url}
    return subprocess.run([*EXECUTOR, *args], input=stdin, capture_output=True, env=env, timeout=60)


def wait_route(url: str, path: str, marker: bytes, what: str) -> None:
    """Until the route's GET shows `marker` (b'"busy":1', ...) in its pool."""
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(f"{url}/v1/apps/demo/routes{path}") as response:
            if marker in response.read():
                return
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def call_in_background(url: str, path: str, body: bytes, tmp_path: Path) -> subprocess.Popen:
    """`executor call demo PATH` with `body` on its stdin, left running."""
    (tmp_path / "body").write_bytes(body)
    with (tmp_path / "body").open("rb") as stdin:
        return subprocess.Popen(
            [*EXECUTOR, "call", "demo", path],
            env={**os.environ, "EXECUTOR_URL": url},
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )


@pytest.fixture
def server(tmp_path: Path):
    port = free_port()
    db = tmp_path / "cli.db"
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [*EXECUTOR, "serve", "--port", str(port), "--db", str(db)],
        stdout=log,
        stderr=log,
        env={**os.environ, "EXECUTOR_SHUTDOWN_GRACE": "2"},
    )
    url = f"http://127.0.0.1:{port}"
    group = None
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/health/ready", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "server not ready in 30 s"
                time.sleep(0.1)
        group = sqlite3.connect(db).execute("SELECT value FROM meta").fetchone()[0]
        GROUPS.add(group)
        yield process, url, db, group
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        finally:
            process.kill()
            log.close()


def test_cli_end_to_end(server):
    _, url, _, _ = server
    assert run("apps", "create", "demo", "--config", "GREETING=hi", url=url).returncode == 0
    created = run("routes", "create", "demo", "/hello", "executor/hello", url=url)
    assert created.returncode == 0, created.stderr
    assert b'"path": "/hello"' in created.stdout
    assert run("apps", "list", url=url).stdout == b"demo\n"
    assert run("routes", "list", "demo", url=url).stdout.startswith(b"/hello\texecutor/hello")

    called = run("call", "demo", "/hello", stdin=b'{"name": "CLI"}', url=url)
    assert (called.returncode, called.stdout) == (0, b"Hello CLI!\n")

    missing = run("call", "demo", "/nope", url=url)
    assert missing.returncode == 1
    assert b"HTTP 404" in missing.stderr and b"/nope" in missing.stderr

    refused = run("apps", "delete", "demo", url=url)
    assert refused.returncode == 1 and b"HTTP 409" in refused.stderr
    assert run("routes", "delete", "demo", "/hello", url=url).returncode == 0
    assert run("apps", "delete", "demo", url=url).returncode == 0


def test_a_second_server_on_the_same_database_exits_with_a_clear_error(server):
    _, _, db, _ = server
    second = subprocess.run(
        [*EXECUTOR, "serve", "--port", str(free_port()), "--db", str(db)],
        capture_output=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert b"in use by another executor" in second.stderr


def test_sigterm_stops_the_server_and_leaves_no_container(server):
    process, url, _, group = server
    run("apps", "create", "demo", url=url)
    run("routes", "create", "demo", "/sleep", "executor-test/sleep", url=url)
    caller = subprocess.Popen(
        [*EXECUTOR, "call", "demo", "/sleep"],
        env={**os.environ, "EXECUTOR_URL": url},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while not group_containers(group, "status=running"):
        assert time.monotonic() < deadline, "the call's container never started"
        time.sleep(0.1)
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    # The call in flight had the 2 s grace, then was answered, not dropped.
    _, err = caller.communicate(timeout=10)
    assert caller.returncode == 1
    assert b"HTTP 503" in err and b"shutting down" in err
    assert time.monotonic() - stopping < 8
    assert group_containers(group) == []


def test_sigterm_lets_a_hot_call_finish_and_removes_every_hot_container(server, tmp_path):
    process, url, _, group = server
    created = run(
        "routes", "create", "demo", "/hot", "executor-test/hot",
        "--format", "http-stream", "--min-warm", "2", url=url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    wait_route(url, "/hot", b'"idle":2', "the min_warm containers never became ready")
    caller = call_in_background(url, "/hot", b"sleep 1", tmp_path)
    wait_route(url, "/hot", b'"busy":1', "the call never reached a container")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    # Within the 2 s grace: the call in flight finished with its own answer.
    out, err = caller.communicate(timeout=10)
    assert caller.returncode == 0, err
    assert b'"body": "sleep 1"' in out
    assert group_containers(group) == []
    assert not Path(f"/tmp/exr-{group[-8:]}").exists()


def test_sigterm_stops_a_hot_call_past_the_grace_with_503(server, tmp_path):
    process, url, _, group = server
    run("routes", "create", "demo", "/hot", "executor-test/hot", "--format", "http-stream",
        url=url)  # fmt: skip
    wait_route(url, "/hot", b'"idle":1', "the hot container never became ready")
    caller = call_in_background(url, "/hot", b"sleep 30", tmp_path)
    wait_route(url, "/hot", b'"busy":1', "the call never reached a container")
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    _, err = caller.communicate(timeout=10)
    assert caller.returncode == 1
    assert b"HTTP 503" in err and b"shutting down" in err, err
    assert time.monotonic() - stopping < 8  # the 2 s grace, then removal
    assert group_containers(group) == []
