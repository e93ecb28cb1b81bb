"""From a folder of code to a called route: what `executor init`, `build`, `deploy`, `run`
and `test` do (cli.py only parses their arguments and prints).

- **init** writes func.yaml and, in a folder without code, a hello in the runtime;
- **build** sends the folder (with the runtime's Dockerfile when it has none, and its
  Python requirements installed on the host) to the engine's build API, tagged
  `name:version` and `name:latest`, and shows the build's output as it comes;
- **deploy** builds, then creates or updates the route through an executor's API;
- **run** and **test** call the function with its route's limits on an executor of
  their own, in this process (a throw-away SQLite store: no server needed), or `test
  --remote` through a deployed route.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiodocker

from executor import funcfile, runtimes
from executor.config import Settings
from executor.errors import ExecutorError
from executor.funcfile import FuncFile, FuncTest

# What a build context leaves out (as a .dockerignore would).
IGNORED = {".git", ".python", "__pycache__", ".venv", "node_modules/.cache"}


class WorkflowError(Exception):
    """A step failed; the message says why, for the command to print (exit 1)."""


# -- init ---------------------------------------------------------------------------------


def init(folder: Path, name: str | None, runtime: str | None, format: str) -> list[Path]:
    """func.yaml for the folder, and a hello when it has no code. Returns what it wrote."""
    if funcfile.find(folder):
        raise WorkflowError(f"{funcfile.find(folder)} exists already")
    files = {p.name for p in folder.iterdir()} if folder.exists() else set()
    dockerfile = "Dockerfile" in files
    try:
        chosen = runtimes.runtime(runtime) if runtime else runtimes.guess(files)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None
    if chosen is None and not dockerfile:
        chosen = runtimes.RUNTIMES["go"]  # IronFunctions' example runtime
    written = []
    folder.mkdir(parents=True, exist_ok=True)
    if chosen is not None and not dockerfile and chosen.source not in files:
        hello = chosen.hellos.get(format)
        if hello is None:
            formats = ", ".join(chosen.hellos)
            raise WorkflowError(f"the {chosen.name} runtime's hello has no {format!r} format "
                                f"(it has {formats}); write your own and init again")  # fmt: skip
        (folder / chosen.source).write_text(hello)
        written.append(folder / chosen.source)
    fields: dict[str, Any] = {"name": name or _image_name(folder.resolve().name)}
    fields["version"] = "0.0.1"
    if dockerfile:
        fields["runtime"] = "docker"  # the folder's Dockerfile wins
    elif chosen is not None:
        fields["runtime"] = chosen.name
    fields["format"] = format
    fields["memory"] = 128
    fields["timeout"] = 30
    written.insert(0, funcfile.write(folder, fields))
    return written


def _image_name(folder_name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in folder_name.lower()).strip("-")
    return cleaned or "function"


# -- build --------------------------------------------------------------------------------


def context(ff: FuncFile, python: str = sys.executable) -> bytes:
    """The build context as a tar: the folder, its runtime's Dockerfile when it has none,
    and its requirements.txt installed for Python 3.11 into .python/ (pip on the host:
    the image needs no network)."""
    folder = ff.folder
    own = (folder / "Dockerfile").is_file()
    runtime = None
    if not own:
        name = ff.runtime if ff.runtime not in (None, "docker") else None
        files = {p.name for p in folder.iterdir()}
        try:
            runtime = runtimes.runtime(name) if name else runtimes.guess(files)
        except ValueError as exc:
            raise WorkflowError(f"{ff.file}: runtime: {exc}") from None
        if runtime is None:
            raise WorkflowError(f"{folder}: no Dockerfile, and no func.go, func.py, func.js "
                                "or func.sh to guess a runtime from (set runtime)")  # fmt: skip
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if relative.parts and (relative.parts[0] in IGNORED or str(relative) in IGNORED):
                continue
            tar.add(path, arcname=str(relative), recursive=False, filter=_readable)
        if runtime is not None:
            _add(tar, "Dockerfile", runtime.dockerfile(ff.entrypoint, ff.cmd).encode())
        requirements = folder / "requirements.txt"
        if requirements.is_file() and (runtime is None or runtime.name == "python"):
            with tempfile.TemporaryDirectory(prefix="executor-pip-") as site:
                _pip(python, requirements, Path(site))
                tar.add(site, arcname=".python", filter=_readable)
    return buffer.getvalue()


def _readable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Owned by root and readable by all: a function runs as an unprivileged user (its
    route's `user`, 65534 for root images), which must read what was copied in."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode |= 0o555 if info.isdir() else 0o444
    return info


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _pip(python: str, requirements: Path, target: Path) -> None:
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-compile", "--target", str(target),
         "--python-version", "3.11", "--only-binary=:all:", "-r", str(requirements)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise WorkflowError(f"{requirements}: pip could not install it:\n{done.stderr.strip()}")


async def build(
    ff: FuncFile,
    show: Callable[[str], None],
    docker_url: str | None = None,
    build_args: dict[str, str] | None = None,
) -> str:
    """Builds ff's image through the engine's API, tagged name:version and name:latest;
    `show` gets the build's output as it comes. `build_args` set the Dockerfile's ARGs
    (BASE=python:3.11-slim with a registry). Returns the image's id."""
    tar = await asyncio.to_thread(context, ff)
    docker = aiodocker.Docker(url=docker_url)
    try:
        image_id = None
        try:
            stream = docker.images.build(
                fileobj=io.BytesIO(tar), encoding="application/x-tar", tag=ff.image,
                rm=True, forcerm=True, stream=True, buildargs=build_args or None,
            )  # fmt: skip
            async for part in stream:
                if "errorDetail" in part or "error" in part:
                    detail = part.get("errorDetail", {}).get("message") or part.get("error")
                    raise WorkflowError(f"the build failed: {detail.strip()}")
                text = part.get("stream")
                if text:
                    show(text)
                aux = part.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = aux["ID"]
        except aiodocker.DockerError as exc:
            raise WorkflowError(f"the build failed: {exc.message}") from None
        repository = ff.name
        await docker.images.tag(ff.image, repository, tag="latest")
        return image_id or (await docker.images.inspect(ff.image))["Id"]
    finally:
        await docker.close()


