"""Apps and routes through the HTTP API: CRUD, envelopes, and each validation error."""

import time

import pytest

from tests.integration.conftest import running, settings_for


async def test_root_and_health(executor):
    assert await executor.json("GET", "/") == {
        "name": "executor",
        "version": "0.1.0",
        "instance": executor.instance,
    }
    assert (await executor.json("GET", "/health/live"))["status"] == "live"
    assert (await executor.json("GET", "/health/ready"))["status"] == "ready"


async def test_app_crud(executor):
    created = await executor.json(
        "POST", "/v1/apps", {"app": {"name": "a1", "config": {"K": "v"}}}, 200
    )
    app = created["app"]
    assert app["name"] == "a1" and app["config"] == {"K": "v"}
    assert app["id"] and app["created_at"] == app["updated_at"]

    listed = await executor.json("GET", "/v1/apps")
    assert [a["name"] for a in listed["apps"]] == ["a1"]
    assert (await executor.json("GET", "/v1/apps/a1"))["app"] == app

    patched = (
        await executor.json("PATCH", "/v1/apps/a1", {"app": {"config": {"K": "", "N": "1"}}})
    )["app"]
    assert patched["config"] == {"N": "1"}
    assert patched["id"] == app["id"] and patched["created_at"] == app["created_at"]
    assert patched["updated_at"] >= app["updated_at"]

    await executor.json("DELETE", "/v1/apps/a1")
    await executor.json("GET", "/v1/apps/a1", status=404)


async def test_app_errors(executor):
    await executor.json("POST", "/v1/apps", {"app": {"name": "a1"}}, 200)
    dup = await executor.json("POST", "/v1/apps", {"app": {"name": "a1"}}, 409)
    assert "already exists" in dup["error"]["message"]
    bad = await executor.json("POST", "/v1/apps", {"app": {"name": "no/slash"}}, 400)
    assert "app.name" in bad["error"]["message"]
    unknown = await executor.json("POST", "/v1/apps", {"app": {"name": "x", "colour": 1}}, 400)
    assert unknown["error"]["message"] == "app: unknown field(s): colour"
    rename = await executor.json("PATCH", "/v1/apps/a1", {"app": {"name": "a2"}}, 400)
    assert "renamed" in rename["error"]["message"]
    missing = await executor.json("PATCH", "/v1/apps/nope", {"app": {}}, 404)
    assert "nope" in missing["error"]["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "got nothing"),
        (b"{not json", "invalid JSON"),
        (b"[]", '"app" field'),
        (b'{"apps": {}}', '"app" field'),
        (b'{"app": {"name": "x"}, "extra": 1}', "unknown field(s): extra"),
        (b'{"app": "x"}', "app: expected a JSON object"),
    ],
)
async def test_malformed_bodies(executor, body, needle):
    response = await executor.client.post("/v1/apps", data=body)
    assert response.status == 400
    assert needle in (await response.json())["error"]["message"]


async def test_route_crud(executor):
    await executor.json("POST", "/v1/apps", {"app": {"name": "a"}}, 200)
    created = await executor.json(
        "POST", "/v1/apps/a/routes", {"route": {"path": "/x/y", "image": "executor/hello"}}, 200
    )
    route = created["route"]
    assert route["path"] == "/x/y" and route["app_name"] == "a" and route["memory"] == 128
    dup = await executor.json(
        "POST", "/v1/apps/a/routes", {"route": {"path": "/x/y", "image": "executor/hello"}}, 409
    )
    assert "already exists" in dup["error"]["message"]

    assert (await executor.json("GET", "/v1/apps/a/routes/x/y"))["route"] == route
    assert [r["path"] for r in (await executor.json("GET", "/v1/apps/a/routes"))["routes"]] == [
        "/x/y"
    ]

    patched = await executor.json(
        "PATCH", "/v1/apps/a/routes/x/y", {"route": {"memory": 64, "config": {"A": "1"}}}
    )
    assert patched["route"]["memory"] == 64 and patched["route"]["config"] == {"A": "1"}
    assert patched["route"]["id"] == route["id"]

    # PUT replaces whole (unset fields back to defaults), and creates when missing.
    replaced = await executor.json(
        "PUT", "/v1/apps/a/routes/x/y", {"route": {"image": "executor/hello", "timeout": 5}}
    )
    assert replaced["route"]["memory"] == 128 and replaced["route"]["timeout"] == 5
    assert replaced["route"]["created_at"] == route["created_at"]
    await executor.json("PUT", "/v1/apps/a/routes/z", {"route": {"image": "executor/hello"}}, 201)

    # A GET's output may be sent back as is: read-only fields are ignored.
    await executor.json("PUT", "/v1/apps/a/routes/x/y", {"route": replaced["route"]})

    conflict = await executor.json("DELETE", "/v1/apps/a", status=409)
    assert "force" in conflict["error"]["message"]
    await executor.json("DELETE", "/v1/apps/a/routes/z")
    await executor.json("GET", "/v1/apps/a/routes/z", status=404)
    await executor.json("DELETE", "/v1/apps/a?force=true")
    await executor.json("GET", "/v1/apps/a/routes/x/y", status=404)


