"""`executor serve --routes FILE`: apps and routes declared in a file, applied at start-up,
so that every executor of a fleet serves the same routes from the same file.

    apps:
      - name: demo
        config: {GREETING: hi}
        routes:
          - {path: /hello, image: executor/hello}
          - {path: /hot, image: executor/hello-stream, format: http-stream, min_warm: 2}

YAML, or JSON (YAML reads it too). The whole file is validated before anything changes.
Applying it is idempotent: an app or route missing is created, one that differs is
replaced (as PUT), one that matches is left as it is (its pool keeps its containers),
and apps and routes the file does not name are left alone unless `prune` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from executor.config import Settings
from executor.errors import BadSetting, ExecutorError
from executor.models import AppSpec, RouteSpec, parse_app, parse_route
from executor.registry import Registry


@dataclass(frozen=True, slots=True)
class DeclaredApp:
    spec: AppSpec
    routes: list[RouteSpec]


@dataclass(slots=True)
class Applied:
    """What applying the file changed, by kind: `app /path` or `app` names."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return ", ".join(
            f"{len(names)} {kind}"
            for kind, names in (
                ("created", self.created),
                ("updated", self.updated),
                ("unchanged", self.unchanged),
                ("deleted", self.deleted),
            )
        )


def read(path: Path, settings: Settings) -> list[DeclaredApp]:
    """The file's apps and routes, validated as the API validates them; BadSetting names
    the file and the place of the first error."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise BadSetting(f"routes file {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise BadSetting(f"routes file {str(path)!r}: not YAML or JSON: {exc}") from None
    return parse(document, str(path), settings)


def parse(document: Any, name: str, settings: Settings) -> list[DeclaredApp]:
    def fail(where: str, message: str) -> BadSetting:
        return BadSetting(f"routes file {name!r}: {where}: {message}")

    if not isinstance(document, dict) or set(document) != {"apps"}:
        raise fail("top level", 'expected a mapping with one key, "apps"')
    if not isinstance(document["apps"], list):
        raise fail("apps", "expected a list")
    declared: list[DeclaredApp] = []
    seen_apps: set[str] = set()
    for i, entry in enumerate(document["apps"]):
        where = f"apps[{i}]"
        if not isinstance(entry, dict):
            raise fail(where, "expected a mapping")
        routes = entry.get("routes", [])
        if not isinstance(routes, list):
            raise fail(f"{where}.routes", "expected a list")
        try:
            app = parse_app({k: v for k, v in entry.items() if k != "routes"}, settings)
        except ExecutorError as exc:
            raise fail(where, exc.message) from None
        if app.name in seen_apps:
            raise fail(where, f"app {app.name!r} is declared twice")
        seen_apps.add(app.name)
        specs: list[RouteSpec] = []
        for j, route in enumerate(routes):
            try:
                specs.append(parse_route(route, settings))
            except ExecutorError as exc:
                raise fail(f"{where}.routes[{j}]", exc.message) from None
        paths = [r.path for r in specs]
        twice = sorted({p for p in paths if paths.count(p) > 1})
        if twice:
            raise fail(f"{where}.routes", f"declared twice: {', '.join(twice)}")
        declared.append(DeclaredApp(app, specs))
    return declared


async def apply(registry: Registry, declared: list[DeclaredApp], prune: bool) -> Applied:
    """Makes the registry hold what is declared (see the module's docstring)."""
    applied = Applied()
    for entry in declared:
        name = entry.spec.name
        current = next((a for a in registry.apps() if a.name == name), None)
        if current is None:
            await registry.create_app(entry.spec.model_dump())
            applied.created.append(name)
        elif current.config != entry.spec.config:
            await registry.replace_app(entry.spec)
            applied.updated.append(name)
        else:
            applied.unchanged.append(name)
        existing = {r.path: r for r in registry.routes(name)}
        for spec in entry.routes:
            key = f"{name} {spec.path}"
            route = existing.pop(spec.path, None)
            if route is not None and route.spec == (spec.model_dump()):
                applied.unchanged.append(key)
                continue
            await registry.put_route(name, spec.path, spec.model_dump())
            (applied.created if route is None else applied.updated).append(key)
        if prune:
            for path in existing:
                await registry.delete_route(name, path)
                applied.deleted.append(f"{name} {path}")
    if prune:
        names = {entry.spec.name for entry in declared}
        for app in registry.apps():
            if app.name not in names:
                await registry.delete_app(app.name, force=True)
                applied.deleted.append(app.name)
    return applied
