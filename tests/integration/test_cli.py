"""The real `executor` command: serve in a subprocess, then the client commands."""

import os
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.conftest import GROUPS, free_port, group_containers
from tests.integration.serving import EXECUTOR, serve, stop


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
def server(tmp_path: Path, request: pytest.FixtureRequest):
    """A `serve` process; a test may add to its environment (parametrize, indirect)."""
    port = free_port()
    db = tmp_path / "cli.db"
    process = serve(db, port, tmp_path / "server.log", **getattr(request, "param", {}))
    try:
        group = sqlite3.connect(db).execute("SELECT value FROM meta").fetchone()[0]
        GROUPS.add(group)
        yield process, f"http://127.0.0.1:{port}", db, group
    finally:
        stop(process)


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


@pytest.mark.parametrize("server", [{"EXECUTOR_CALLS_FLUSH_INTERVAL": "60"}], indirect=True)
def test_sigterm_writes_the_call_records_still_waiting(server):
    process, url, db, _ = server
    run("apps", "create", "demo", url=url)
    run("routes", "create", "demo", "/hello", "executor/hello", url=url)
    for _ in range(3):
        assert run("call", "demo", "/hello", url=url).returncode == 0
    # With a minute between group commits, only the flush at shutdown writes them.
    assert sqlite3.connect(db).execute("SELECT count(*) FROM calls").fetchone() == (0,)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    rows = sqlite3.connect(db).execute("SELECT state, http_status, start FROM calls").fetchall()
    assert rows == [("success", 200, "cold")] * 3


def test_the_calls_and_logs_commands(server):
    _, url, _, _ = server
    run("apps", "create", "demo", url=url)
    run("routes", "create", "demo", "/stderr", "executor-test/stderr", url=url)
    for _ in range(3):
        assert run("call", "demo", "/stderr", url=url).returncode == 0
    listed = run("calls", "demo", "--limit", "2", url=url)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.decode().splitlines()
    assert header.split("\t")[:3] == ["id", "route", "state"]
    assert len(rows) == 2 and all(r.split("\t")[1:3] == ["/stderr", "success"] for r in rows)
    as_json = orjson.loads(run("calls", "demo", "--json", "--state", "success", url=url).stdout)
    assert len(as_json) == 3
    call_id = rows[0].split("\t")[0]
    logs = run("logs", call_id, url=url)
    assert (logs.returncode, logs.stdout) == (0, b"log line 1\nlog line 2\n")
    missing = run("logs", "01ARZ3NDEKTSV4RRFFQ69G5FAV", url=url)
    assert missing.returncode == 1 and b"HTTP 404" in missing.stderr


@pytest.mark.parametrize("server", [{"EXECUTOR_LOG_FORMAT": "json"}], indirect=True)
def test_json_logs_carry_the_call_id_of_every_line_a_call_causes(server, tmp_path):
    process, url, _, _ = server
    run("apps", "create", "demo", url=url)
    run(
        "routes", "create", "demo", "/fails", "executor-test/hot", "--format", "http-stream",
        "--min-warm", "0", "--config", "START_FAIL=1", url=url,
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(urllib.request.Request(f"{url}/r/demo/fails", method="POST"))
    assert failed.value.code == 502
    call_id = failed.value.headers["Fn-Call-Id"]
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    lines = [orjson.loads(line) for line in (tmp_path / "server.log").read_bytes().splitlines()]
    mine = [line for line in lines if line.get("call_id") == call_id]
    # The start failure (a background task the call started) and the access log line.
    assert any("failed to start" in line["event"] for line in mine), mine
    access = [line for line in mine if line["logger"] == "executor.access"]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("POST", "/r/demo/fails", 502)
    ]
    assert all({"timestamp", "level", "event"} <= line.keys() for line in lines)


@pytest.mark.parametrize("server", [{"EXECUTOR_ACCESS_LOG": "false"}], indirect=True)
def test_the_access_log_can_be_switched_off(server, tmp_path):
    process, url, _, _ = server
    run("apps", "create", "demo", url=url)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    log = (tmp_path / "server.log").read_text()
    assert "executor ready" in log
    assert "executor.access" not in log


def test_after_kill_9_a_restart_leaves_no_orphan_and_brings_everything_back(server, tmp_path):
    process, url, db, group = server
    run("apps", "create", "demo", "--config", "GREETING=hi", url=url)
    run("routes", "create", "demo", "/sleep", "executor-test/sleep", url=url)
    run(
        "routes", "create", "demo", "/hot", "executor-test/hot", "--format", "http-stream",
        "--min-warm", "2", url=url,
    )  # fmt: skip
    wait_route(url, "/hot", b'"idle":2', "min_warm never came up")
    caller = call_in_background(url, "/sleep", b"", tmp_path)
    deadline = time.monotonic() + 10
    while len(group_containers(group, "status=running")) < 3:
        assert time.monotonic() < deadline, "the cold call's container never started"
        time.sleep(0.1)
    before = set(group_containers(group))

    process.kill()  # SIGKILL: no drain, no cleanup
    process.wait(timeout=10)
    caller.communicate(timeout=10)
    assert set(group_containers(group)) == before  # left running by the dead process

    port = int(url.rsplit(":", 1)[1])
    restarted = serve(db, port, tmp_path / "server.log")
    try:
        wait_route(url, "/hot", b'"idle":2', "min_warm pool not back after the restart")
        # Every container of the killed instance is gone; only the new pool's remain.
        assert not before & set(group_containers(group))
        assert len(group_containers(group)) == 2
        assert run("apps", "list", url=url).stdout == b"demo\n"
        routes = run("routes", "list", "demo", url=url).stdout.decode()
        assert "/sleep\texecutor-test/sleep" in routes and "/hot\texecutor-test/hot" in routes
        called = run("call", "demo", "/hot", url=url)
        assert called.returncode == 0, called.stderr
    finally:
        stop(restarted)
    assert group_containers(group) == []
