"""The API token: /v1/* needs it, calls of `auth: token` routes need it, nothing else does,
and no function ever sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import Executor, running, settings_for

TOKEN = "s3cret-token"
GOOD = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def guarded(db: Path):
    async with running(settings_for(db, api_token=TOKEN)) as ex:
        yield ex


async def put_route(ex: Executor, path: str, **fields) -> None:
    if (await ex.client.get("/v1/apps/t", headers=GOOD)).status == 404:
        await ex.client.post("/v1/apps", json={"app": {"name": "t"}}, headers=GOOD)
    response = await ex.client.put(f"/v1/apps/t/routes{path}", json={"route": fields}, headers=GOOD)
    assert response.status in (200, 201), await response.text()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API token"),
        ({"Authorization": "Bearer wrong"}, "wrong API token"),
        ({"Authorization": f"Basic {TOKEN}"}, "missing API token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "wrong API token"),
    ],
)
async def test_the_admin_api_needs_the_token(guarded, headers, message):
    for method, path in [("GET", "/v1/apps"), ("POST", "/v1/apps"), ("GET", "/v1/calls/x")]:
        response = await guarded.client.request(method, path, headers=headers, json={})
        assert response.status == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert message in (await response.json())["error"]["message"]
    assert (await guarded.client.get("/v1/apps", headers=GOOD)).status == 200


async def test_health_metrics_and_open_routes_need_no_token(guarded):
    for path in ("/", "/health/live", "/health/ready", "/metrics"):
        assert (await guarded.client.get(path)).status == 200, path
    await put_route(guarded, "/open", image="executor/hello")
    response = await guarded.client.post("/r/t/open")
    assert (response.status, await response.text()) == (200, "Hello World!\n")


async def test_a_token_route_needs_the_token_and_its_function_never_sees_it(guarded):
    await put_route(guarded, "/env", image="executor-test/env", auth="token")
    refused = await guarded.client.post("/r/t/env")
    assert refused.status == 401
    assert "missing API token" in (await refused.json())["error"]["message"]
    wrong = await guarded.client.post("/r/t/env", headers={"Authorization": "Bearer no"})
    assert wrong.status == 401
    served = await guarded.client.post("/r/t/env", headers={**GOOD, "X-Seen": "yes"})
    assert served.status == 200
    output = await served.text()
    assert "FN_HEADER_X_SEEN=yes" in output
    assert TOKEN not in output and "FN_HEADER_AUTHORIZATION" not in output


async def test_a_token_route_needs_a_token_on_the_executor(executor):
    await executor.json("POST", "/v1/apps", {"app": {"name": "t"}}, 200)
    error = await executor.json(
        "PUT",
        "/v1/apps/t/routes/x",
        {"route": {"image": "executor/hello", "auth": "token"}},
        status=400,
    )
    assert "route.auth" in error["error"]["message"]


async def test_a_token_route_stays_closed_on_an_executor_without_a_token(db: Path):
    async with running(settings_for(db, api_token=TOKEN)) as ex:
        await put_route(ex, "/closed", image="executor/hello", auth="token")
    async with running(settings_for(db)) as ex:
        response = await ex.client.post("/r/t/closed")
        assert response.status == 401
        assert "has none set" in (await response.json())["error"]["message"]
