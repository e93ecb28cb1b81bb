"""Which route a call's path names (no IO): exact paths, then IronFunctions' `:name`
parameters (`/users/:id` matches `/users/42` with id=42).

Precedence: a route whose path is exactly the call's wins (one dict read, the common
case). Otherwise the most specific parameterised route wins: segments are compared from
the left, and at each one a literal segment beats a parameter; a literal branch that
leads nowhere falls back to the parameter at the same place. So `/users/me/:tab` beats
`/users/:id/:tab` for `/users/me/posts`, and `/users/:id/edit` still serves
`/users/me/edit` (the literal branch `me` has no `edit`). A walk is O(depth) but for
such fall-backs, each bounded by the routes that exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import unquote, urlsplit

R = TypeVar("R")


def clean_path(raw: str) -> str:
    """A route path as IronFunctions cleans it (Go's path.Clean, rooted): `//hello`,
    `/hello/`, `/./hello` and `/x/../hello` are all `/hello`."""
    if "//" not in raw and "." not in raw and not raw.endswith("/"):
        return raw if raw.startswith("/") else "/" + raw  # clean already: every call's case
    parts: list[str] = []
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


@dataclass
class _Node(Generic[R]):
    literal: dict[str, _Node[R]] = field(default_factory=dict)
    parameter: _Node[R] | None = None
    route: R | None = None


class RouteTree(Generic[R]):
    """An app's parameterised routes, by their paths' segments."""

    def __init__(self, routes: Iterable[tuple[str, R]] = ()) -> None:
        self._root: _Node[R] = _Node()
        for path, route in routes:
            self.add(path, route)

    def add(self, path: str, route: R) -> None:
        node = self._root
        for part in path.strip("/").split("/"):
            if part.startswith(":"):
                # Names may differ between routes (`bind` reads each route's own).
                if node.parameter is None:
                    node.parameter = _Node()
                node = node.parameter
            else:
                node = node.literal.setdefault(part, _Node())
        node.route = route

    def match(self, path: str) -> R | None:
        """The route for a concrete path, or None."""
        return _walk(self._root, path.strip("/").split("/"), 0)


def _walk(node: _Node[R], parts: list[str], i: int) -> R | None:
    if i == len(parts):
        return node.route
    child = node.literal.get(parts[i])
    if child is not None and (found := _walk(child, parts, i + 1)) is not None:
        return found
    if node.parameter is not None:
        return _walk(node.parameter, parts, i + 1)
    return None


def bind(pattern: str, path: str) -> dict[str, str]:
    """The values of `pattern`'s `:name` segments in `path` (which it matches)."""
    names, values = pattern.strip("/").split("/"), path.strip("/").split("/")
    return {n[1:]: v for n, v in zip(names, values, strict=False) if n.startswith(":")}


def call_path(url: str, app: str) -> str:
    """The route path a call's URL names (`http://h/r/app/users/42?x` -> `/users/42`)."""
    path = clean_path(unquote(urlsplit(url).path))
    prefix = f"/r/{app}"
    return clean_path(path[len(prefix) :]) if path.startswith(prefix + "/") else path
