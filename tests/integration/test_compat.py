"""IronFunctions users' functions and habits on the real engine: its `http` hot format (a
Go function built the way its example is), its environment, route parameters, JWT
routes, `?payload=`, and the API's shape where it differs from Fn's."""

from __future__ import annotations

import time

import jwt
import orjson
import pytest

from tests.integration.conftest import Executor, running, settings_for
from tests.integration.test_invoke_hot import call, eventually, hot_containers, wait_pool

GO_HTTP = "executor/go-http"
GOHTTP = "executor-test/gohttp"
ENV = "executor-test/env"


async def test_a_go_http_function_answers_warm_calls_in_one_container(executor: Executor):
    await executor.route("/go", GO_HTTP, format="http", memory=32)
    await wait_pool(executor, "/go", idle=1)
    [container] = hot_containers(executor)
    answers = []
    for name in ("ada", "bob", "cy"):
        response, body = await call(executor, "/go", orjson.dumps({"name": name}))
        assert response.status == 200, body
        assert response.headers["Executor-Start"] == "warm"
        assert response.headers["Content-Type"] == "application/json"
        answers.append(orjson.loads(body))
    assert [a["message"] for a in answers] == ["Hello ada!", "Hello bob!", "Hello cy!"]
    assert [a["calls"] for a in answers] == [1, 2, 3]  # one process served them all
    assert answers[0]["route"] == "/go"  # ROUTE, sent as a request header
    assert hot_containers(executor) == [container]
    call_id = response.headers["Fn-Call-Id"]
    await eventually(lambda: True)
    log = await executor.client.get(f"/v1/calls/{call_id}/log", headers={"Accept": "text/plain"})
    text = await log.text()
    assert "call 3" in text and "for cy" in text and call_id in text  # stderr, Task-ID


async def test_an_http_function_gets_the_callers_request_and_the_calls_variables(executor):
    await executor.route("/users/:id", GOHTTP, format="http", memory=32)
    response = await executor.client.put(
        "/r/t/users/42?x=1", data=b"echo hi", headers={"X-Caller": "ada"}
    )
    assert response.status == 200, await response.text()
    assert response.headers["X-Function"] == "gohttp"  # the function's own headers pass
    seen = orjson.loads(await response.read())
    assert (seen["body"], seen["method"], seen["target"]) == ("echo hi", "PUT", "/r/t/users/42?x=1")
    assert seen["X-Caller"] == "ada" and seen["Content-Length"] == "7"
    assert seen["Param_id"] == "42" and seen["Route"] == "/users/:id"
    assert seen["Task-Id"] == response.headers["Fn-Call-Id"] == seen["Call_id"]
    assert seen["Request_url"].endswith("/r/t/users/42?x=1") and seen["Method"] == "PUT"


@pytest.mark.parametrize(
    ("command", "status", "message"),
    [
        (b"crash", 502, "function exited during the call: exit status 3"),
        (b"garbage", 502, "invalid response from the function"),
        (b"nolength", 502, "no Content-Length"),
    ],
)
async def test_an_http_function_that_breaks_its_answer_is_502_and_replaced(
    executor, command, status, message
):
    await executor.route("/bad", GOHTTP, format="http", memory=32)
    await wait_pool(executor, "/bad", idle=1)
    [first] = hot_containers(executor)
    response, body = await call(executor, "/bad", command)
    assert response.status == status and message in orjson.loads(body)["error"]["message"], body
    # The next call is served, by another container.
    response, body = await call(executor, "/bad", b"echo again")
    assert response.status == 200, body
    await eventually(lambda: first not in hot_containers(executor))


async def test_an_http_function_past_its_timeout_is_504_and_its_own_status_passes(executor):
    await executor.route("/slow", GOHTTP, format="http", memory=32, timeout=1)
    response, body = await call(executor, "/slow", b"sleep 3")
    assert response.status == 504, body
    response, body = await call(executor, "/slow", b"status 404")
    assert (response.status, body) == (404, b"as asked")


async def test_a_default_function_reads_ironfunctions_variables(executor: Executor):
    await executor.json(
        "POST", "/v1/apps", {"app": {"name": "t", "config": {"minio_secret": "s3"}}}, 200
    )
    await executor.route("/users/:id/posts", ENV, config={"Mixed_Key": "m"}, memory=32)
    response = await executor.client.post(
        "/r/t/users/42/posts?page=2", data=b"", headers={"X-Request-Id": "r-1"}
    )
    assert response.status == 200
    env = dict(line.split("=", 1) for line in (await response.text()).splitlines() if "=" in line)
    assert env["REQUEST_URL"].endswith("/r/t/users/42/posts?page=2")
    assert env["ROUTE"] == "/users/:id/posts" and env["METHOD"] == "POST"
    assert env["APP_NAME"] == "t" and env["CALL_ID"] == response.headers["Fn-Call-Id"]
    assert env["HEADER_X_REQUEST_ID"] == "r-1" and env["PARAM_ID"] == "42"
    assert env["MINIO_SECRET"] == "s3" and env["MIXED_KEY"] == "m"


