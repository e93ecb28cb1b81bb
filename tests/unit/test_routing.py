"""Route matching: exact paths, `:name` parameters, the precedence rule, path cleaning."""

from __future__ import annotations

import pytest

from executor.routing import RouteTree, bind, call_path, clean_path


def tree(*paths: str) -> RouteTree[str]:
    return RouteTree((path, path) for path in paths)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("hello", "/hello"),
        ("/hello", "/hello"),
        ("//hello", "/hello"),
        ("hello/", "/hello"),
        ("./hello", "/hello"),
        ("a/../hello", "/hello"),
        ("../../hello", "/hello"),
        ("a//b///c", "/a/b/c"),
        ("", "/"),
    ],
)
def test_paths_are_cleaned_as_ironfunctions_cleans_them(raw, clean):
    assert clean_path(raw) == clean


def test_a_parameter_matches_one_segment_and_binds_its_value():
    routes = tree("/users/:id")
    assert routes.match("/users/42") == "/users/:id"
    assert bind("/users/:id", "/users/42") == {"id": "42"}
    assert routes.match("/users") is None
    assert routes.match("/users/42/posts") is None


def test_a_literal_segment_beats_a_parameter_at_the_same_place():
    routes = tree("/users/:id/:tab", "/users/me/:tab")
    assert routes.match("/users/me/posts") == "/users/me/:tab"
    assert routes.match("/users/7/posts") == "/users/:id/:tab"


def test_a_literal_branch_that_leads_nowhere_falls_back_to_the_parameter():
    routes = tree("/users/:id/edit", "/users/me/:tab/x")
    assert routes.match("/users/me/edit") == "/users/:id/edit"
    assert routes.match("/users/me/posts/x") == "/users/me/:tab/x"


def test_the_leftmost_difference_decides_between_two_parameterised_routes():
    routes = tree("/a/:x/c", "/:y/b/c")
    # Both match /a/b/c; the first literal from the left (a) wins.
    assert routes.match("/a/b/c") == "/a/:x/c"
    assert routes.match("/z/b/c") == "/:y/b/c"


def test_routes_with_different_parameter_names_share_a_branch():
    routes = tree("/u/:id/posts", "/u/:name/likes")
    assert bind(routes.match("/u/1/posts"), "/u/1/posts") == {"id": "1"}
    assert bind(routes.match("/u/ada/likes"), "/u/ada/likes") == {"name": "ada"}


def test_a_calls_url_gives_back_its_route_path():
    assert call_path("http://h:8080/r/app/users/42?x=1", "app") == "/users/42"
    assert call_path("http://h/r/app/users/a%20b", "app") == "/users/a b"
