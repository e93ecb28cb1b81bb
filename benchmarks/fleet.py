"""Route affinity through HAProxy (deploy/haproxy.cfg) to three executors sharing a
PostgreSQL store: plain consistent hashing against bounded-load consistent hashing
(`hash-balance-factor 125`), rounds interleaved, on loopback.

A skewed load: a closed loop of callers, each call to one of 40 hot routes drawn from a
Zipf law (s = 1.25: the first route carries a third of the calls), each call working
20 ms in its function. Per setting: calls per node (max / mean), the warm share, p50 and
p99, and the same once one node is killed (`kill -9`) halfway through. Each round starts
with a warm-up (not counted) that starts the pools a steady load keeps.

    python -m benchmarks.fleet [--seconds 15] [--warmup 20] [--rounds 2] [--concurrency 24]
                               [--quick]
                               [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks import common
from benchmarks.common import (
    executor_process,
    free_port,
    get_json,
    put_json,
    summary,
    table,
)
from executor.config import Settings
from executor.pool import iofs
from executor.pool.pools import iofs_root
from tests.postgres import Cluster, binaries

# A Go function in IronFunctions' `http` hot format (tests/functions/gohttp): a start costs
# milliseconds of CPU, so 40 routes warming up on 2 cores do not time out their starts.
IMAGE = "executor-test/gohttp"
ROUTES = 40
ZIPF_S = 1.25  # the first of 40 routes: 33% of the calls
WORK_S = 0.02
NODES = 3
CONFIG = common.ROOT / "deploy" / "haproxy.cfg"
SETTINGS = ("consistent", "bounded")
HAPROXY = shutil.which("haproxy") or next(
    (path for path in ("/usr/sbin/haproxy",) if Path(path).exists()), None
)


def haproxy_config(nodes: list[str], port: int, bounded: bool) -> str:
    """deploy/haproxy.cfg for nodes on loopback: its `server-template` (compose's DNS)
    replaced by one `server` line per node, its binds on loopback, and, for the plain
    consistent hashing it is compared with, without its `hash-balance-factor`."""
    text = CONFIG.read_text()
    text = re.sub(r"\nresolvers docker\n(    .*\n)+", "\n", text)
    servers = "".join(
        f"    server node{i} {url.removeprefix('http://')} check\n" for i, url in enumerate(nodes)
    )
    text = re.sub(r"    server-template .*\n", servers, text)
    text = text.replace("bind :8080", f"bind 127.0.0.1:{port}")
    text = text.replace("bind :8404", f"bind 127.0.0.1:{free_port()}")
    text = text.replace("log stdout format raw local0 notice", "log stdout format raw local0 err")
    if not bounded:
        text = re.sub(r"    hash-balance-factor .*\n", "", text)
    assert not re.search(r"^(resolvers| +server-template)", text, re.M), (
        "deploy/haproxy.cfg changed"
    )
    return text


@contextlib.contextmanager
def haproxy(nodes: list[str], bounded: bool):
    port = free_port()
    text = haproxy_config(nodes, port, bounded)
    folder = Path(tempfile.mkdtemp(prefix="executor-haproxy-"))
    config = folder / "haproxy.cfg"
    config.write_text(text)
    process = subprocess.Popen([HAPROXY, "-W", "-db", "-f", str(config)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                get_json(f"{url}/health/ready")
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("haproxy did not start")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)  # Executor-Wait-Ms, in seconds
    nodes: Counter = field(default_factory=Counter)
    starts: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    errors: dict[int, str] = field(default_factory=dict)  # a body of each error status

    def result(self, nodes: int, seconds: float) -> dict:
        counts = [self.nodes.get(name, 0) for name in sorted(self.nodes)][:nodes]
        counts += [0] * (nodes - len(counts))
        mean = sum(counts) / nodes
        answered = sum(self.starts.values())
        return {
            **summary(self.latencies),
            "wait_p99_ms": summary(self.waits)["p99_ms"] if self.waits else 0.0,
            "calls_per_s": len(self.latencies) / seconds,
            "per_node": counts,
            "max_over_mean": max(counts) / mean if mean else 0.0,
            "warm_share": self.starts.get("warm", 0) / answered if answered else 0.0,
            "starts": dict(self.starts),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "errors": {str(k): v for k, v in self.errors.items()},
        }


async def load(url: str, seconds: float, concurrency: int, phase: Phase, seed: int) -> None:
    weights = [1 / k**ZIPF_S for k in range(1, ROUTES + 1)]
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    body = f"sleep {WORK_S}".encode()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def caller() -> None:
            while time.monotonic() < deadline:
                route = rng.choices(range(ROUTES), weights)[0]
                began = time.perf_counter()
                try:
                    async with http.post(f"{url}/r/fleet/f{route:02}", data=body) as r:
                        answer = await r.read()
                        status = r.status
                        if status != 200:
                            phase.errors.setdefault(status, answer.decode(errors="replace")[:200])
                        node = r.headers.get("Executor-Instance")
                        start = r.headers.get("Executor-Start")
                        wait = r.headers.get("Executor-Wait-Ms", "0")
                except aiohttp.ClientError:
                    status, node, start, wait = 0, None, None, "0"
                phase.statuses[status] += 1
                if status == 200:
                    phase.latencies.append(time.perf_counter() - began)
                    phase.waits.append(float(wait) / 1000)
                    phase.nodes[node] += 1
                    phase.starts[start] += 1

        await asyncio.gather(*(caller() for _ in range(concurrency)))


def one_round(cluster: Cluster, bounded: bool, args: argparse.Namespace, seed: int) -> dict:
    db = cluster.url(cluster.create_database())
    quiet = {"EXECUTOR_ACCESS_LOG": "false", "EXECUTOR_MEMORY_BUDGET": "6144"}
    with contextlib.ExitStack() as stack:
        nodes = [stack.enter_context(executor_process(db, **quiet)) for _ in range(NODES)]
        urls = [url for url, _ in nodes]
        instances = [get_json(f"{url}/")["instance"] for url in urls]
        stack.callback(remove_left_behind, instances)
        put_json(f"{urls[0]}/v1/apps", {"app": {"name": "fleet"}}, method="POST")
        route = {"image": IMAGE, "format": "http", "memory": 32, "min_warm": 0,
                 "max_containers": args.max_containers, "idle_timeout": 600}  # fmt: skip
        for n in range(ROUTES):
            put_json(f"{urls[0]}/v1/apps/fleet/routes/f{n:02}", {"route": route})
        time.sleep(1)  # every node has heard of the routes
        lb = stack.enter_context(haproxy(urls, bounded))
        # A warm-up, not counted: the pools a steady load keeps are started.
        asyncio.run(load(lb, args.warmup, args.concurrency, Phase(), seed + 100))
        before, after = Phase(), Phase()
        asyncio.run(load(lb, args.seconds, args.concurrency, before, seed))
        # The node serving the most calls is killed; the load goes on on the others.
        busiest = max(range(NODES), key=lambda i: before.nodes.get(instances[i], 0))
        nodes[busiest][1].kill()
        nodes[busiest][1].wait()
        asyncio.run(load(lb, args.seconds, args.concurrency, after, seed + 1))
        return {"before": before.result(NODES, args.seconds),
                "after_kill": after.result(NODES - 1, args.seconds)}  # fmt: skip


def remove_left_behind(instances: list[str]) -> None:
    """What a node killed -9 left behind (the others removed theirs as they stopped): its
    containers, and its hot containers' iofs mounts and folders."""
    for instance in instances:
        listed = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label=executor.instance={instance}",
             "--format", '{{.ID}} {{.Label "executor.group"}}'],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        ids, groups = listed[0::2], set(listed[1::2])
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)
        for group in groups:
            iofs.clear(iofs_root(Settings(), group))


