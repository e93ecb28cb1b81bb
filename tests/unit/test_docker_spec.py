from executor.docker.engine import ImageInfo
from executor.docker.spec import Identity, cold_container, container_user, labels
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