@pytest.mark.parametrize(
    ("route", "needle"),
    [
        ({"path": "/ok"}, "route.image: is required"),
        ({"path": "/../etc", "image": "executor/hello"}, "route.path"),
        ({"path": "/ok", "image": "executor/hello", "memory": 4}, "route.memory"),
        ({"path": "/ok", "image": "executor/hello", "timeout": 301}, "route.timeout"),
        (
            {"path": "/ok", "image": "executor/hello", "min_warm": 9, "max_containers": 8},
            "route.min_warm",
        ),
        ({"path": "/ok", "image": "executor/hello", "config": {"FN_X": "1"}}, "route.config"),
        ({"path": "/ok", "image": "executor/hello", "network": "host"}, "route.network"),
        ({"path": "/ok", "image": "executor/hello", "bogus": 1}, "unknown field(s): bogus"),
        ({"path": "/ok", "image": "executor-test/no-such-image"}, "executor-test/no-such-image"),
    ],
)
async def test_route_validation(executor, route, needle):
    await executor.json("POST", "/v1/apps", {"app": {"name": "a"}}, 200)
    data = await executor.json("POST", "/v1/apps/a/routes", {"route": route}, 400)
    assert needle in data["error"]["message"]


async def test_route_errors(executor):
    bad_app = await executor.json(
        "POST",
        "/v1/apps/bad%20name/routes",
        {"route": {"path": "/a", "image": "executor/hello"}},
        400,
    )
    assert "app.name" in bad_app["error"]["message"]
    await executor.json("POST", "/v1/apps", {"app": {"name": "a"}}, 200)
    await executor.json("GET", "/v1/apps/a/routes/nope", status=404)
    await executor.json("PATCH", "/v1/apps/a/routes/nope", {"route": {}}, 404)
    await executor.json("DELETE", "/v1/apps/a/routes/nope", status=404)
    await executor.route("/r", "executor/hello", app="a")
    moved = await executor.json("PATCH", "/v1/apps/a/routes/r", {"route": {"path": "/s"}}, 400)
    assert "route.path" in moved["error"]["message"]
    mismatch = await executor.json(
        "PUT", "/v1/apps/a/routes/r", {"route": {"path": "/s", "image": "executor/hello"}}, 400
    )
    assert "route.path" in mismatch["error"]["message"]


async def test_saving_a_route_creates_its_missing_app(executor):
    # As IronFunctions: POST or PUT of a route under a missing app creates the app.
    await executor.json(
        "POST", "/v1/apps/new1/routes", {"route": {"path": "/a", "image": "executor/hello"}}, 200
    )
    await executor.json(
        "PUT", "/v1/apps/new2/routes/a", {"route": {"image": "executor/hello"}}, 201
    )
    assert [a["name"] for a in (await executor.json("GET", "/v1/apps"))["apps"]] == ["new1", "new2"]
    # ...but not when the route itself is refused.
    await executor.json("PUT", "/v1/apps/new3/routes/a", {"route": {"image": "no/such"}}, 400)
    await executor.json("GET", "/v1/apps/new3", status=404)


async def test_unknown_paths_and_methods(executor):
    assert (await executor.json("GET", "/v2/nothing", status=404))["error"][
        "message"
    ] == "not found"
    response = await executor.client.delete("/v1/apps")
    assert response.status == 405
    assert "DELETE" in (await response.json())["error"]["message"]
    assert "GET" in response.headers["Allow"]


async def test_a_route_with_an_image_the_engine_lacks_is_400_after_a_pull_is_tried(executor):
    await executor.json("POST", "/v1/apps", {"app": {"name": "a"}}, 200)
    route = {"route": {"image": "executor-test/does-not-exist"}}
    error = await executor.json("PUT", "/v1/apps/a/routes/x", route, status=400)
    message = error["error"]["message"]
    assert "'executor-test/does-not-exist' is not on the Docker engine" in message
    assert "pulling it" in message  # no registry answers here


