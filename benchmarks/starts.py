"""Start kinds, one call of each kind in turn, in shuffled order, so drift hits all alike.

`default` functions, served cold, pre-started and by `docker run --rm -i`: a Go hello as
IronFunctions' examples (examples/go-hello, FROM scratch) and the shell hello
(examples/hello, busybox):

- go-cold, sh-cold: a `default` route, a new container per call;
- go-prestarted, sh-prestarted: a `default` route with min_warm, a pre-started container;
- go-docker-cli, sh-docker-cli: `docker run --rm -i` with the executor's limits.

One function in all the rest (examples/hello-stream, which speaks both formats):

- cold: a `default` route, a new container per call;
- fresh: an `http-stream` route with no idle container (min_warm 0; the previous
  container has left after its 1 s idle_timeout), so the call waits for a start;
- warm: an `http-stream` route with a warm container;
- docker-cli: `docker run --rm -i` with the executor's limits and hardening;
- direct: the floor, POST /call straight to the socket of a container of the same image
  started by `docker run` (the warm container's own socket is held by the executor, and
  this function serves one connection at a time).

    python -m benchmarks.starts [--calls 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp

from benchmarks.cold import cli_args, docker_cli_call
from benchmarks.common import (
    executor_server,
    machine,
    put_json,
    summary,
    table,
    write_result,
)
from benchmarks.hot import direct_headers, wait_pool

IMAGE = "executor/hello-stream"
BODY = b'{"name": "bench"}'
EXPECTED = b"Hello bench!\n"
KINDS = ("cold", "fresh", "warm", "docker-cli", "direct")
# The `default` functions: (image, body, expected answer).
DEFAULT_FUNCTIONS = {
    "go": ("executor/go-hello", b'{"Name": "bench"}', b"Hello bench!\n"),
    "sh": ("executor/hello", BODY, EXPECTED),
}
DEFAULT_KINDS = tuple(
    f"{fn}-{kind}" for fn in DEFAULT_FUNCTIONS for kind in ("cold", "prestarted", "docker-cli")
)
ALL_KINDS = DEFAULT_KINDS + KINDS
# Pre-started containers kept per route: a used one's replacement takes a cold start's
# time, so one call of each kind per round always finds one ready.
PRESTARTED = 3


async def measure(url: str, calls: int, progress: Callable[[], None] | None = None) -> dict:
    put_json(f"{url}/v1/apps/starts/routes/cold", {"route": {"image": IMAGE}})
    hot = {"image": IMAGE, "format": "http-stream"}
    put_json(
        f"{url}/v1/apps/starts/routes/fresh", {"route": {**hot, "min_warm": 0, "idle_timeout": 1}}
    )
    put_json(
        f"{url}/v1/apps/starts/routes/warm", {"route": {**hot, "min_warm": 1, "max_containers": 1}}
    )
    for fn, (image, _, _) in DEFAULT_FUNCTIONS.items():
        put_json(f"{url}/v1/apps/starts/routes/{fn}-cold", {"route": {"image": image}})
        route = {"image": image, "min_warm": PRESTARTED, "max_containers": PRESTARTED}
        put_json(f"{url}/v1/apps/starts/routes/{fn}-prestarted", {"route": route})
    samples: dict[str, list[float]] = {kind: [] for kind in ALL_KINDS}
    with standalone_socket() as socket:
        return await _measure(url, calls, socket, samples, progress)


async def _measure(
    url: str,
    calls: int,
    socket: str,
    samples: dict[str, list[float]],
    progress: Callable[[], None] | None,
) -> dict:
    async with aiohttp.ClientSession() as session:
        await wait_pool(session, f"{url}/v1/apps/starts/routes/warm", 1)
        direct = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket))
        headers = direct_headers()

        async def through_executor(kind: str, data: bytes = BODY, expected=EXPECTED) -> None:
            async with session.post(f"{url}/r/starts/{kind}", data=data) as response:
                body = await response.read()
            assert response.status == 200 and body == expected, (response.status, body)
            start = {"prestarted": "warm"}.get(kind.split("-")[-1], kind.split("-")[-1])
            assert response.headers["Executor-Start"] == start, (kind, response.headers)

        async def straight_to_socket() -> None:
            async with direct.post("http://localhost/call", data=BODY, headers=headers) as r:
                assert r.status == 200 and await r.read() == EXPECTED

        run: dict[str, Callable[[], Awaitable[None]]] = {
            "cold": lambda: through_executor("cold"),
            "fresh": lambda: through_executor("fresh"),
            "warm": lambda: through_executor("warm"),
            "docker-cli": lambda: docker_cli_call(IMAGE),
            "direct": straight_to_socket,
        }
        for fn, (image, data, expected) in DEFAULT_FUNCTIONS.items():
            for kind in ("cold", "prestarted"):
                run[f"{fn}-{kind}"] = functools.partial(
                    through_executor, f"{fn}-{kind}", data, expected
                )
            run[f"{fn}-docker-cli"] = functools.partial(docker_cli_call, image, data, expected)
        try:
            for kind in ("warm", "direct"):  # first connections, out of the figures
                await run[kind]()
            for _ in range(calls):
                await wait_empty(session, f"{url}/v1/apps/starts/routes/fresh")
                for kind in random.sample(ALL_KINDS, len(ALL_KINDS)):
                    # The last pre-started call's replacement is ready: no call is measured
                    # beside another's background start.
                    for fn in DEFAULT_FUNCTIONS:
                        route = f"{url}/v1/apps/starts/routes/{fn}-prestarted"
                        await wait_pool(session, route, PRESTARTED)
                    started = time.perf_counter()
                    await run[kind]()
                    samples[kind].append(time.perf_counter() - started)
                if progress is not None:
                    progress()
        finally:
            await direct.close()
    return {kind: summary(values) | {"samples_s": values} for kind, values in samples.items()}


@contextlib.contextmanager
def standalone_socket() -> Iterator[str]:
    """The function's socket, in a container of its own (hardened as the executor does)."""
    folder = Path(tempfile.mkdtemp(prefix="exr-bench-", dir="/tmp"))
    folder.chmod(0o777)
    name = f"executor-bench-direct-{os.getpid()}"
    subprocess.run(
        [*cli_args(IMAGE)[:3], "-d", "--name", name, *cli_args(IMAGE)[4:-1],
         "-e", "FN_FORMAT=http-stream", "-e", "FN_LISTENER=unix:/tmp/iofs/lsnr.sock",
         "--mount", f"type=bind,source={folder},target=/tmp/iofs", IMAGE],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        socket = folder / "lsnr.sock"
        for _ in range(200):
            if socket.exists():
                break
            time.sleep(0.05)
        yield str(socket)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


async def wait_empty(session: aiohttp.ClientSession, url: str) -> None:
    """Until the route's pool has no container (the last fresh one left)."""
    for _ in range(200):
        async with session.get(url) as response:
            if not (await response.json())["route"]["pool"]["containers"]:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url}: the pool never emptied")


def report(results: dict) -> str:
    rows = [["start", "n", "p50 ms", "p90 ms", "p99 ms", "p50 / docker-cli"]]
    for kind in ALL_KINDS:
        r = results[kind]
        fn = kind.split("-")[0]
        baseline = results[f"{fn}-docker-cli" if fn in DEFAULT_FUNCTIONS else "docker-cli"]
        times = [f"{r[p]:.3f}" for p in ("p50_ms", "p90_ms", "p99_ms")]
        rows.append([kind, str(r["n"]), *times, f"x{r['p50_ms'] / baseline['p50_ms']:.3f}"])
    return table(rows)


def run(calls: int, progress: Callable[[], None] | None = None) -> dict:
    with executor_server(EXECUTOR_ACCESS_LOG="false") as url:
        results = asyncio.run(measure(url, calls, progress))
    return {"benchmark": "starts", "machine": machine(), "calls": calls, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="calls of each kind")
    parser.add_argument("--quick", action="store_true", help="3 calls of each kind")
    args = parser.parse_args()
    result = run(3 if args.quick else args.calls)
    print(report(result["results"]))
    print(f"written: {write_result('starts', result)}")


if __name__ == "__main__":
    main()
