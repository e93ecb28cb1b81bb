"""func.yaml: a function's folder described, as IronFunctions' `fn` reads it (no IO but
reading and writing the file).

IronFunctions' fields (`name`, `version`, `runtime`, `entrypoint`, `cmd`, `type`,
`memory`, `format`, `timeout`, `idle_timeout`, `headers`, `config`, `build`, `tests`,
`path`, `max_concurrency`, `jwt_key`) and the executor's own route fields (`min_warm`,
`max_containers`, `cpus`, `network`, `user`, `tmpfs_size`, `auth`, `retries`). The
route fields are checked as the API checks them (models.parse_route); an error names
the file, the line and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from executor.config import Settings
from executor.errors import InvalidInput
from executor.models import RouteSpec, parse_route

FILE_NAMES = ("func.yaml", "func.yml", "func.json")
OWN_FIELDS = ("name", "version", "runtime", "entrypoint", "cmd", "build", "tests", "path")
ROUTE_FIELDS = tuple(f for f in RouteSpec.model_fields if f not in ("path", "image"))
FIELDS = (*OWN_FIELDS, "max_concurrency", *ROUTE_FIELDS)
TEST_FIELDS = ("name", "in", "out", "err", "env")
# An image name: what `docker build -t` takes before the tag.
NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class FuncFileError(InvalidInput):
    """func.yaml does not say what it must: the message names its file, line and field."""


@dataclass(frozen=True)
class FuncTest:
    name: str
    input: str
    out: str | None  # expected standard output (the response body), or not checked
    err: str | None  # expected in the function's log (its standard error), or not checked
    env: dict[str, str]


@dataclass(frozen=True)
class FuncFile:
    file: Path
    name: str
    version: str
    runtime: str | None
    entrypoint: str | None
    cmd: str | None
    build: list[str]
    tests: list[FuncTest]
    path: str | None
    route: dict[str, Any] = field(default_factory=dict)  # the route fields it sets

    @property
    def folder(self) -> Path:
        return self.file.parent

    @property
    def image(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def route_path(self) -> str:
        """`path:`, else the name's last part: IronFunctions' `fn deploy` routes
        `myuser/hello` at `/hello`."""
        return self.path or "/" + self.name.rsplit("/", 1)[-1]

    def route_payload(self, image: str | None = None) -> dict[str, Any]:
        """The route's fields for the API (`PUT /v1/apps/{app}/routes{path}`)."""
        return {**self.route, "path": self.route_path, "image": image or self.image}


def find(folder: Path) -> Path | None:
    for name in FILE_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def load(file: Path, settings: Settings | None = None) -> FuncFile:
    """Reads and checks func.yaml (or func.json: YAML reads JSON)."""
    try:
        text = file.read_text()
    except OSError as exc:
        raise FuncFileError(f"{file}: {exc.strerror}") from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise FuncFileError(f"{file}{where}: not YAML: {problem}") from None
    lines = _lines(node)

    def fail(key: str, message: str) -> FuncFileError:
        return FuncFileError(f"{file}:{lines.get(key, 1)}: {key}: {message}")

    if not isinstance(data, dict):
        raise FuncFileError(f"{file}:1: expected a mapping of fields (name: ..., version: ...)")
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    if unknown:
        raise fail(unknown[0], f"unknown field (known: {', '.join(FIELDS)})")
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise fail("name", "required: an image name (lower case, e.g. hello or myuser/hello)")
    version = str(data.get("version", "0.0.1"))
    if not VERSION.match(version):
        raise fail("version", f"{version!r} is not a version (MAJOR.MINOR.PATCH)")
    strings = {}
    for key in ("runtime", "entrypoint", "cmd", "path"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(key, "must be a string")
        strings[key] = value
    build = data.get("build") or []
    if not isinstance(build, list) or not all(isinstance(c, str) for c in build):
        raise fail("build", "must be a list of shell commands")
    route = {k: v for k, v in data.items() if k in ROUTE_FIELDS or k == "max_concurrency"}
    try:
        parse_route({**route, "path": strings["path"] or "/x", "image": "x"},
                              settings or Settings())  # fmt: skip
    except InvalidInput as exc:
        key, _, message = exc.message.removeprefix("route.").partition(": ")
        key = key.split(".")[0]
        raise fail(key if key in data else "path", message or exc.message) from None
    if strings["path"] is None and not NAME.match(name.rsplit("/", 1)[-1]):
        raise fail("name", "its last part must do as a route path, or set path")
    tests = _tests(data.get("tests"), fail)
    return FuncFile(file, name, version, strings["runtime"], strings["entrypoint"],
                    strings["cmd"], build, tests, strings["path"], route)  # fmt: skip


def _tests(value: Any, fail) -> list[FuncTest]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail("tests", "must be a list of tests (name, in, out, err, env)")
    tests = []
    for n, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise fail("tests", f"tests[{n}]: must be a mapping (name, in, out, err, env)")
        unknown = sorted(str(k) for k in entry if k not in TEST_FIELDS)
        if unknown:
            known = ", ".join(TEST_FIELDS)
            raise fail("tests", f"tests[{n}].{unknown[0]}: unknown (known: {known})")
        env = entry.get("env") or {}
        if not isinstance(env, dict):
            raise fail("tests", f"tests[{n}].env: must be a mapping of variables")
        tests.append(FuncTest(
            name=str(entry.get("name") or f"test {n + 1}"),
            input=_text(entry.get("in")),
            out=None if entry.get("out") is None else _text(entry["out"]),
            err=None if entry.get("err") is None else _text(entry["err"]),
            env={str(k): str(v) for k, v in env.items()},
        ))  # fmt: skip
    return tests


def _text(value: Any) -> str:
    """A test's `in` or `out`: a string as it is; a mapping or list as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    import orjson

    return orjson.dumps(value).decode()


def _lines(node: Any) -> dict[str, int]:
    """Each top-level key's line (1-based), from the YAML node tree."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


def write(folder: Path, fields: dict[str, Any]) -> Path:
    file = folder / "func.yaml"
    file.write_text(yaml.safe_dump(fields, sort_keys=False))
    return file


def bump(file: Path) -> str:
    """The patch version raised by one, in the file itself (IronFunctions' `fn bump`); the
    rest of the file (comments, order) is kept."""
    text = file.read_text()
    data = yaml.safe_load(text) or {}
    old = str(data.get("version", "0.0.1"))
    if not VERSION.match(old):
        raise FuncFileError(f"{file}: version: {old!r} is not a version (MAJOR.MINOR.PATCH)")
    major, minor, patch = (int(p) for p in old.split("."))
    new = f"{major}.{minor}.{patch + 1}"
    if re.search(r"^version:.*$", text, re.M):
        text = re.sub(r"^version:.*$", f"version: {new}", text, count=1, flags=re.M)
    else:
        text = f"version: {new}\n" + text
    file.write_text(text)
    return new
