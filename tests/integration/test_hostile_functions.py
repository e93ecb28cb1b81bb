"""Hostile functions on the real engine: what they try, what they get, what the executor
keeps (README "Limits, isolation and faults")."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from executor.pool.pools import iofs_root
from executor.state import EXECUTOR
from tests.integration.conftest import Executor, running, settings_for
from tests.integration.test_invoke_hot import HOT, call, eventually, hot_containers, wait_pool


def iofs_mounts(ex: Executor) -> list[tuple[str, str, str]]:
    """(mount point, file system, options) of each mount under the executor's iofs root."""
    root = str(iofs_root(ex.app[EXECUTOR].settings, ex.group)) + "/"
    with open("/proc/self/mountinfo") as f:
        fields = [line.split() for line in f]
    return [
        (f[4], f[f.index("-") + 1], f[5] + "," + f[-1]) for f in fields if f[4].startswith(root)
    ]


def metric(text: str, name: str, **labels: str) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in want):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def metrics(ex: Executor) -> str:
    response = await ex.client.get("/metrics")
    return await response.text()


# -- the host's disk ---------------------------------------------------------------------


async def test_a_hot_function_fills_only_its_own_small_tmpfs(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    [(_, fs, options)] = iofs_mounts(executor)
    assert fs == "tmpfs"
    for flag in ("nosuid", "nodev", "noexec", "size=1024k"):
        assert flag in options, options
    response, body = await call(executor, "/hot", b"fill")
    assert response.status == 200, body
    assert int(body) <= 1024 * 1024  # of the 300 MiB it tried to write
    response, _ = await call(executor, "/hot")
    assert response.status == 200  # its socket still answers
    await executor.json("DELETE", "/v1/apps/t/routes/hot")
    await eventually(lambda: not iofs_mounts(executor))


async def test_a_missing_iofs_root_is_made_again(executor):
    await executor.route("/hot", HOT, format="http-stream", min_warm=0)
    root = iofs_root(executor.app[EXECUTOR].settings, executor.group)
    shutil.rmtree(root)
    response, body = await call(executor, "/hot")
    assert response.status == 200, body
    assert response.headers["Executor-Start"] == "fresh"


# -- the socket ----------------------------------------------------------------------------


async def test_a_socket_swapped_for_a_symlink_out_of_its_folder_is_never_followed(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    [first] = hot_containers(executor)
    for target in ("/var/run/docker.sock", "../other/phonylsnr.sock"):
        response, body = await call(executor, "/hot", f"relink {target}".encode())
        assert response.status == 200, body  # it answers, then swaps its socket
        response, body = await call(executor, "/hot")
        assert response.status == 502
        assert b"container removed: lsnr.sock is a symlink to" in body, body
        await wait_pool(executor, "/hot", idle=1)
    assert first not in hot_containers(executor)
    response, _ = await call(executor, "/hot")
    assert response.status == 200  # a new container serves


async def test_a_relative_symlink_to_its_own_socket_is_followed(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    response, _ = await call(executor, "/hot", b"relink phonylsnr.sock")
    assert response.status == 200
    response, _ = await call(executor, "/hot")
    assert response.status == 200
    assert response.headers["Executor-Start"] == "warm"  # the same container, reconnected


# -- output floods -------------------------------------------------------------------------


async def test_an_idle_hot_container_printing_without_end_is_read_at_its_budget(db: Path):
    rate = 256 * 1024
    settings = settings_for(db, output_burst=512 * 1024, output_rate=rate)
    async with running(settings) as ex:
        await ex.route("/hot", HOT, format="http-stream")
        await wait_pool(ex, "/hot", idle=1)
        cpu = os.times()
        response, _ = await call(ex, "/hot", b"yes 3")
        assert response.status == 200
        await asyncio.sleep(3)
        used = os.times()
        assert metric(await metrics(ex), "executor_container_events_total", event="output_flood")
        # Reading 3 s of `yes` at 256 KiB/s is little work: nowhere near a core.
        assert (used.user + used.system) - (cpu.user + cpu.system) < 1.5
        response, _ = await call(ex, "/hot")
        assert response.status == 200
        assert response.headers["Executor-Start"] == "warm"


async def test_a_timed_out_cold_call_flooding_its_log_keeps_the_log(executor):
    await executor.route("/flood", "executor-test/logflood", timeout=2)
    response, body = await call(executor, "/flood")
    assert response.status == 504, body
    call_id = response.headers["Fn-Call-Id"]
    log = (await executor.json("GET", f"/v1/calls/{call_id}/log"))["log"]["log"]
    assert log.startswith("flooding the log\nlog flood")
    assert "[log cut: over the limit]" in log or "bytes dropped" in log
    text = await metrics(executor)
    assert metric(text, "executor_container_events_total", event="output_flood") >= 1


# -- what a hot function answers -------------------------------------------------------------


async def test_response_headers_past_64_kib_are_refused_and_the_container_replaced(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    [first] = hot_containers(executor)
    response, body = await call(executor, "/hot", b"headers 100 1024")
    assert response.status == 502
    assert b"response headers over 64 KiB" in body, body
    await wait_pool(executor, "/hot", idle=1)
    assert first not in hot_containers(executor)
    response, _ = await call(executor, "/hot", b"headers 10 1")  # 10 KiB: fine
    assert response.status == 200
    assert response.headers["X-Big-9"] == "v" * 1024


async def test_an_informational_fn_http_status_is_a_bad_answer(executor):
    await executor.route("/hot", HOT, format="http-stream")
    await wait_pool(executor, "/hot", idle=1)
    for status in (b"100", b"101", b"199", b"600"):
        response, body = await call(executor, "/hot", b"fnstatus " + status)
        assert response.status == 502, (status, body)
        assert b"invalid Fn-Http-Status" in body
    response, body = await call(executor, "/hot", b"fnstatus 201")
    assert (response.status, body) == (201, b"odd")


# -- processes and files -------------------------------------------------------------------


async def test_containers_at_once_are_bounded_and_an_idle_one_makes_room(db: Path):
    async with running(settings_for(db, max_host_containers=1)) as ex:
        await ex.route("/hot", HOT, format="http-stream", min_warm=1)
        await wait_pool(ex, "/hot", idle=1)
        await ex.route("/cold", "executor-test/echo", app="t")
        response, body = await call(ex, "/cold", b"hi")
        assert response.status == 200, body  # the idle hot container was evicted for it
        await eventually(lambda: len(hot_containers(ex)) <= 1)
        text = await metrics(ex)
        assert metric(text, "executor_container_events_total", event="evicted") >= 1


def test_a_forkbomb_in_every_container_stays_well_below_the_hosts_pid_max():
    from executor.admission import host_container_limit
    from executor.config import Settings

    pids = Settings().pids_limit
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    assert host_container_limit(pids) * pids <= pid_max // 2
