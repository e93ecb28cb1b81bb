"""The same cold call measured three ways, interleaved in blocks so drift hits all alike.

- executor: POST /r/bench/hello to an `executor serve` process on loopback;
- docker-cli: `docker run --rm -i` with the same limits and hardening;
- raw-api: the floor, a minimal create / attach / start / wait over the engine's socket
  with the same container body the executor sends (removal after the clock stops).

    python -m benchmarks.cold [--calls 60] [--block 5] [--warmup 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import struct
import time
from collections.abc import Awaitable, Callable

import aiohttp

from benchmarks.common import executor_server, machine, put_json, summary, table, write_result
from executor.docker.engine import ImageInfo
from executor.docker.spec import Identity, cold_container
from executor.models import App, Route

IMAGE = "executor/hello"
BODY = b'{"name": "bench"}'
EXPECTED = b"Hello bench!\n"
DOCKER_SOCKET = "/var/run/docker.sock"
API = "/v1.41"
BENCH_GROUP = "benchmark-raw-api"


async def executor_call(session: aiohttp.ClientSession, url: str) -> None:
    async with session.post(f"{url}/r/bench/hello", data=BODY) as response:
        body = await response.read()
    assert response.status == 200 and body == EXPECTED, (response.status, body)


def cli_args(image: str = IMAGE) -> list[str]:
    # The same limits and hardening as the executor's container (executor/docker/spec.py).
    return [
        "docker", "run", "--rm", "-i", "--network", "none", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--read-only",
        "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m,mode=1777", "--pids-limit", "256",
        "--memory", "128m", "--memory-swap", "128m", "--user", "65534:65534",
        "--log-driver", "none", image,
    ]  # fmt: skip


async def docker_cli_call(
    image: str = IMAGE, body: bytes = BODY, expected: bytes = EXPECTED
) -> None:
    process = await asyncio.create_subprocess_exec(
        *cli_args(image), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate(body)
    assert process.returncode == 0 and out == expected, (process.returncode, out)


def raw_config() -> dict:
    """The body the executor would send for this call."""
    stamp = "2026-01-01T00:00:00Z"
    app = App(name="bench", config={}, id="a", created_at=stamp, updated_at=stamp)
    route = Route(path="/hello", image=IMAGE, id="r", app_name="bench", created_at=stamp,
                  updated_at=stamp)  # fmt: skip
    env = {"FN_APP_NAME": "bench", "FN_PATH": "/hello", "FN_FORMAT": "default"}
    return cold_container(
        identity=Identity(group=BENCH_GROUP, instance="raw"),
        app=app,
        route=route,
        image=ImageInfo(id="", user=""),
        call_id="raw",
        env=env,
        pids_limit=256,
    )


class RawApi:
    """The floor: plain HTTP on the engine's socket, nothing the call does not need."""

    def __init__(self) -> None:
        connector = aiohttp.UnixConnector(path=DOCKER_SOCKET, limit=0)
        self.session = aiohttp.ClientSession(connector=connector)
        self.config = json.dumps(raw_config()).encode()
        self.to_remove: list[str] = []

    async def call(self) -> None:
        base = f"http://docker{API}/containers"
        headers = {"Content-Type": "application/json"}
        async with self.session.post(f"{base}/create", data=self.config, headers=headers) as r:
            container_id = (await r.json())["Id"]
        self.to_remove.append(container_id)
        reader, writer = await asyncio.open_unix_connection(DOCKER_SOCKET)
        writer.write(
            f"POST {API}/containers/{container_id}/attach?stream=1&stdin=1&stdout=1&stderr=1 "
            "HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
        )
        await reader.readuntil(b"\r\n\r\n")  # 101 UPGRADED
        async with self.session.post(f"{base}/{container_id}/start") as r:
            assert r.status == 204, await r.text()
        writer.write(BODY)
        writer.write_eof()
        out = bytearray()
        while True:
            try:
                header = await reader.readexactly(8)
            except asyncio.IncompleteReadError:
                break
            stream, size = struct.unpack(">BxxxL", header)
            data = await reader.readexactly(size)
            if stream == 1:
                out += data
        writer.close()
        async with self.session.post(f"{base}/{container_id}/wait") as r:
            status = (await r.json())["StatusCode"]
        assert status == 0 and bytes(out) == EXPECTED, (status, out)

    async def remove_all(self) -> None:
        for container_id in self.to_remove:
            async with self.session.delete(f"http://docker{API}/containers/{container_id}?force=1"):
                pass
        self.to_remove.clear()

    async def close(self) -> None:
        await self.remove_all()
        await self.session.close()


async def measure(calls: int, block: int, warmup: int, url: str) -> dict[str, list[float]]:
    raw = RawApi()
    async with aiohttp.ClientSession() as session:
        targets: dict[str, Callable[[], Awaitable[None]]] = {
            "executor": lambda: executor_call(session, url),
            "docker-cli": docker_cli_call,
            "raw-api": raw.call,
        }
        try:
            for run in targets.values():
                for _ in range(warmup):
                    await run()
            await raw.remove_all()
            samples: dict[str, list[float]] = {name: [] for name in targets}
            order = list(targets)
            blocks = (calls + block - 1) // block
            for index in range(blocks):
                random.shuffle(order)
                for name in order:
                    for _ in range(block):
                        started = time.perf_counter()
                        await targets[name]()
                        samples[name].append(time.perf_counter() - started)
                    # The floor's removals are not part of its call: do them between blocks.
                    await raw.remove_all()
                    await asyncio.sleep(0.3)  # let the executor's background removals settle
                print(f"\r  block {index + 1}/{blocks}", end="", flush=True)
            print()
            return samples
        finally:
            await raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=60, help="measured calls per target")
    parser.add_argument("--block", type=int, default=5, help="calls per target per block")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10 calls each, 1 warm-up")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.warmup = 10, 1

    with executor_server() as url:
        put_json(f"{url}/v1/apps", {"app": {"name": "bench"}}, method="POST")
        put_json(f"{url}/v1/apps/bench/routes/hello", {"route": {"image": IMAGE}})
        print(f"cold calls: {args.calls} per target, blocks of {args.block}, interleaved")
        samples = asyncio.run(measure(args.calls, args.block, args.warmup, url))

    results = {name: summary(values) for name, values in samples.items()}
    floor = results["raw-api"]["p50_ms"]
    rows = [["target", "n", "p50 ms", "p90 ms", "p99 ms", "p50 / raw-api"]]
    for name, r in results.items():
        rows.append([name, str(r["n"]), f"{r['p50_ms']:.1f}", f"{r['p90_ms']:.1f}",
                     f"{r['p99_ms']:.1f}", f"{r['p50_ms'] / floor:.3f}"])  # fmt: skip
    print(table(rows))
    path = write_result(
        "cold",
        {
            "benchmark": "cold",
            "machine": machine(),
            "params": vars(args),
            "results": results,
            "ratios_p50": {name: r["p50_ms"] / floor for name, r in results.items()},
        },
    )
    print(f"written {path.relative_to(path.parent.parent.parent)}")


if __name__ == "__main__":
    main()
