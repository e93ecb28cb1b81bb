"""Container hardening, checked from inside the function's container (SPEC.md
"Containers"): what a function may and may not do, cold and hot alike."""

from __future__ import annotations

import json

from tests.integration.test_invoke_hot import HOT, call, hot_containers, inspect, wait_pool

PROBE = "executor-test/probe"
NO_CAPS = "0000000000000000"


async def probe(executor, path: str, **route) -> dict[str, str]:
    await executor.route(path, PROBE, **route)
    response, body = await call(executor, path)
    assert response.status == 200, body
    return dict(line.split("=", 1) for line in body.decode().splitlines())


async def test_a_function_runs_with_no_network_no_capabilities_and_a_read_only_root(executor):
    seen = await probe(executor, "/probe", memory=64, cpus=0.5, tmpfs_size=16)
    assert seen["net"] == "lo"  # network none: loopback only
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert seen[capabilities] == NO_CAPS, capabilities
    assert seen["NoNewPrivs"] == "1"
    assert seen["root_write"] == "refused"
    assert seen["tmp_write"] == "ok"
    assert seen["tmp_kib"] == str(16 * 1024)
    assert seen["pids_max"] == "128"  # EXECUTOR_PIDS_LIMIT
    assert seen["memory"] == str(64 * 1024 * 1024)
    assert seen["memory_swap"] in (str(64 * 1024 * 1024), "0", "max", "none")  # no swap
    assert seen["cpu"] == "50000 100000"  # cpus 0.5
    assert seen["id"] == "65534:65534"  # the image's user is root: the function is nobody
    assert seen["nofile"] == "1024"  # open files, as Lambda allows


async def test_a_route_may_relax_network_and_set_its_user(executor):
    seen = await probe(executor, "/bridge", network="bridge", user="1000:1000")
    assert "eth0" in seen["net"].split()
    assert seen["id"] == "1000:1000"
    assert seen["CapEff"] == NO_CAPS


async def test_hot_containers_are_hardened_the_same(executor):
    await executor.route("/hot", HOT, format="http-stream", memory=64)
    await wait_pool(executor, "/hot", idle=1)
    [container] = hot_containers(executor)
    config = json.loads(inspect(container, "{{json .HostConfig}}"))
    assert config["NetworkMode"] == "none"
    assert config["CapDrop"] == ["ALL"]
    assert config["SecurityOpt"] == ["no-new-privileges"]
    assert config["ReadonlyRootfs"] is True
    assert config["Memory"] == config["MemorySwap"] == 64 * 1024 * 1024
    assert config["PidsLimit"] == 128
    assert config["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]
    assert config["LogConfig"]["Type"] == "none"  # output is read through attach
