"""`executor init`, `build`, `deploy`, `run` and `test` on the real engine, for every
runtime (Go, Python, Node, shell), as README "Write and deploy a function" uses them."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli import EXECUTOR, free_port, serve, stop

TESTS = """\
tests:
  - name: greets by name
    in: {"name": "Ann"}
    out: Hello Ann!
  - name: greets the world
    out: Hello World!
  - name: is wrong on purpose
    in: {"name": "Ann"}
    out: Goodbye Ann!
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("workflow")
    port = free_port()
    process = serve(tmp / "wf.db", port, tmp / "server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture
def images() -> Iterator[list[str]]:
    """The image names a test builds (name:version and name:latest), removed after it."""
    names: list[str] = []
    yield names
    for name in names:
        subprocess.run(["docker", "rmi", "-f", f"{name}:latest", f"{name}:0.0.1",
                        f"{name}:0.0.2"], capture_output=True, check=False)  # fmt: skip


def executor(
    folder: Path, *args: str, stdin: bytes = b"", url: str = ""
) -> subprocess.CompletedProcess:
    env = {**os.environ, "EXECUTOR_URL": url} if url else None
    return subprocess.run([*EXECUTOR, *args], cwd=folder, input=stdin, capture_output=True,
                          timeout=300, env=env, check=False)  # fmt: skip


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, (done.stdout.decode(), done.stderr.decode())
    return done.stdout.decode()


def call(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


@pytest.mark.parametrize("runtime", ["go", "python", "node", "shell"])
def test_a_function_goes_from_an_empty_folder_to_a_called_route(
    runtime: str, tmp_path: Path, server: str, images: list[str]
):
    name = f"exr-wf-{secrets.token_hex(3)}-{runtime}"
    images.append(name)
    folder = tmp_path / "hello"
    folder.mkdir()
    written = ok(executor(folder, "init", "--runtime", runtime, name))
    source = {"go": "func.go", "python": "func.py", "node": "func.js", "shell": "func.sh"}
    assert f"wrote func.yaml\nwrote {source[runtime]}\n" == written
    with (folder / "func.yaml").open("a") as f:
        f.write(TESTS)

    began = time.monotonic()
    built = ok(executor(folder, "build"))
    print(f"{runtime}: first build {time.monotonic() - began:.1f} s")
    assert f"built {name}:0.0.1 (and {name}:latest)" in built
    assert "Step 1/" in built  # the engine's progress, shown as it came

    left = set(Path("/tmp").glob("exr-*"))
    assert ok(executor(folder, "run", stdin=b'{"name": "Bob"}')) == "Hello Bob!\n"
    assert set(Path("/tmp").glob("exr-*")) <= left  # its executor's folder went with it

    tested = executor(folder, "test")
    assert tested.returncode == 1
    lines = tested.stdout.decode().splitlines()
    assert lines[:2] == ["PASS  greets by name", "PASS  greets the world"]
    assert lines[2].startswith("FAIL  is wrong on purpose: out: expected 'Goodbye Ann!'")
    assert lines[3] == "2 passed, 1 failed"

    deployed = ok(executor(folder, "deploy", "--app", "wf", url=server))
    assert f"deployed {name}:0.0.1 at {server}/r/wf/{name}" in deployed
    assert call(f"{server}/r/wf/{name}", b'{"name": "Route"}') == b"Hello Route!\n"

    remote = executor(folder, "test", "--remote", "wf", url=server)
    assert remote.returncode == 1 and b"2 passed, 1 failed" in remote.stdout


def test_a_hot_go_function_is_deployed_bumped_and_served_warm(
    tmp_path: Path, server: str, images: list[str]
):
    name = f"exr-wf-{secrets.token_hex(3)}-hot"
    images.append(name)
    folder = tmp_path / "hot"
    folder.mkdir()
    ok(executor(folder, "init", "--runtime", "go", "--format", "http-stream", name))
    ok(executor(folder, "deploy", "--app", "wf", url=server))
    url = f"{server}/r/wf/{name}"
    assert call(url, b'{"name": "Hot"}') == b"Hello Hot!\n"
    # A one-line change, deployed with --bump: a new version, the route moved to it.
    source = folder / "func.go"
    source.write_text(source.read_text().replace("Hello %s!", "Hi %s!"))
    began = time.monotonic()
    deployed = ok(executor(folder, "deploy", "--app", "wf", "--bump", url=server))
    print(f"rebuild and redeploy after a one-line change: {time.monotonic() - began:.1f} s")
    assert "version 0.0.2" in deployed and f"{name}:0.0.2" in deployed
    assert "version: 0.0.2" in (folder / "func.yaml").read_text()
    assert call(url, b'{"name": "Hot"}') == b"Hi Hot!\n"
    request = urllib.request.Request(url, data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Executor-Start"] == "warm"


def test_deploy_all_deploys_every_function_under_the_folder(
    tmp_path: Path, server: str, images: list[str]
):
    tag = secrets.token_hex(3)
    for runtime in ("shell", "python"):
        name = f"exr-wf-{tag}-{runtime}"
        images.append(name)
        (tmp_path / runtime).mkdir()
        ok(executor(tmp_path / runtime, "init", "--runtime", runtime, name))
    deployed = ok(executor(tmp_path, "deploy", "--all", "--app", "many", url=server))
    assert deployed.count("deployed ") == 2
    for runtime in ("shell", "python"):
        assert call(f"{server}/r/many/exr-wf-{tag}-{runtime}", b"{}") == b"Hello World!\n"


def test_python_requirements_are_installed_without_network_in_the_image(
    tmp_path: Path, images: list[str]
):
    name = f"exr-wf-{secrets.token_hex(3)}-deps"
    images.append(name)
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    (tmp_path / "func.py").write_text("import six\nprint('six', six.__version__)\n")
    ok(executor(tmp_path, "init", name))  # the runtime guessed from func.py
    assert "runtime: python" in (tmp_path / "func.yaml").read_text()
    ok(executor(tmp_path, "build"))
    # The route's network is none: the package came in the image.
    assert ok(executor(tmp_path, "run")) == "six 1.16.0\n"


def test_a_failing_build_shows_its_error_and_exits_1(tmp_path: Path, images: list[str]):
    name = f"exr-wf-{secrets.token_hex(3)}-broken"
    images.append(name)
    (tmp_path / "func.go").write_text("package main\n\nfunc main() { oops }\n")
    ok(executor(tmp_path, "init", name))
    built = executor(tmp_path, "build")
    assert built.returncode == 1
    assert b"undefined: oops" in built.stdout  # the compiler's own words
    assert b"executor: the build failed: " in built.stderr


def test_a_bad_func_yaml_is_refused_naming_its_line_and_field(tmp_path: Path):
    (tmp_path / "func.yaml").write_text("name: bad\nversion: 0.0.1\n\nmemory: lots\n")
    built = executor(tmp_path, "build")
    assert built.returncode == 1
    assert (
        built.stderr.decode().strip()
        == "executor: func.yaml:4: memory: Input should be a valid integer"
    )


def test_an_existing_dockerfile_wins_over_the_runtime(tmp_path: Path, images: list[str]):
    name = f"exr-wf-{secrets.token_hex(3)}-docker"
    images.append(name)
    (tmp_path / "func.sh").write_text("echo from the runtime\n")
    dockerfile = 'ARG BASE=executor/busybox:latest\nFROM ${BASE}\nENTRYPOINT ["echo", "from it"]\n'
    (tmp_path / "Dockerfile").write_text(dockerfile)
    ok(executor(tmp_path, "init", name))
    assert "runtime: docker" in (tmp_path / "func.yaml").read_text()
    ok(executor(tmp_path, "build"))
    assert ok(executor(tmp_path, "run")) == "from it\n"
