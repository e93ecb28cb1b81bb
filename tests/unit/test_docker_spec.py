from executor.docker.engine import ImageInfo
from executor.docker.spec import (
    Identity,
    cold_container,
    container_user,
    hot_container,
    labels,
    pool_key,
    prestart_container,
    with_iofs,
)
from executor.models import App, Route

IDENTITY = Identity(group="g1", instance="i1")
APP = App(name="demo", config={}, id="a", created_at="t", updated_at="t")


def make_route(**fields):
    base = {"path": "/hello", "image": "executor/hello", "id": "r", "app_name": "demo"}
    return Route(**base, created_at="t", updated_at="t", **fields)


ROOT_IMAGE = ImageInfo("sha256:x", "")


def build(route, image=ROOT_IMAGE):
    return cold_container(
        identity=IDENTITY,
        app=APP,
        route=route,
        image=image,
        call_id="C1",
        env={"FN_FORMAT": "default", "A": "b=c"},
        pids_limit=100,
    )


def test_labels_of_a_cold_container():
    assert build(make_route())["Labels"] == {
        "executor.managed": "true",
        "executor.group": "g1",
        "executor.instance": "i1",
        "executor.app": "demo",
        "executor.route": "/hello",
        "executor.kind": "cold",
        "executor.call": "C1",
    }
    assert "executor.call" not in labels(IDENTITY, "demo", "/x", "hot")


def test_cold_container_attaches_stdin_once():
    config = build(make_route())
    assert config["Image"] == "executor/hello"
    assert config["Env"] == ["FN_FORMAT=default", "A=b=c"]
    assert config["OpenStdin"] and config["StdinOnce"] and config["AttachStdin"]
    assert config["AttachStdout"] and config["AttachStderr"] and not config["Tty"]


def test_hardening_defaults():
    host = build(make_route())["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=64m,mode=1777"}
    assert host["PidsLimit"] == 100
    assert host["Memory"] == host["MemorySwap"] == 128 * 1024 * 1024
    assert host["LogConfig"]["Type"] == "none"
    assert "NanoCpus" not in host


def test_route_settings_reach_the_host_config():
    host = build(make_route(memory=64, cpus=0.5, network="bridge", tmpfs_size=16))["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 64 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["NetworkMode"] == "bridge"
    assert host["Tmpfs"]["/tmp"].startswith("rw,nosuid,nodev,size=16m")


def test_user_rule():
    assert container_user(make_route(), ImageInfo("i", "")) == "65534:65534"
    assert container_user(make_route(), ImageInfo("i", "root")) == "65534:65534"
    assert container_user(make_route(), ImageInfo("i", "0:0")) == "65534:65534"
    assert container_user(make_route(), ImageInfo("i", "app")) == "app"
    assert container_user(make_route(user="1000:1000"), ImageInfo("i", "app")) == "1000:1000"
    assert container_user(make_route(user="root"), ImageInfo("i", "")) == "root"


def hot(route, image=ROOT_IMAGE, env=None):
    return hot_container(
        identity=IDENTITY,
        app=APP,
        route=route,
        image=image,
        env=env or {"FN_FORMAT": "http-stream"},
        pids_limit=100,
    )


def test_a_hot_container_runs_the_image_id_without_stdin():
    body = hot(make_route(format="http-stream"))
    assert body["Image"] == "sha256:x"
    assert body["Labels"]["executor.kind"] == "hot"
    assert "executor.call" not in body["Labels"]
    assert body["AttachStdin"] is False and body["OpenStdin"] is False
    assert "Mounts" not in body["HostConfig"]
    with_bind = with_iofs(body, "/tmp/exr-x/abc", "/tmp/iofs")
    assert with_bind["HostConfig"]["Mounts"] == [
        {"Type": "bind", "Source": "/tmp/exr-x/abc", "Target": "/tmp/iofs"}
    ]
    assert "Mounts" not in body["HostConfig"]  # the pool's template is left alone


def test_the_pool_key_follows_the_container_not_the_pool_sizes():
    route = make_route(format="http-stream")
    key = pool_key(hot(route))
    same = make_route(format="http-stream", min_warm=3, max_containers=9, timeout=5)
    assert pool_key(hot(same)) == key
    assert pool_key(hot(make_route(format="http-stream", idle_timeout=99))) == key
    assert pool_key(hot(make_route(format="http-stream", memory=256))) != key
    assert pool_key(hot(route, image=ImageInfo("sha256:rebuilt", ""))) != key
    assert pool_key(hot(route, env={"FN_FORMAT": "http-stream", "A": "1"})) != key


def test_a_prestarted_container_runs_the_images_command_under_the_read_only_launcher():
    image = ImageInfo("sha256:x", "", command=("/bin/sh", "/func.sh"))
    body = prestart_container(
        identity=IDENTITY,
        app=APP,
        route=make_route(min_warm=2),
        image=image,
        env={"FN_FORMAT": "default"},
        pids_limit=100,
        launcher="/var/iofs/exr-1/launch",
    )
    assert body["Image"] == "sha256:x"
    assert body["Entrypoint"] == ["/.executor/launch"]
    assert body["Cmd"] == ["/bin/sh", "/func.sh"]
    assert body["OpenStdin"] and body["StdinOnce"] and body["AttachStdin"]
    assert body["Labels"]["executor.kind"] == "cold" and "executor.call" not in body["Labels"]
    host = body["HostConfig"]
    assert host["Mounts"] == [
        {
            "Type": "bind",
            "Source": "/var/iofs/exr-1/launch",
            "Target": "/.executor/launch",
            "ReadOnly": True,
        }
    ]
    assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
    assert host["PidsLimit"] == 101  # the launcher stays as the program's parent
