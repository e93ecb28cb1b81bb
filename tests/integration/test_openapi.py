"""The OpenAPI document describes the whole API, and the API keeps to it: schemathesis
sends generated requests (valid and not) to every operation of a real `executor serve`;
no answer may be a 500, and each must match the document's statuses and schemas."""

from __future__ import annotations

import sqlite3
import urllib.request

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from executor.calls import CallRecord
from tests.conftest import GROUPS
from tests.integration.test_cli import free_port, serve, stop


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("openapi")
    port = free_port()
    db = tmp / "api.db"
    process = serve(db, port, tmp / "server.log", EXECUTOR_PULL_TIMEOUT="0")
    url = f"http://127.0.0.1:{port}"
    try:
        GROUPS.add(sqlite3.connect(db).execute("SELECT value FROM meta").fetchone()[0])
        body = orjson.dumps({"route": {"image": "executor/hello"}})
        urllib.request.urlopen(
            urllib.request.Request(f"{url}/v1/apps/t/routes/hello", data=body, method="PUT")
        )
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def api_schema(served: str):
    return schemathesis.openapi.from_url(f"{served}/openapi.json")


def test_the_document_covers_every_route_of_the_server(served: str):
    with urllib.request.urlopen(f"{served}/openapi.json") as response:
        document = orjson.loads(response.read())
    assert document["openapi"].startswith("3.")
    documented = set(document["paths"])
    for path in (
        "/", "/health/live", "/health/ready", "/metrics", "/openapi.json", "/v1/apps",
        "/v1/apps/{app}", "/v1/apps/{app}/routes", "/v1/apps/{app}/routes/{path}",
        "/v1/apps/{app}/calls", "/v1/apps/{app}/calls/{call}",
        "/v1/apps/{app}/calls/{call}/log", "/v1/calls/{call}", "/v1/calls/{call}/log",
        "/r/{app}/{path}",
    ):  # fmt: skip
        assert path in documented, path
    call_fields = document["components"]["schemas"]["Call"]["properties"]
    assert list(call_fields) == [*CallRecord._fields, "node"]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_every_operation_answers_as_documented_and_never_500(api_schema):
    # Hypothesis drives each operation's generated cases directly (schemathesis's pytest
    # plugin does not run under this pytest).
    failures = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case) -> None:
            case.call_and_validate(checks=CHECKS, timeout=30)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # try every operation, report all
            failures.append(f"{operation.verbose_name}: {exc}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