async def push(ff: FuncFile, registry: str, show: Callable[[str], None],
               docker_url: str | None = None) -> str:  # fmt: skip
    """Tags name:version as REGISTRY/name:version and pushes it; returns that name."""
    target = f"{registry.rstrip('/')}/{ff.name}"
    docker = aiodocker.Docker(url=docker_url)
    try:
        await docker.images.tag(ff.image, target, tag=ff.version)
        async for part in docker.images.push(target, tag=ff.version, stream=True):
            if "error" in part:
                raise WorkflowError(f"the push failed: {part['error']}")
            if part.get("status"):
                show(f"{part['status']}\n")
    except aiodocker.DockerError as exc:
        raise WorkflowError(f"the push failed: {exc.message}") from None
    finally:
        await docker.close()
    return f"{target}:{ff.version}"


def folders(root: Path, every: bool) -> list[Path]:
    """The func.yaml files to deploy: the folder's, or with --all every one under it."""
    if not every:
        file = funcfile.find(root)
        if file is None:
            raise WorkflowError(f"{root}: no func.yaml (executor init writes one)")
        return [file]
    found = sorted(p for name in funcfile.FILE_NAMES for p in root.rglob(name)
                   if not set(p.relative_to(root).parts) & IGNORED)  # fmt: skip
    if not found:
        raise WorkflowError(f"{root}: no func.yaml in it or under it")
    return found


# -- run and test, on an executor of this process -------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    log: bytes  # the function's standard error (cold) or log lines (hot)


