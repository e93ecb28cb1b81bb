from datetime import UTC, datetime

from executor.calls import Call
from executor.formats.default import (
    STDERR,
    STDOUT,
    Output,
    environment,
    header_env_name,
    launcher_header,
    static_environment,
)
from executor.models import App, Route

APP = App(
    name="demo", config={"SHARED": "app", "ONLY_APP": "1"}, id="a", created_at="t", updated_at="t"
)
ROUTE = Route(
    path="/hello",
    image="img",
    config={"SHARED": "route"},
    id="r",
    app_name="demo",
    created_at="t",
    updated_at="t",
)


def call_at(deadline: datetime, **fields) -> Call:
    """A call whose deadline (as FN_DEADLINE gives it) is `deadline`."""
    fields = {"app": APP, "route": ROUTE, "method": "POST", "headers": [], "body": b"", **fields}
    call = Call(**fields, created_at=deadline, arrived=100.0)
    call.deadline = call.arrived  # deadline_utc = created_at + (deadline - arrived)
    return call


def test_environment():
    env = environment(
        call_at(
            datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            id="C1",
            url="http://h/r/demo/hello?x=1",
            headers=[("Content-Type", "text/plain"), ("X-Multi", "a"), ("X-Multi", "b")],
        )
    )
    assert env["FN_APP_NAME"] == "demo"
    assert env["FN_PATH"] == "/hello"
    assert env["FN_FORMAT"] == "default"
    assert env["FN_MEMORY"] == "128"
    assert env["FN_TYPE"] == "sync"
    assert env["FN_CALL_ID"] == "C1"
    assert env["FN_DEADLINE"] == "2026-01-02T03:04:05.678Z"
    assert env["FN_METHOD"] == "POST"
    assert env["FN_REQUEST_URL"] == "http://h/r/demo/hello?x=1"
    assert env["FN_HEADER_CONTENT_TYPE"] == "text/plain"
    assert env["FN_HEADER_X_MULTI"] == "a, b"
    # the route's config comes after the app's, so it wins
    assert env["SHARED"] == "route" and env["ONLY_APP"] == "1"


def test_header_env_name():
    assert header_env_name("x-request-id") == "FN_HEADER_X_REQUEST_ID"
    assert header_env_name("X.Odd~Name") == "FN_HEADER_X_ODD_NAME"


def test_output_caps_the_body():
    out = Output(max_body=10, max_log=100)
    assert out.add(STDOUT, b"12345")
    assert out.add(STDOUT, b"67890")
    assert not out.add(STDOUT, b"x")
    assert out.body == b"1234567890"


def test_output_caps_the_log_without_failing():
    out = Output(max_body=10, max_log=4)
    assert out.add(STDERR, b"abcdef")
    assert out.add(STDERR, b"gh")
    assert out.log.startswith(b"abcd") and b"[4 bytes dropped]" in out.log
    assert out.body == b""


def test_environment_has_ironfunctions_variables_and_upper_cased_config():
    app = APP.model_copy(update={"config": {"minio_secret": "s"}})
    route = ROUTE.model_copy(update={"path": "/users/:id", "config": {"Mixed_Case": "m"}})
    env = environment(
        call_at(
            datetime(2026, 1, 2, tzinfo=UTC),
            app=app,
            route=route,
            id="C1",
            method="GET",
            url="http://h/r/demo/users/42?x=1",
            headers=[("X-Request-Id", "r1"), ("Accept", "a"), ("Accept", "b")],
            params={"id": "42"},
        )
    )
    assert env["REQUEST_URL"] == "http://h/r/demo/users/42?x=1"
    assert (env["ROUTE"], env["METHOD"], env["APP_NAME"], env["CALL_ID"]) == (
        "/users/:id",
        "GET",
        "demo",
        "C1",
    )
    assert env["HEADER_X_REQUEST_ID"] == "r1" and env["HEADER_ACCEPT"] == "a, b"
    assert env["PARAM_ID"] == "42"
    assert env["MINIO_SECRET"] == "s" and env["MIXED_CASE"] == "m"
    assert "minio_secret" not in env


NONCE = bytes(range(16))
TRAILER = NONCE + (7).to_bytes(4, "big")


def test_the_launcher_header_frames_the_environment_after_the_magic_and_nonce():
    header = launcher_header({"A": "1", "B": "x=y"}, NONCE)
    assert header == b"EXR1" + NONCE + (10).to_bytes(4, "big") + b"A=1\0B=x=y\0"


def test_a_prestarted_containers_static_environment_is_a_part_of_every_calls():
    call = Call(
        app=APP, route=ROUTE, method="GET", url="http://h/r/demo/hello", headers=[], body=b""
    )
    static = static_environment(APP, ROUTE)
    assert "FN_CALL_ID" not in static and "FN_DEADLINE" not in static
    per_call = environment(call)
    assert {k: per_call[k] for k in static} == static


def test_the_launchers_trailers_give_the_exit_status_and_leave_body_and_log():
    out = Output(max_body=10, max_log=100, nonce=NONCE)
    out.add(STDOUT, b"answer" + TRAILER[:5])
    out.add(STDERR, b"a log" + TRAILER)
    assert out.exit_status is None  # stdout's trailer is not whole yet
    out.add(STDOUT, TRAILER[5:])
    assert out.exit_status == 7
    assert out.body == b"answer" and out.log == b"a log"


def test_a_trailer_with_another_nonce_is_output_like_any_other():
    out = Output(max_body=100, max_log=100, nonce=NONCE)
    forged = bytes(16) + (0).to_bytes(4, "big")
    out.add(STDOUT, forged)
    out.add(STDERR, forged)
    assert out.exit_status is None and out.body == forged


def test_the_body_limit_leaves_room_for_the_trailer_only():
    out = Output(max_body=4, max_log=100, nonce=NONCE)
    assert out.add(STDOUT, b"1234" + TRAILER)
    assert not out.too_large
    untrailed = Output(max_body=4, max_log=100, nonce=NONCE)
    assert untrailed.add(STDOUT, b"12345")  # within the room a trailer may take
    assert untrailed.too_large


def test_a_trailer_past_the_log_cap_is_not_counted_as_dropped():
    out = Output(max_body=10, max_log=4, nonce=NONCE)
    out.add(STDOUT, TRAILER)
    out.add(STDERR, b"abcdef" + TRAILER)
    assert out.exit_status == 7
    assert out.log == b"abcd\n[2 bytes dropped]\n"
