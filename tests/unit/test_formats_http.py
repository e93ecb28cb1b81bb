"""The `http` format's protocol logic: a request's head and a response's meaning."""

from __future__ import annotations

import pytest

from executor.calls import Call
from executor.formats import http
from executor.formats.http_stream import ProtocolError
from executor.models import App, Route

APP = App(name="demo", config={"db_url": "x"}, id="a", created_at="t", updated_at="t")
ROUTE = Route(
    path="/users/:id", image="img", format="http", id="r", app_name="demo",
    created_at="t", updated_at="t", config={"Key": "v"},
)  # fmt: skip


def test_the_environment_has_both_projects_names_and_upper_cased_config():
    env = http.environment(APP, ROUTE)
    assert env["FN_FORMAT"] == "http" and env["APP_NAME"] == "demo"
    assert env["ROUTE"] == "/users/:id" and env["DB_URL"] == "x" and env["KEY"] == "v"


def test_a_request_carries_the_callers_request_and_the_calls_variables():
    call = Call(
        app=APP,
        route=ROUTE,
        id="C1",
        method="PUT",
        url="http://h/r/demo/users/42?x=1",
        headers=[
            ("Host", "h"),
            ("X-A", "1"),
            ("Connection", "keep-alive"),
            ("Content-Length", "9"),
        ],
        body=b"abc",
        params={"id": "42", "evil": "a\r\nInjected: yes"},
    )
    head = http.call_head(call)
    lines = head.decode().split("\r\n")
    assert lines[0] == "PUT /r/demo/users/42?x=1 HTTP/1.1"
    assert head.endswith(b"\r\n\r\n")
    assert "Content-Length: 3" in lines and "Host: h" in lines and "X-A: 1" in lines
    assert "Task-ID: C1" in lines and "PARAM_ID: 42" in lines and "CALL_ID: C1" in lines
    assert not any(line.startswith(("Connection", "Content-Length: 9")) for line in lines)
    assert "Injected: yes" not in lines  # a value with a line break is left out


def test_the_functions_status_and_headers_reach_the_caller_but_framing():
    answer = http.interpret(
        404, [(b"Content-Type", b"text/plain"), (b"Content-Length", b"3"), (b"X-B", b"2")]
    )
    assert (answer.status, answer.outcome) == (404, "ok")
    assert answer.headers == [("Content-Type", "text/plain"), ("X-B", "2")]


@pytest.mark.parametrize("status", [100, 101, 199, 600])
def test_a_status_that_is_no_final_answer_breaks_the_format(status):
    with pytest.raises(ProtocolError):
        http.interpret(status, [])