async def test_the_pull_of_a_missing_image_is_bounded_in_time(db):
    async with running(settings_for(db, pull_timeout=1.0)) as ex:
        await ex.json("POST", "/v1/apps", {"app": {"name": "a"}}, 200)
        # TEST-NET-1: nothing answers there (a timeout, or an unreachable network at once).
        route = {"route": {"image": "192.0.2.1:5000/nothing:latest"}}
        started = time.monotonic()
        error = await ex.json("PUT", "/v1/apps/a/routes/x", route, status=400)
        assert time.monotonic() - started < 3
        assert "192.0.2.1:5000/nothing:latest" in error["error"]["message"]


HELLO = {"route": {"image": "executor/hello"}}
ROUTES = "/v1/apps/a/routes/"


def hello(**fields) -> dict:
    return {"route": {"image": "executor/hello", **fields}}


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "needle"),
    [
        ("POST", "/v1/apps", {"app": {"name": "x" * 31}}, 400, "app.name"),
        ("POST", "/v1/apps", {"app": {"name": "a\\b"}}, 400, "app.name"),
        ("POST", "/v1/apps", {"app": {"name": "a\u0000b"}}, 400, "app.name"),
        ("POST", "/v1/apps", {"app": {"name": ".."}}, 400, "app.name"),
        ("POST", "/v1/apps", {"app": {"name": "ok\n"}}, 400, "app.name"),  # $ before \n
        ("POST", "/v1/apps", {"app": {"name": "ok", "config": {"A\n": "1"}}}, 400, "config"),
        ("POST", "/v1/apps", {"app": {"name": 7}}, 400, "app.name"),
        ("POST", "/v1/apps", {"app": {"name": "ok", "config": {"A": 1}}}, 400, "app.config"),
        # Normalised to /v1/apps/a/etc on the way (dot segments): outside any route.
        ("PUT", ROUTES + "%2e%2e/etc", HELLO, 404, "not found"),
        ("PUT", ROUTES + "x%00y", HELLO, 400, "path"),
        ("PUT", ROUTES + "x%5Cy", HELLO, 400, "path"),
        ("PUT", ROUTES + "p" * 300, HELLO, 400, "path"),
        ("PUT", ROUTES + "x", hello(memory=10**30), 400, "memory"),
        ("PUT", ROUTES + "x", hello(timeout="5"), 400, "timeout"),
        ("PUT", ROUTES + "x", hello(cpus=True), 400, "cpus"),
        ("PUT", ROUTES + "x", {"route": {"image": ["x"]}}, 400, "image"),
        ("PUT", ROUTES + "x", {"route": []}, 400, "route"),
        ("PUT", ROUTES + "x", {"route": {"image": "executor/hello\n"}}, 400, "image"),
        ("PUT", ROUTES + "x", "just a string", 400, "route"),
    ],
)
async def test_bad_input_is_4xx_naming_the_problem(executor, method, url, body, status, needle):
    await executor.json("POST", "/v1/apps", {"app": {"name": "a"}}, 200)
    response = await executor.client.request(method, url, json=body)
    data = await response.json()
    assert response.status == status, data
    assert needle in data["error"]["message"], data


async def test_unknown_methods_and_junk_bodies_are_4xx(executor):
    response = await executor.client.request("BREW", "/v1/apps")
    assert response.status in (400, 405)
    for junk in (b"\xff\xfe", b"{", b"[" * 10000, b'{"app": ' * 1000):
        response = await executor.client.post("/v1/apps", data=junk)
        assert response.status == 400, junk[:10]
        assert "request body" in (await response.json())["error"]["message"]


async def test_idle_timeout_takes_seconds_or_auto(executor):
    route = await executor.route("/auto", "executor/hello-stream", format="http-stream",
                                 idle_timeout="auto")  # fmt: skip
    assert route["idle_timeout"] == "auto"
    shown = await executor.json("GET", "/v1/apps/t/routes/auto")
    assert shown["route"]["idle_timeout"] == "auto"
    bad = {"route": {"path": "/bad", "image": "executor/hello", "idle_timeout": "soon"}}
    error = await executor.json("POST", "/v1/apps/t/routes", bad, 400)
    assert "route.idle_timeout" in error["error"]["message"]
