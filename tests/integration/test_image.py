"""The executor's own image (Dockerfile), built on the local Python base by
images/executor.sh, run as a container that drives its host's engine through the socket."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "executor-test/executor:latest"
SOCKET = "/var/run/docker.sock"
UID = 10001  # the image's user


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, timeout=120
    ).stdout.strip()


@pytest.fixture(scope="module")
def image() -> str:
    built = subprocess.run(
        [str(ROOT / "images/executor.sh"), IMAGE],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON_HOST": sys.executable},
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return IMAGE


@dataclass
class Running:
    container: str
    url: str
    instance: str  # the executor's id: the `executor.instance` label of what it makes
    iofs: Path
    ready_after: float  # seconds from `docker run` to a 200 from /health/ready

    def made(self, *flags: str) -> list[str]:
        """The containers this executor made (`docker ps` FLAGS)."""
        label = f"label=executor.instance={self.instance}"
        return docker("ps", *flags, "-q", "--filter", label).split()


@contextlib.contextmanager
def _run(image: str, *flags: str, shared: bool) -> Iterator[Running]:
    # The host folder hot containers' iofs directories live in, mounted at /iofs in the
    # executor and named to it as the host path; the image's user must own it. `shared`:
    # the executor mounts a tmpfs per hot container in it, which must reach the host (a
    # shared mount point, bound with rshared propagation), as README "Run in a container".
    iofs = Path(f"/tmp/exr-it-{secrets.token_hex(3)}")
    iofs.mkdir()
    os.chown(iofs, UID, UID)
    if shared:
        subprocess.run(["mount", "--bind", str(iofs), str(iofs)], check=True)
        subprocess.run(["mount", "--make-shared", str(iofs)], check=True)
        volume = f"type=bind,source={iofs},target=/iofs,bind-propagation=rshared"
    else:
        volume = f"type=bind,source={iofs},target=/iofs"
    name = f"executor-it-{secrets.token_hex(4)}"
    started = time.monotonic()
    docker(
        "run", "-d", "--name", name,
        "-p", "127.0.0.1::8080",
        "-v", f"{SOCKET}:{SOCKET}",
        "--group-add", str(os.stat(SOCKET).st_gid),
        "--mount", volume,
        "-e", f"EXECUTOR_IOFS_HOST_DIR={iofs}",
        *flags,
        image,
    )  # fmt: skip
    instance = None
    try:
        port = docker("port", name, "8080/tcp").splitlines()[0].rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        ready_after = _wait_ready(url, name) - started
        instance = _get_json(f"{url}/")["instance"]
        yield Running(name, url, instance, iofs, ready_after)
    finally:
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
        print(logs.stdout, logs.stderr)  # shown when the test failed
        docker("stop", "-t", "20", name, check=False)  # SIGTERM: it removes what it made
        docker("rm", "-f", "-v", name, check=False)
        if instance is not None:
            left = Running(name, "", instance, iofs, 0).made("-a")
            if left:
                docker("rm", "-f", *left, check=False)
        if shared:
            subprocess.run(["umount", "-R", "-l", str(iofs)], check=False)
        shutil.rmtree(iofs, ignore_errors=True)


@pytest.fixture
def running(image: str) -> Iterator[Running]:
    """As README "Run in a container" runs it: root in its container with CAP_SYS_ADMIN,
    to mount each hot container's iofs tmpfs (it drives the host's engine either way)."""
    flags = ("--user", "0", "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined")
    with _run(image, *flags, shared=True) as r:
        yield r


@pytest.fixture
def running_unprivileged(image: str) -> Iterator[Running]:
    """The image's own user, with plain iofs directories (EXECUTOR_IOFS_TMPFS=false)."""
    with _run(image, "-e", "EXECUTOR_IOFS_TMPFS=false", shared=False) as r:
        yield r


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=1) as r:
        return json.loads(r.read())


def _wait_ready(url: str, name: str) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            _get_json(f"{url}/health/ready")
            return time.monotonic()
        except OSError:  # not listening yet, or 503 (HTTPError)
            time.sleep(0.05)
    pytest.fail(f"the executor's container never became ready: {docker('logs', name)}")


async def test_the_image_runs_both_formats_on_its_hosts_engine(running: Running):
    async with aiohttp.ClientSession(running.url) as http:

        async def api(method: str, path: str, body: dict) -> None:
            async with http.request(method, path, json=body) as r:
                assert r.status in (200, 201), await r.text()

        await api("POST", "/v1/apps", {"app": {"name": "demo"}})
        await api("PUT", "/v1/apps/demo/routes/hello", {"route": {"image": "executor/hello"}})
        hot = {"image": "executor/hello-stream", "format": "http-stream", "min_warm": 1}
        await api("PUT", "/v1/apps/demo/routes/hot", {"route": hot})

        async with http.post("/r/demo/hello", data=b'{"name": "Cold"}') as r:
            assert (r.status, await r.text()) == (200, "Hello Cold!\n")
            assert r.headers["Executor-Start"] == "cold"
            assert r.headers["Executor-Instance"] == running.instance
        for _ in range(3):
            async with http.post("/r/demo/hot", data=b'{"name": "Hot"}') as r:
                assert (r.status, await r.text()) == (200, "Hello Hot!\n")
                assert r.headers["Executor-Start"] in ("warm", "fresh")
        assert r.headers["Executor-Start"] == "warm"

    # The hot container's socket is in the host folder, under this executor's group, in a
    # tmpfs the executor mounted from its container.
    [socket] = running.iofs.glob("exr-*/*/lsnr.sock")
    mount = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE,OPTIONS", "-T", str(socket.parent)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert mount.startswith("tmpfs") and "size=1024k" in mount, mount
    assert len(running.made()) == 1  # the hot one (the cold one is gone)

    # SIGTERM (docker stop) removes what the executor made, as outside a container.
    docker("stop", "-t", "30", running.container)
    assert docker("inspect", "-f", "{{.State.ExitCode}}", running.container) == "0"
    assert not running.made("-a")
    assert not list(running.iofs.glob("exr-*"))
    print(f"ready {running.ready_after:.2f} s after docker run")


def test_the_image_is_non_root_with_a_healthcheck(running_unprivileged: Running):
    running = running_unprivileged
    assert docker("inspect", "-f", "{{.Config.User}}", running.container) == f"{UID}:{UID}"
    check = docker("inspect", "-f", "{{json .Config.Healthcheck.Test}}", running.container)
    assert "executor.healthcheck" in check
    # The check itself, run now rather than waiting for the engine's first interval.
    docker("exec", running.container, "python3", "-m", "executor.healthcheck")
    assert docker("exec", running.container, "id", "-u") == str(UID)
    # Without the right to mount, hot containers still run, on plain iofs directories.
    hot = {"route": {"image": "executor/hello-stream", "format": "http-stream"}}
    for method, path, body in (
        ("POST", "/v1/apps", {"app": {"name": "demo"}}),
        ("PUT", "/v1/apps/demo/routes/hot", hot),
    ):
        data = json.dumps(body).encode()
        request = urllib.request.Request(running.url + path, data=data, method=method)
        urllib.request.urlopen(request, timeout=10).close()
    with urllib.request.urlopen(
        urllib.request.Request(f"{running.url}/r/demo/hot", data=b"{}"), timeout=20
    ) as r:
        assert r.read() == b"Hello World!\n"
    # The dashboard's files are in the image, package data.
    for name in ("", "app.js", "style.css"):
        with urllib.request.urlopen(f"{running.url}/ui/{name}", timeout=5) as r:
            assert r.status == 200 and "script-src 'self'" in r.headers["Content-Security-Policy"]