@contextlib.asynccontextmanager
async def local_executor(ff: FuncFile, env: dict[str, str] | None = None
                         ) -> AsyncIterator[Callable[[bytes], Any]]:  # fmt: skip
    """An executor of this process on a throw-away SQLite store, serving ff's route
    (its limits, its format) with `env` added to its config; yields `call(body)`."""
    from executor.calls import Call
    from executor.pool.pools import iofs_root
    from executor.runtime import Executor

    with tempfile.TemporaryDirectory(prefix="executor-run-") as tmp:
        overrides: dict[str, Any] = {"db": Path(tmp) / "run.db", "data_dir": Path(tmp),
                                     "call_records": True, "pull_timeout": 0}  # fmt: skip
        if os.geteuid() != 0:
            overrides["iofs_tmpfs"] = False  # mounting a tmpfs needs root
        settings = Settings(**overrides)
        own_folder: Path | None = None
        async with Executor(settings) as executor:
            registry = executor.registry
            await registry.create_app({"name": "local"})
            payload = ff.route_payload()
            payload["config"] = {**payload.get("config", {}), **(env or {})}
            payload.update(type="sync", min_warm=0)
            await registry.put_route("local", ff.route_path, payload)

            async def call(body: bytes) -> Answer:
                route, params = registry.match("local", ff.route_path)
                the_call = Call(app=registry.app("local"), route=route, method="POST",
                                url=f"http://localhost/r/local{ff.route_path}",
                                headers=[("Content-Type", "application/json")], body=body,
                                params=params)  # fmt: skip
                try:
                    response = await executor.invoker.invoke(the_call)
                except ExecutorError as exc:
                    return Answer(exc.status, exc.message.encode() + b"\n", the_call.log)
                body = response.body
                if response.rest is not None:
                    async for part in response.rest:
                        body += part
                return Answer(response.status, body, the_call.log)

            try:
                yield call
            finally:
                await executor.drain(0)
                own_folder = iofs_root(settings, executor.store.group_id)
        # This executor's group is thrown away with its store: so is its iofs folder (the
        # launcher's copy, kept there for a group's next start).
        if own_folder is not None:
            shutil.rmtree(own_folder, ignore_errors=True)


async def run_once(ff: FuncFile, body: bytes, env: dict[str, str]) -> Answer:
    async with local_executor(ff, env) as call:
        return await call(body)


@dataclass(frozen=True)
class TestResult:
    test: FuncTest
    passed: bool
    why: str  # what differed, when it failed


async def run_tests(ff: FuncFile, remote: Callable[[FuncTest], Any] | None = None
                    ) -> list[TestResult]:  # fmt: skip
    """func.yaml's tests, each its own call: on a local executor (each test's env in the
    route's config), or through `remote(test) -> Answer` (a deployed route)."""
    results = []
    if remote is not None:
        for test in ff.tests:
            results.append(_judge(test, await remote(test)))
        return results
    by_env: dict[tuple, list[FuncTest]] = {}
    for test in ff.tests:
        by_env.setdefault(tuple(sorted(test.env.items())), []).append(test)
    judged: dict[int, TestResult] = {}
    for env, tests in by_env.items():
        async with local_executor(ff, dict(env)) as call:
            for test in tests:
                judged[id(test)] = _judge(test, await call(test.input.encode()))
    return [judged[id(test)] for test in ff.tests]


def _judge(test: FuncTest, answer: Answer) -> TestResult:
    out = answer.body.decode(errors="replace")
    log = answer.log.decode(errors="replace")
    if test.out is None and answer.status >= 400:
        return TestResult(test, False, f"HTTP {answer.status}: {out.strip()}")
    if test.out is not None and out.strip() != test.out.strip():
        return TestResult(test, False, f"out: expected {test.out.strip()!r}, got {out.strip()!r}")
    if test.err is not None and test.err.strip() not in log:
        return TestResult(test, False, f"err: expected {test.err.strip()!r} in {log.strip()!r}")
    return TestResult(test, True, "")
