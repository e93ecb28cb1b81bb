import pytest

from executor.config import Settings
from executor.errors import InvalidInput
from executor.models import parse_app, parse_route

S = Settings()


def route(**fields):
    return parse_route({"path": "/hello", "image": "executor/hello", **fields}, S)


def rejects(fields, *needles, parse=route):
    with pytest.raises(InvalidInput) as info:
        parse(**fields) if parse is route else parse(fields, S)
    for needle in needles:
        assert needle in info.value.message, info.value.message
    return info.value.message


def test_route_defaults():
    r = route()
    assert (r.format, r.type, r.memory, r.timeout, r.idle_timeout) == (
        "default",
        "sync",
        128,
        30,
        30,
    )
    assert (r.min_warm, r.max_containers, r.network, r.tmpfs_size, r.auth) == (
        0,
        8,
        "none",
        64,
        "none",
    )
    assert r.cpus is None and r.user is None and r.config == {} and r.headers == {}


def test_min_warm_defaults_to_one_for_http_stream():
    assert route(format="http-stream").min_warm == 1


def test_header_values_become_lists_and_cpus_may_be_whole():
    r = route(headers={"X-One": "a", "X-Two": ["b", "c"]}, cpus=1)
    assert r.headers == {"X-One": ["a"], "X-Two": ["b", "c"]}
    assert r.cpus == 1.0


def test_read_only_fields_are_ignored():
    r = route(id="x", app_name="other", created_at="t", updated_at="t", pool={})
    assert r.path == "/hello"


@pytest.mark.parametrize(
    ("fields", "needles"),
    [
        ({"path": "hello"}, ["route.path"]),
        ({"path": "/a/../b"}, ["route.path"]),
        ({"path": "/."}, ["route.path"]),
        ({"path": "/a b"}, ["route.path"]),
        ({"path": "/" + "a" * 255}, ["route.path", "255"]),
        ({"path": 7}, ["route.path", "string"]),
        ({"image": ""}, ["route.image"]),
        ({"image": "bad image"}, ["route.image"]),
        ({"format": "json"}, ["route.format"]),
        ({"type": "later"}, ["route.type"]),
        ({"memory": 4}, ["route.memory", "8", "8192"]),
        ({"memory": 9000}, ["route.memory"]),
        ({"memory": "128"}, ["route.memory", "integer"]),
        ({"memory": True}, ["route.memory"]),
        ({"memory": 1.5}, ["route.memory"]),
        ({"cpus": 0}, ["route.cpus"]),
        ({"cpus": 1000}, ["route.cpus"]),
        ({"timeout": 0}, ["route.timeout"]),
        ({"timeout": 301}, ["route.timeout", "300"]),
        ({"idle_timeout": 3601}, ["route.idle_timeout"]),
        ({"max_containers": 0}, ["route.max_containers"]),
        ({"format": "http-stream", "min_warm": 9}, ["route.min_warm"]),
        ({"config": {"a-b": "x"}}, ["route.config", "a-b"]),
        ({"config": {"key": "x", "KEY": "y"}}, ["route.config", "one variable (KEY)"]),
        ({"config": {"FN_APP_NAME": "x"}}, ["route.config", "reserved"]),
        ({"config": {"fn_app_name": "x"}}, ["route.config", "reserved"]),
        ({"path": "/users/:id/:id"}, ["route.path", "twice"]),
        ({"path": "/users/:"}, ["route.path"]),
        ({"path": "/users/:1d"}, ["route.path"]),
        ({"max_concurrency": 2, "max_containers": 3}, ["max_concurrency and max_containers"]),
        ({"jwt_key": ""}, ["route.jwt_key"]),
        ({"jwt_key": "********"}, ["route.jwt_key", "already set"]),
        ({"config": {"A": 1}}, ["route.config.A"]),
        ({"config": {"A": "x\x00y"}}, ["route.config.A"]),
        ({"headers": {"Bad Name": "x"}}, ["route.headers"]),
        ({"headers": {"X-A": "a\r\nb"}}, ["route.headers.X-A"]),
        ({"headers": {"Content-Length": "0"}}, ["route.headers", "frames the response"]),
        ({"headers": {"Transfer-Encoding": "chunked"}}, ["route.headers", "frames"]),
        ({"headers": {"connection": "close"}}, ["route.headers", "frames"]),
        ({"network": "host"}, ["route.network"]),
        ({"user": "a b"}, ["route.user"]),
        ({"tmpfs_size": 0}, ["route.tmpfs_size"]),
        ({"auth": "basic"}, ["route.auth"]),
        ({"retries": 2}, ["route.retries", "async"]),
        ({"retries": -1}, ["route.retries"]),
        ({"colour": "red", "size": 1}, ["unknown field(s): colour, size"]),
    ],
)
def test_route_rejects(fields, needles):
    rejects(fields, *needles)


def test_route_path_and_image_are_required():
    rejects({}, "route.image: is required", parse=lambda f, s: parse_route({"path": "/a"}, s))
    rejects({}, "route.path: is required", parse=lambda f, s: parse_route({"image": "x"}, s))
    rejects({}, "expected a JSON object", parse=lambda f, s: parse_route([1], s))


def test_async_routes_take_longer_timeouts_and_retries():
    r = route(type="async", timeout=3600, retries=3)
    assert (r.timeout, r.retries) == (3600, 3)


def test_bounds_come_from_settings():
    tight = Settings(memory_max=256)
    with pytest.raises(InvalidInput, match=r"route\.memory"):
        parse_route({"path": "/a", "image": "x", "memory": 512}, tight)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"name": ""}, "app.name"),
        ({"name": "a" * 31}, "app.name"),
        ({"name": "../x"}, "app.name"),
        ({"name": "a\x00"}, "app.name"),
        ({"name": 5}, "app.name"),
        ({}, "app.name: is required"),
        ({"name": "ok", "config": {"fn_x": "1"}}, "app.config"),
        ({"name": "ok", "routes": []}, "unknown field(s): routes"),
    ],
)
def test_app_rejects(payload, needle):
    with pytest.raises(InvalidInput) as info:
        parse_app(payload, S)
    assert needle in info.value.message


def test_app_accepts_its_own_output():
    app = parse_app({"name": "my-app_1", "config": {"A_B": "c"}, "id": "x", "created_at": "t"}, S)
    assert app.name == "my-app_1" and app.config == {"A_B": "c"}
