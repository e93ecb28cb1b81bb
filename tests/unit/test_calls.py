"""A call's record: its state from how it ended, its times from the call's clocks."""

from datetime import UTC, datetime

import pytest

from executor.calls import Call, ended
from executor.models import App, Route

APP = App(name="a", id="1", config={}, created_at="", updated_at="")


def _call() -> Call:
    route = Route(path="/p", image="i", app_name="a", id="2", created_at="", updated_at="")
    call = Call(APP, route, "POST", "http://x/r/a/p", [], b"", received=100.0)
    call.created_at = datetime(2026, 1, 1, tzinfo=UTC)
    return call


@pytest.mark.parametrize(
    ("status", "error", "state"),
    [
        (200, None, "success"),
        (404, None, "success"),  # the function's own answer
        (502, "function failed: exit status 1", "error"),
        (503, "server too busy", "error"),
        (504, "function timed out after 1 s", "timeout"),
        (None, "the caller went away", "cancelled"),
    ],
)
def test_the_state_follows_how_the_call_ended(status, error, state):
    record = ended(_call(), status, error, completed=100.5)
    assert (record.state, record.http_status, record.error) == (state, status, error)


def test_times_split_into_wait_start_and_exec():
    call = _call()
    call.start, call.assigned, call.started = "fresh", 100.010, 100.250
    record = ended(call, 200, None, completed=100.300)
    assert (record.wait_ms, record.start_ms, record.exec_ms) == (10.0, 240.0, 50.0)
    created = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert record.created_at == created
    assert record.started_at == pytest.approx(created + 0.250)
    assert record.completed_at == pytest.approx(created + 0.300)


def test_a_call_that_never_got_a_container_waited_until_it_ended():
    record = ended(_call(), 503, "server too busy", completed=101.0)
    assert record.wait_ms == 1000.0
    assert (record.start, record.start_ms, record.exec_ms, record.started_at) == (
        None,
        None,
        None,
        None,
    )
