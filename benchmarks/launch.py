"""Ways of serving one call in a container started before the call, measured on the engine
itself (no executor in between), interleaved call by call, for [prestart]'s choice:

- trailer: the container runs the launcher (images/launcher/launch.c), blocked on stdin;
  the call writes its environment header and body, ends stdin, and reads stdout and
  stderr until the launcher's trailers give the exit status. What the executor does.
- event: the same container, but the call reads to the attach stream's EOF and takes the
  exit status from the engine's `die` event (as a cold call does).
- wait: the same, the status from `POST /containers/{id}/wait`, asked before the call.
- exec: `docker exec` into a waiting container (`sleep`), the call's environment in the
  exec's Env: exec create, start (attached), stdin, stdout, exec inspect for the status.
- cold: create, attach, start, stdin, stdout, `die` event (the cold runner's steps).

Each pre-started container is created and started before its call's clock starts.

    python -m benchmarks.launch [--calls 40] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiodocker

from benchmarks import common
from benchmarks.common import machine, summary, table, write_result
from executor.docker import spec
from executor.docker.engine import DockerEngine, Stdio
from executor.docker.events import ContainerEvents
from executor.formats import default
from executor.pool.launcher import PACKAGED
from executor.tasks import TaskGroup

IMAGE = "executor/busybox:latest"
COMMAND = ["/bin/sh", "-c", 'read -r name; echo "Hello $name $FN_CALL_ID"']
LAUNCHER = "/.executor/launch"
WAYS = ("trailer", "event", "wait", "exec", "cold")
GROUP = "bench-launch-" + secrets.token_hex(3)


def body(*, command: list[str], stdin: bool = True, launcher: str | None) -> dict[str, Any]:
    labels = {"executor.managed": "true", "executor.group": GROUP, "executor.kind": "cold"}
    host: dict[str, Any] = {
        "NetworkMode": "none",
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "ReadonlyRootfs": True,
        "Memory": 128 * spec.MiB,
        "MemorySwap": 128 * spec.MiB,
        "LogConfig": {"Type": "none", "Config": {}},
    }
    config: dict[str, Any] = {
        "Image": IMAGE,
        "Cmd": command,
        "User": spec.NOBODY,
        "Labels": labels,
        "AttachStdin": stdin,
        "OpenStdin": stdin,
        "StdinOnce": stdin,
        "AttachStdout": True,
        "AttachStderr": True,
        "Env": ["FN_FORMAT=default"],
        "HostConfig": host,
    }
    if launcher is not None:
        config["Entrypoint"] = [LAUNCHER]
        host["Mounts"] = [
            {"Type": "bind", "Source": launcher, "Target": LAUNCHER, "ReadOnly": True}
        ]
    return config


async def read_all(stdio: Stdio) -> bytes:
    out = bytearray()
    while (chunk := await stdio.read()) is not None:
        if chunk[0] == 1:
            out += chunk[1]
    return bytes(out)


class Bench:
    def __init__(self, engine: DockerEngine, events: ContainerEvents, launcher: str) -> None:
        self.engine = engine
        self.events = events
        self.launcher = launcher
        self.docker = aiodocker.Docker()
        # The trailer way's steps: stdin written, the program's first output, its exit.
        self.steps: dict[str, list[float]] = {
            step: [] for step in ("write", "first output", "exit (trailers)")
        }

    async def prestarted(self) -> tuple[str, Stdio, asyncio.Future[int]]:
        cid = await self.engine.create(body(command=COMMAND, launcher=self.launcher))
        exited = self.events.expect_exit(cid)
        stdio = await self.engine.attach(cid)
        await self.engine.start(cid)
        return cid, stdio, exited

    async def launcher_way(self, status: str) -> Callable[[], Awaitable[float]]:
        cid, stdio, exited = await self.prestarted()
        waiting = None
        if status == "wait":
            waiting = asyncio.ensure_future(self.docker.containers.container(cid).wait())
        await asyncio.sleep(0.3)  # ready and blocked on stdin before the clock starts

        async def run() -> float:
            began = time.perf_counter()
            call_id = secrets.token_hex(8)
            nonce = secrets.token_bytes(default.NONCE_SIZE)
            stdio.send(default.launcher_header({"FN_CALL_ID": call_id}, nonce) + b"bench\n")
            stdio.end_input()
            output = default.Output(1 << 20, 1 << 20, nonce)
            written = time.perf_counter()
            if status == "trailer":
                first = None
                while output.exit_status is None and (chunk := await stdio.read()):
                    first = first or time.perf_counter()
                    output.add(*chunk)
                code = output.exit_status
                exited_at = time.perf_counter()
                self.steps["write"].append(written - began)
                self.steps["first output"].append((first or exited_at) - written)
                self.steps["exit (trailers)"].append(exited_at - (first or exited_at))
            else:
                while chunk := await stdio.read():
                    output.add(*chunk)
                if status == "event":
                    code = await exited
                else:
                    assert waiting is not None
                    code = (await waiting)["StatusCode"]
            took = time.perf_counter() - began
            out = output.body
            assert code == 0 and out == f"Hello bench {call_id}\n".encode(), (code, out)
            await stdio.close()
            await self.engine.remove(cid)
            return took

        return run

    async def exec_way(self) -> Callable[[], Awaitable[float]]:
        config = body(command=["sleep", "3600"], stdin=False, launcher=None)
        cid = await self.engine.create(config)
        await self.engine.start(cid)
        await asyncio.sleep(0.3)
        container = self.docker.containers.container(cid)

        async def run() -> float:
            began = time.perf_counter()
            call_id = secrets.token_hex(8)
            execution = await container.exec(
                COMMAND, stdin=True, stdout=True, stderr=True, environment=[f"FN_CALL_ID={call_id}"]
            )
            stream = execution.start(detach=False)
            await stream._init()
            await stream.write_in(b"bench\n")
            transport = stream._resp.connection.transport  # half-close, as DockerStdio does
            transport.write_eof()
            out = bytearray()
            while (message := await stream.read_out()) is not None:
                if message.stream == 1:
                    out += message.data
            code = (await execution.inspect())["ExitCode"]
            took = time.perf_counter() - began
            assert code == 0 and bytes(out) == f"Hello bench {call_id}\n".encode(), (code, out)
            await stream.close()
            await self.engine.remove(cid)
            return took

        return run

    async def cold_way(self) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            began = time.perf_counter()
            cid = await self.engine.create(body(command=COMMAND, launcher=None))
            exited = self.events.expect_exit(cid)
            stdio = await self.engine.attach(cid)
            await self.engine.start(cid)
            await stdio.write(b"bench\n")
            stdio.end_input()
            out = await read_all(stdio)
            code = await exited
            took = time.perf_counter() - began
            assert code == 0 and out.startswith(b"Hello bench "), (code, out)
            await stdio.close()
            await self.engine.remove(cid)
            return took

        return run

    async def prepare(self, way: str) -> Callable[[], Awaitable[float]]:
        if way in ("trailer", "event", "wait"):
            return await self.launcher_way(way)
        if way == "exec":
            return await self.exec_way()
        return await self.cold_way()


async def measure(calls: int, launcher: str) -> tuple[dict, dict]:
    work = TaskGroup("bench")
    engine = DockerEngine("unix:///var/run/docker.sock", work)
    events = ContainerEvents(engine, GROUP)
    watching = asyncio.create_task(events.run())
    await asyncio.sleep(0.2)
    bench = Bench(engine, events, launcher)
    samples: dict[str, list[float]] = {way: [] for way in WAYS}
    try:
        for _ in range(calls):
            order = list(WAYS)
            random.shuffle(order)
            for way in order:
                run = await bench.prepare(way)
                samples[way].append(await run())
    finally:
        for c in await engine.containers({"executor.group": GROUP}):
            with contextlib.suppress(Exception):
                await engine.remove(c["Id"])
        watching.cancel()
        await bench.docker.close()
        await engine.close()
        await work.close(1)
    return samples, bench.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--launcher", default=None, help="the launcher binary")
    parser.add_argument("--quick", action="store_true", help="2 calls of each way")
    parser.add_argument("--out", type=Path, default=common.RESULTS, help="where results go")
    args = parser.parse_args()
    common.RESULTS = args.out
    if args.quick:
        args.calls = 2
    launcher = args.launcher or str(PACKAGED)
    samples, steps = asyncio.run(measure(args.calls, launcher))
    rows = [["way", "n", "p50 ms", "p90 ms", "p99 ms", "p50 / trailer"]]
    results = {way: summary(values) for way, values in samples.items()}
    base = results["trailer"]["p50_ms"]
    for way in WAYS:
        s = results[way]
        ratio = s["p50_ms"] / base
        times = [f"{s[p]:.2f}" for p in ("p50_ms", "p90_ms", "p99_ms")]
        rows.append([way, str(s["n"]), *times, f"x{ratio:.2f}"])
    print(table(rows))
    step_rows = [["trailer step", "p50 ms", "p90 ms"]]
    breakdown = {step: summary(values) for step, values in steps.items()}
    for step, s in breakdown.items():
        step_rows.append([step, f"{s['p50_ms']:.3f}", f"{s['p90_ms']:.3f}"])
    print(table(step_rows))
    result = {"benchmark": "launch", "quick": args.quick, "machine": machine(),
              "calls": args.calls, "ways": results, "steps": breakdown}  # fmt: skip
    print(f"written: {write_result('launch', result)}")


if __name__ == "__main__":
    main()
