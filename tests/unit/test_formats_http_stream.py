"""The http-stream format's protocol logic, without sockets."""

from __future__ import annotations

from datetime import UTC, datetime

import httptools
import pytest

from executor.formats import http_stream
from executor.models import App, Route

APP = App(name="a", config={"SHARED": "app", "X": "app"}, id="A1", created_at="", updated_at="")
ROUTE = Route(
    path="/f",
    image="img",
    format="http-stream",
    config={"X": "route"},
    id="R1",
    app_name="a",
    created_at="",
    updated_at="",
)


def test_environment_is_fn_s_then_app_then_route_config():
    env = http_stream.environment(APP, ROUTE)
    assert env["FN_FORMAT"] == "http-stream"
    assert env["FN_LISTENER"] == "unix:/tmp/iofs/lsnr.sock"
    assert env["FN_APP_ID"] == "A1" and env["FN_FN_ID"] == "R1"
    assert env["FN_FN_NAME"] == "/f" and env["FN_APP_NAME"] == "a"
    assert env["FN_MEMORY"] == "128" and env["FN_TYPE"] == "sync"
    assert env["FN_LOGFRAME_NAME"] == "FN_CALL_ID"
    assert env["FN_LOGFRAME_HDR"] == "Fn-Call-Id"
    assert env["SHARED"] == "app" and env["X"] == "route"


def parse_request(head: bytes, body: bytes) -> tuple[dict[str, list[str]], bytes]:
    headers: dict[str, list[str]] = {}
    received = bytearray()

    class Sink:
        def on_header(self, name: bytes, value: bytes) -> None:
            headers.setdefault(name.decode().lower(), []).append(value.decode())

        def on_body(self, data: bytes) -> None:
            received.extend(data)

    parser = httptools.HttpRequestParser(Sink())
    parser.feed_data(head + body)
    assert parser.get_method() == b"POST"
    return headers, bytes(received)


def test_request_head_is_valid_http_with_a_content_length():
    head = http_stream.request_head(
        call_id="C1",
        deadline=datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        method="PUT",
        url="http://h/r/a/f?x=1",
        headers=[
            ("X-One", "1"),
            ("X-One", "2"),
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer s"),
            ("Connection", "keep-alive"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "999"),
        ],
        content_length=4,
    )
    headers, body = parse_request(head, b"abcd")
    assert body == b"abcd"
    assert headers["content-length"] == ["4"]
    assert headers["fn-call-id"] == ["C1"]
    assert headers["fn-deadline"] == ["2030-01-02T03:04:05.678Z"]
    assert headers["fn-intent"] == ["httprequest"]
    assert headers["fn-http-method"] == ["PUT"]
    assert headers["fn-http-request-url"] == ["http://h/r/a/f?x=1"]
    assert headers["fn-http-h-x-one"] == ["1", "2"]
    assert headers["content-type"] == ["application/json"]
    assert headers["fn-http-h-content-type"] == ["application/json"]
    for dropped in ("authorization", "connection", "transfer-encoding"):
        assert dropped not in headers and f"fn-http-h-{dropped}" not in headers


def test_a_200_carries_the_function_s_status_headers_and_content_type():
    answer = http_stream.interpret(
        200,
        [
            (b"Fn-Http-Status", b"201"),
            (b"Fn-Http-H-X-Thing", b"v"),
            (b"Fn-Http-H-Content-Type", b"text/ignored"),
            (b"Content-Type", b"application/json; charset=utf-8"),
            (b"Fn-Http-H-Transfer-Encoding", b"chunked"),
            (b"Fn-Http-H-Content-Length", b"5"),
            (b"Content-Length", b"2"),
            (b"Date", b"today"),
        ],
    )
    assert answer.outcome == "ok"
    assert answer.status == 201
    assert answer.headers == [
        ("X-Thing", "v"),
        ("Content-Type", "application/json; charset=utf-8"),
    ]


def test_without_fn_http_status_the_caller_gets_200():
    assert http_stream.interpret(200, []).status == 200


def test_502_and_504_are_the_function_s_error_and_timeout():
    assert http_stream.interpret(502, []).outcome == "error"
    assert http_stream.interpret(504, []).outcome == "timeout"


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (500, []),
        (404, []),
        (200, [(b"Fn-Http-Status", b"abc")]),
        (200, [(b"Fn-Http-Status", b"999")]),
        (200, [(b"Fn-Http-Status", b"101")]),  # no final answer: the caller would hang
        (200, [(b"Fn-Http-Status", b"100")]),
        (200, [(b"Fn-Http-Status", b"199")]),
    ],
)
def test_anything_else_breaks_the_protocol(status, headers):
    with pytest.raises(http_stream.ProtocolError):
        http_stream.interpret(status, headers)