async def test_an_exact_route_wins_over_a_parameter_and_parameters_match_by_segment(executor):
    await executor.route("/users/:id", ENV, memory=32)
    await executor.route("/users/me", "executor/hello", memory=32)
    _, body = await call(executor, "/users/me", b'{"name": "me"}')
    assert body == b"Hello me!\n"
    _, body = await call(executor, "/users/7")
    assert b"PARAM_ID=7" in body
    missing, body = await call(executor, "/users/7/extra")
    assert missing.status == 404, body


async def test_payload_in_the_query_is_the_body_of_a_call_without_one(executor):
    await executor.route("/hello", "executor/hello", memory=32)
    response = await executor.client.get("/r/t/hello", params={"payload": '{"name": "q"}'})
    assert await response.read() == b"Hello q!\n"
    response = await executor.client.post("/r/t/hello?payload=ignored", data=b'{"name": "body"}')
    assert await response.read() == b"Hello body!\n"  # a body wins


async def test_a_jwt_route_needs_a_token_signed_with_its_key(executor: Executor):
    key = "a-route-key-of-at-least-32-bytes!"
    route = await executor.route("/private", ENV, memory=32, jwt_key=key)
    assert route["jwt_key"] == "********"  # never shown back
    assert (await call(executor, "/private"))[0].status == 401
    bad = jwt.encode(
        {"exp": int(time.time()) + 60}, "another-key-of-at-least-32-bytes", algorithm="HS256"
    )
    expired = jwt.encode({"exp": int(time.time()) - 60}, key, algorithm="HS256")
    good = jwt.encode({"exp": int(time.time()) + 60}, key, algorithm="HS256")
    for token, status in ((bad, 401), (expired, 401), ("not.a.jwt", 401), (good, 200)):
        response, body = await call(
            executor, "/private", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == status, body
    assert key.encode() not in body and good.encode() not in body  # nor reaches the function
    # The shown key sent back (a GET's answer PATCHed, as fn does) leaves the key as it is.
    shown = await executor.json("GET", "/v1/apps/t/routes/private")
    await executor.json(
        "PATCH", "/v1/apps/t/routes/private", {**shown, "route": {**shown["route"]}}
    )
    response, _ = await call(executor, "/private", headers={"Authorization": f"Bearer {good}"})
    assert response.status == 200


async def test_the_api_answers_as_ironfunctions_does(executor: Executor):
    created = await executor.json("POST", "/v1/apps", {"app": {"name": "a"}}, 200)
    assert created["message"] == "App successfully created"
    assert (await executor.json("GET", "/v1/apps/nobody/routes")) == {
        "message": "Successfully listed routes",
        "routes": [],
    }
    route = await executor.json(
        "POST",
        "/v1/apps/a/routes",
        {"route": {"path": "/hello", "image": "executor/hello", "max_concurrency": 3}},
        200,
    )
    assert route["message"] == "Route successfully created"
    assert route["route"]["max_containers"] == 3 and route["route"]["max_concurrency"] == 3
    for spelled in ("//hello", "%2Fhello", "hello/"):
        got = await executor.json("GET", f"/v1/apps/a/routes/{spelled}")
        assert got["route"]["path"] == "/hello", spelled
    await executor.route("/other", "executor-test/echo", app="b", memory=32)
    listed = await executor.json("GET", "/v1/routes")
    assert [(r["app_name"], r["path"]) for r in listed["routes"]] == [
        ("a", "/hello"),
        ("b", "/other"),
    ]
    only = await executor.json("GET", "/v1/routes?image=executor-test/echo")
    assert [r["path"] for r in only["routes"]] == ["/other"]
    version = await executor.json("GET", "/version")
    assert isinstance(version["version"], str)
    await call(executor, "/x")  # unknown route of app t: not counted
    response = await executor.client.post("/r/a/hello", data=b"")
    assert response.status == 200
    stats = await executor.json("GET", "/stats")
    assert stats["Complete"] >= 1 and stats["FunctionStatsMap"]["a/hello"]["Complete"] == 1
    assert {"Queue", "Running", "Failed"} <= set(stats)


async def test_unknown_fields_are_still_refused_and_both_cap_names_must_agree(executor):
    response = await executor.client.post(
        "/v1/apps/a/routes", json={"route": {"path": "/x", "image": "executor/hello", "colour": 1}}
    )
    assert response.status == 400 and "colour" in await response.text()
    response = await executor.client.post(
        "/v1/apps/a/routes",
        json={"route": {"path": "/x", "image": "executor/hello", "max_concurrency": 2,
                        "max_containers": 3}},
    )  # fmt: skip
    assert response.status == 400 and "max_concurrency" in await response.text()


async def test_with_an_api_token_stats_need_it_and_version_does_not(db):
    async with running(settings_for(db, api_token="t0k")) as ex:
        assert (await ex.client.get("/stats")).status == 401
        assert (await ex.client.get("/version")).status == 200
