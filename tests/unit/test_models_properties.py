"""Property tests over route and app payloads (hypothesis): whatever a client sends, the
answer is a valid spec or InvalidInput naming a field, never another exception."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from executor.config import Settings
from executor.errors import InvalidInput
from executor.models import (
    APP_NAME_RE,
    CONFIG_KEY_RE,
    ROUTE_PATH_RE,
    RouteSpec,
    parse_app,
    parse_route,
)

SETTINGS = Settings()
ANYTHING = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = list(RouteSpec.model_fields)
NAME_CHARS = string.ascii_letters + string.digits + "._-/\\\n\x00%"


def payloads(fields: list[str]) -> st.SearchStrategy[dict]:
    """Dicts with any of these fields (and perhaps unknown ones), of any JSON value."""
    return st.dictionaries(
        st.sampled_from([*fields, "bogus", "id", "pool"]) | st.text(max_size=10),
        ANYTHING,
        max_size=len(fields),
    )


@settings(max_examples=400, deadline=None)
@given(payloads(FIELDS))
def test_any_route_payload_is_a_valid_route_or_a_400_naming_a_field(payload):
    try:
        route = parse_route(payload, SETTINGS)
    except InvalidInput as exc:
        assert exc.message.startswith("route"), exc.message
        return
    assert ROUTE_PATH_RE.fullmatch(route.path) and len(route.path) <= 255
    assert SETTINGS.memory_min <= route.memory <= SETTINGS.memory_max
    assert 0 <= route.min_warm <= route.max_containers
    assert all(CONFIG_KEY_RE.fullmatch(name) for name in route.config)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"path": st.text(NAME_CHARS, max_size=20).map(lambda p: "/" + p)},
        optional={"image": st.text(NAME_CHARS + ":@", max_size=20)},
    )
)
def test_route_paths_and_images_are_checked_whole(payload):
    payload.setdefault("image", "executor/hello")
    try:
        route = parse_route(payload, SETTINGS)
    except InvalidInput:
        return
    # Nothing the pattern does not allow slips through (a trailing newline, a NUL, "..").
    assert ROUTE_PATH_RE.fullmatch(route.path), route.path
    assert "\n" not in route.image and "\x00" not in route.image
    assert "/../" not in route.path + "/" and not route.path.endswith("/..")


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries({"name": st.text(NAME_CHARS, max_size=35)}, optional={"config": ANYTHING})
)
def test_app_names_are_checked_whole(payload):
    try:
        app = parse_app(payload, SETTINGS)
    except InvalidInput as exc:
        assert exc.message.startswith("app"), exc.message
        return
    assert APP_NAME_RE.fullmatch(app.name), app.name


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        dict,
        path=st.from_regex(r"\A(/[a-z0-9_-]{1,10}){1,3}\Z"),
        image=st.just("executor/hello"),
        memory=st.integers(8, 8192),
        timeout=st.integers(1, 300),
        max_containers=st.integers(1, 256),
        config=st.dictionaries(
            st.from_regex(r"\A[A-Z][A-Z0-9_]{0,8}\Z"), st.text(string.printable, max_size=5)
        ),
    )
)
def test_a_valid_route_round_trips(payload):
    route = parse_route(payload, SETTINGS)
    assert parse_route(route.model_dump(), SETTINGS) == route
