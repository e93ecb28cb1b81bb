"""The requests IronFunctions' `fn` CLI sends, replayed as it sends them (read from its
source: fn/commands/apps.go and routes.go, and the functions_go client they use), and
every answer checked as that client decodes it: its status (the client's expected one,
else it fails), its envelope, and the types of the fields it reads.

functions_go models: App {name, config}; Route {path, image, memory, type, format,
max_concurrency, timeout, headers, config, jwt_key}, every field `omitempty`. fn edits by
GET, change, PATCH of the GET's whole answer (message included, the route's path
emptied); the route path in the URL is "/hello" as the client spells it: escaped
(%2Fhello) or not (//hello).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Executor

ROUTE_FIELDS = {
    "path": str,
    "image": str,
    "memory": int,
    "type": str,
    "format": str,
    "max_concurrency": int,
    "timeout": int,
    "headers": dict,
    "config": dict,
}


async def send(ex: Executor, method: str, path: str, body: Any = None, expect: int = 200):
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    response = await ex.client.request(method, path, json=body, headers=headers)
    data = await response.json()
    assert response.status == expect, (method, path, data)
    return data


def as_go_decodes(route: dict[str, Any]) -> dict[str, Any]:
    """The route as functions_go holds it: its fields only, each of the type it declares."""
    for name, kind in ROUTE_FIELDS.items():
        assert isinstance(route[name], kind), (name, route[name])
    assert all(isinstance(v, list) for v in route["headers"].values())
    assert all(isinstance(v, str) for v in route["config"].values())
    return {name: route[name] for name in ROUTE_FIELDS} | {"jwt_key": route.get("jwt_key") or ""}


def as_go_encodes(route: dict[str, Any]) -> dict[str, Any]:
    """What the client sends back: zero values left out (omitempty)."""
    return {k: v for k, v in route.items() if v not in ("", 0, None, {}, [])}


async def patch_route(ex: Executor, app: str, spelled: str, change: dict[str, Any]) -> None:
    """fn's patchRoute: GET the route, apply the change, PATCH the GET's answer back."""
    loaded = await send(ex, "GET", f"/v1/apps/{app}/routes/{spelled}")
    route = as_go_decodes(loaded["route"])
    route["path"] = ""
    for key in ("config", "headers"):
        route[key] = {**route[key], **change.pop(key, {})}
    route.update(change)
    await send(
        ex, "PATCH", f"/v1/apps/{app}/routes/{spelled}", {**loaded, "route": as_go_encodes(route)}
    )


@pytest.mark.parametrize("spelled", ["%2Fhello", "/hello"])  # the second gives //hello
async def test_the_fn_cli_workflow_gets_the_answers_its_client_expects(executor, spelled):
    # fn apps create myapp --config DB=x
    created = await send(
        executor, "POST", "/v1/apps", {"app": {"name": "myapp", "config": {"DB": "x"}}}
    )
    assert created["app"]["name"] == "myapp" and created["app"]["config"] == {"DB": "x"}
    # fn apps list
    listed = await send(executor, "GET", "/v1/apps")
    assert [a["name"] for a in listed["apps"]] == ["myapp"]
    # fn apps inspect myapp
    app = (await send(executor, "GET", "/v1/apps/myapp"))["app"]
    assert isinstance(app["config"], dict)
    # fn apps config set myapp log_level debug (and fn apps update --config): GET, PATCH
    app = {"config": {**app["config"], "log_level": "debug"}}  # name emptied: omitted
    await send(executor, "PATCH", "/v1/apps/myapp", {"app": app})
    assert (await send(executor, "GET", "/v1/apps/myapp"))["app"]["config"]["log_level"] == "debug"
    # fn routes create myapp /hello executor/hello --memory 64 --timeout 20s
    body = {"route": {"path": "/hello", "image": "executor/hello", "memory": 64, "timeout": 20}}
    created = await send(executor, "POST", "/v1/apps/myapp/routes", body)
    assert as_go_decodes(created["route"])["path"] == "/hello"
    # fn routes list myapp
    routes = (await send(executor, "GET", "/v1/apps/myapp/routes"))["routes"]
    assert [as_go_decodes(r)["path"] for r in routes] == ["/hello"]
    # fn routes inspect myapp /hello
    route = as_go_decodes(
        (await send(executor, "GET", f"/v1/apps/myapp/routes/{spelled}"))["route"]
    )
    assert (route["memory"], route["timeout"], route["max_concurrency"]) == (64, 20, 8)
    # fn routes update myapp /hello --max-concurrency 2 --headers X-Fn=yes
    await patch_route(
        executor, "myapp", spelled, {"max_concurrency": 2, "headers": {"X-Fn": ["yes"]}}
    )
    # fn routes config set myapp /hello greeting hi
    await patch_route(executor, "myapp", spelled, {"config": {"greeting": "hi"}})
    route = as_go_decodes(
        (await send(executor, "GET", f"/v1/apps/myapp/routes/{spelled}"))["route"]
    )
    assert (route["max_concurrency"], route["headers"], route["config"]) == (
        2,
        {"X-Fn": ["yes"]},
        {"greeting": "hi"},
    )
    # fn routes call myapp /hello: GET the route, then the call
    response = await executor.client.post(
        "/r/myapp/hello", data=b'{"name": "fn"}', headers={"Content-Type": "application/json"}
    )
    assert (response.status, await response.read()) == (200, b"Hello fn!\n")
    assert response.headers["X-Fn"] == "yes"
    # fn routes delete myapp /hello; fn apps delete myapp
    deleted = await send(executor, "DELETE", f"/v1/apps/myapp/routes/{spelled}")
    assert deleted["message"]
    await send(executor, "DELETE", "/v1/apps/myapp")
    assert (await send(executor, "GET", "/v1/apps"))["apps"] == []


async def test_fn_errors_come_in_the_envelope_its_client_reads(executor):
    # Each error case fn handles reads Payload.Error.Message.
    missing = await send(executor, "GET", "/v1/apps/nope", expect=404)
    assert isinstance(missing["error"]["message"], str)
    await send(executor, "POST", "/v1/apps", {"app": {"name": "dup"}})
    conflict = await send(executor, "POST", "/v1/apps", {"app": {"name": "dup"}}, expect=409)
    assert "already exists" in conflict["error"]["message"]
    bad = await send(executor, "POST", "/v1/apps/dup/routes", {"route": {"path": "/x"}}, expect=400)
    assert "image" in bad["error"]["message"]
