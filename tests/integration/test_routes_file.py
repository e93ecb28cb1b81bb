"""`serve --routes FILE` on the real engine: applied at start-up, idempotent, --prune."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from executor.errors import BadSetting
from tests.integration.conftest import running, settings_for


def declare(path: Path, hello_memory: int = 128, more: bool = True) -> Path:
    routes = [{"path": "/hello", "image": "executor/hello", "memory": hello_memory}]
    if more:
        routes.append({"path": "/hot", "image": "executor/hello-stream", "format": "http-stream"})
    apps = [{"name": "demo", "config": {"GREETING": "hi"}, "routes": routes}]
    path.write_bytes(orjson.dumps({"apps": apps}))
    return path


async def test_a_routes_file_is_applied_at_each_start_and_leaves_the_rest_alone(tmp_path, db):
    file = declare(tmp_path / "routes.json")
    async with running(settings_for(db, routes_file=file)) as ex:
        routes = (await ex.json("GET", "/v1/apps/demo/routes"))["routes"]
        assert [(r["path"], r["memory"]) for r in routes] == [("/hello", 128), ("/hot", 128)]
        stamps = {r["path"]: r["updated_at"] for r in routes}
        assert (await ex.json("GET", "/v1/apps/demo"))["app"]["config"] == {"GREETING": "hi"}
        response = await ex.client.post("/r/demo/hello", data=b'{"name": "Ada"}')
        assert await response.read() == b"Hello Ada!\n"
        # The API keeps working: a route of its own, and one in another app.
        await ex.route("/extra", "executor/hello", app="demo")
        await ex.route("/x", "executor/hello", app="api-made")

    # The same file again: nothing changes (the routes are not even saved again).
    async with running(settings_for(db, routes_file=file)) as ex:
        routes = (await ex.json("GET", "/v1/apps/demo/routes"))["routes"]
        assert {r["path"]: r["updated_at"] for r in routes if r["path"] in stamps} == stamps
        assert {r["path"] for r in routes} == {"/hello", "/hot", "/extra"}

    # A changed route is replaced; others it does not name stay without --prune.
    declare(file, hello_memory=64)
    async with running(settings_for(db, routes_file=file)) as ex:
        hello = (await ex.json("GET", "/v1/apps/demo/routes/hello"))["route"]
        assert hello["memory"] == 64 and hello["updated_at"] > stamps["/hello"]
        assert (await ex.json("GET", "/v1/apps/demo/routes/hot"))["route"]["updated_at"] == (
            stamps["/hot"]
        )
        await ex.json("GET", "/v1/apps/demo/routes/extra")

    # --prune: what the file does not name goes, routes and apps.
    declare(file, hello_memory=64, more=False)
    async with running(settings_for(db, routes_file=file, routes_prune=True)) as ex:
        routes = (await ex.json("GET", "/v1/apps/demo/routes"))["routes"]
        assert [r["path"] for r in routes] == ["/hello"]
        apps = (await ex.json("GET", "/v1/apps"))["apps"]
        assert [a["name"] for a in apps] == ["demo"]


async def test_a_route_whose_image_is_missing_stops_the_start_with_its_reason(tmp_path, db):
    file = tmp_path / "routes.yaml"
    file.write_text(
        "apps:\n  - name: demo\n    routes:\n      - {path: /x, image: no/such-image}\n"
    )
    with pytest.raises(BadSetting, match=r"routes file .*: route.image: image 'no/such-image'"):
        async with running(settings_for(db, routes_file=file, pull_timeout=0)):
            pass