def run(args: argparse.Namespace) -> dict:
    if HAPROXY is None:
        raise SystemExit("HAProxy is not installed (apt-get install haproxy)")
    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    cluster = Cluster(bin_dir)
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    try:
        cluster.init()
        cluster.start()
        for n in range(args.rounds):
            for name in random.sample(SETTINGS, len(SETTINGS)):
                runs[name].append(one_round(cluster, name == "bounded", args, seed=n))
    finally:
        cluster.remove()
    return {name: {"median": medians(rs), "runs": rs} for name, rs in runs.items()}


def medians(rounds: list[dict]) -> dict:
    keys = ("calls_per_s", "max_over_mean", "warm_share", "p50_ms", "p99_ms", "wait_p99_ms", "n")
    return {
        phase: {k: statistics.median(r[phase][k] for r in rounds) for k in keys}
        | {"errors": sum(n for r in rounds for s, n in r[phase]["statuses"].items() if s != "200")}
        for phase in ("before", "after_kill")
    }


def report(results: dict) -> str:
    rows = [["setting", "phase", "calls/s", "max/mean", "warm share", "p50 ms", "p99 ms",
             "wait p99 ms", "errors"]]  # fmt: skip
    for name in SETTINGS:
        for phase, label in (("before", "3 nodes"), ("after_kill", "1 killed")):
            m = results[name]["median"][phase]
            rows.append([name, label, f"{m['calls_per_s']:.0f}", f"{m['max_over_mean']:.2f}",
                         f"{m['warm_share']:.1%}", f"{m['p50_ms']:.1f}", f"{m['p99_ms']:.1f}",
                         f"{m['wait_p99_ms']:.1f}", str(m["errors"])])  # fmt: skip
    b, c = results["bounded"]["median"]["before"], results["consistent"]["median"]["before"]
    ratios = (
        "bounded / consistent (3 nodes, medians): "
        f"max/mean x{b['max_over_mean'] / c['max_over_mean']:.2f}, "
        f"calls/s x{b['calls_per_s'] / c['calls_per_s']:.2f}, "
        f"p50 x{b['p50_ms'] / c['p50_ms']:.2f}, p99 x{b['p99_ms'] / c['p99_ms']:.2f}"
    )
    return "\n".join([table(rows), "", ratios])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="load per phase")
    parser.add_argument("--warmup", type=float, default=20.0, help="load before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per setting")
    parser.add_argument("--max-containers", type=int, default=4,
                        help="a route's containers on one node")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=24, help="callers at once")
    args = common.arguments(parser)
    if args.quick:
        args.seconds, args.warmup, args.rounds, args.concurrency = 2.0, 1.0, 1, 8
    results = run(args)
    settings = {"routes": ROUTES, "zipf_s": ZIPF_S, "work_s": WORK_S, "nodes": NODES,
                "seconds": args.seconds, "warmup": args.warmup, "rounds": args.rounds,
                "concurrency": args.concurrency,
                "max_containers": args.max_containers}  # fmt: skip
    common.publish("fleet", args, report(results), settings=settings, results=results)


if __name__ == "__main__":
    main()
