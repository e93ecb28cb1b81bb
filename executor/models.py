"""Apps and routes: their fields, defaults and validation (no IO here).

Types and unknown fields are checked by pydantic; bounds come from `Settings`, so they are
checked after parsing by `check_app` / `check_route`, each error naming its field.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from executor.config import Settings
from executor.errors import InvalidInput

APP_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,30}$")
# Segments of [A-Za-z0-9._-] (not "." or ".."), or `:name` parameters (IronFunctions').
ROUTE_PATH_RE = re.compile(r"^(/((?!\.\.?(/|$))[A-Za-z0-9._-]+|:[A-Za-z_][A-Za-z0-9_]*))+$")
ROUTE_PATH_MAX = 255
# Config keys: any case (IronFunctions'), exposed to the function upper-cased.
CONFIG_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The formats whose containers are kept between calls (a hot pool).
HOT_FORMATS = frozenset({"http-stream", "http"})
# What the API shows of a route's jwt_key (and takes back as "unchanged").
JWT_KEY_SHOWN = "********"
# RFC 9110 token characters.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# A Docker image reference, loosely: registry/name:tag or @digest. The engine decides.
IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")
USER_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}(:[A-Za-z0-9_.-]{1,32})?$")
CONFIG_VALUE_MAX = 32 * 1024
# Route `headers` may not set these: they frame the response (its length, its encoding
# on the wire, the connection's fate), which is the server's to decide. One of them from
# a route could desynchronise the caller's connection (response splitting).
FRAMING_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)

# Set by the server: accepted in a payload (so a GET can be sent back) and ignored.
APP_READ_ONLY = frozenset({"id", "created_at", "updated_at"})
ROUTE_READ_ONLY = frozenset({"id", "app_name", "created_at", "updated_at", "pool"})

M = TypeVar("M", bound=BaseModel)


def rfc3339(moment: datetime) -> str:
    """A UTC datetime as RFC 3339 with milliseconds and a Z (timestamps, FN_DEADLINE)."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AppSpec(_Strict):
    name: str
    config: dict[str, str] = {}


class App(AppSpec):
    id: str
    created_at: str
    updated_at: str


class RouteSpec(_Strict):
    path: str
    image: str
    format: Literal["default", "http-stream", "http"] = "default"
    type: Literal["sync", "async"] = "sync"
    memory: int = 128
    cpus: float | None = None
    timeout: int = 30
    # Seconds, or "auto": kept by the route's rhythm (executor/pool/rhythm.py).
    idle_timeout: int | Literal["auto"] = 30
    min_warm: int = 0
    max_containers: int = 8
    config: dict[str, str] = {}
    headers: dict[str, list[str]] = {}
    network: Literal["none", "bridge"] = "none"
    user: str | None = None
    tmpfs_size: int = 64
    auth: Literal["none", "token"] = "none"
    retries: int = 0
    # IronFunctions' per-route authentication: calls need a JWT signed (HS256) with it.
    jwt_key: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _min_warm_follows_format(cls, data: Any) -> Any:
        # Hot routes keep one container hot by default; default-format ones pre-start
        # none unless asked (each idle one holds its memory).
        if isinstance(data, dict) and data.get("min_warm") is None:
            hot = isinstance(data.get("format"), str) and data["format"] in HOT_FORMATS
            data = {**data, "min_warm": 1 if hot else 0}
        return data

    @field_validator("idle_timeout", mode="before")
    @classmethod
    def _seconds_or_auto(cls, value: Any) -> Any:
        if value != "auto" and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError("must be seconds (an integer) or 'auto'")
        return value

    @model_validator(mode="before")
    @classmethod
    def _max_concurrency_is_max_containers(cls, data: Any) -> Any:
        # IronFunctions' name for the per-route container cap; 0 is its "not set".
        if not isinstance(data, dict) or "max_concurrency" not in data:
            return data
        data = dict(data)
        value = data.pop("max_concurrency")
        if value is None or (isinstance(value, int) and value == 0):
            return data
        if data.get("max_containers", value) != value:
            raise ValueError("max_concurrency and max_containers differ: they are one field")
        data["max_containers"] = value
        return data

    @property
    def hot(self) -> bool:
        """Whether its containers are kept between calls (a hot pool serves it)."""
        return self.format in HOT_FORMATS

    @property
    def parameters(self) -> list[str]:
        """The names of its `:name` segments, in order."""
        return [part[1:] for part in self.path.split("/") if part.startswith(":")]

    @field_validator("headers", mode="before")
    @classmethod
    def _header_values_as_lists(cls, value: Any) -> Any:
        # IronFunctions takes {"Name": ["v1", "v2"]}; a single string is accepted too.
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("cpus", mode="before")
    @classmethod
    def _cpus_may_be_whole(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


class Route(RouteSpec):
    id: str
    app_name: str
    created_at: str
    updated_at: str

    @property
    def spec(self) -> dict[str, Any]:
        """The route's own fields (what a client sets), without its identity and times."""
        return self.model_dump(include=set(RouteSpec.model_fields))


def parse_app(payload: Any, settings: Settings) -> AppSpec:
    return check_app(_parse(AppSpec, payload, "app", APP_READ_ONLY), settings)


def parse_route(payload: Any, settings: Settings) -> RouteSpec:
    unset = isinstance(payload, dict) and payload.get("idle_timeout") is None
    if settings.idle_timeout_auto and unset:
        payload = {**payload, "idle_timeout": "auto"}  # the server's default is "auto"
    return check_route(_parse(RouteSpec, payload, "route", ROUTE_READ_ONLY), settings)


def _parse(model: type[M], payload: Any, what: str, read_only: frozenset) -> M:
    if not isinstance(payload, dict):
        raise InvalidInput(f"{what}: expected a JSON object")
    fields = {k: v for k, v in payload.items() if k not in read_only}
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(exc, what)) from None


def describe_validation_error(exc: ValidationError, what: str) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    unknown = [str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        return f"{what}: unknown field(s): {', '.join(sorted(unknown))}"
    first = errors[0]
    field = ".".join(str(part) for part in (what, *first["loc"]))
    message = first["msg"]
    if first["type"] == "missing":
        message = "is required"
    return f"{field}: {message}"


def check_app(app: AppSpec, settings: Settings) -> AppSpec:
    if not APP_NAME_RE.fullmatch(app.name):
        raise InvalidInput("app.name: must match ^[A-Za-z0-9_-]{1,30}$")
    _check_config(app.config, "app.config")
    return app


def check_route(route: RouteSpec, s: Settings) -> RouteSpec:
    if len(route.path) > ROUTE_PATH_MAX or not ROUTE_PATH_RE.fullmatch(route.path):
        raise InvalidInput(
            "route.path: must be /segment[/segment...] of [A-Za-z0-9._-], no '.' or '..' "
            f"segments, at most {ROUTE_PATH_MAX} characters"
        )
    if not IMAGE_RE.fullmatch(route.image):
        raise InvalidInput("route.image: not a valid image reference")
    _check_range("route.memory", route.memory, s.memory_min, s.memory_max, "MiB")
    if route.cpus is not None and not 0.01 <= route.cpus <= s.cpus_max:
        raise InvalidInput(f"route.cpus: must be between 0.01 and {s.cpus_max:g}")
    timeout_max = s.timeout_max_async if route.type == "async" else s.timeout_max_sync
    _check_range("route.timeout", route.timeout, 1, timeout_max, f"seconds for {route.type}")
    if route.idle_timeout != "auto":
        idle_max = s.idle_timeout_max
        _check_range("route.idle_timeout", route.idle_timeout, 1, idle_max, "seconds or 'auto'")
    _check_range("route.max_containers", route.max_containers, 1, s.max_containers_max)
    _check_range("route.min_warm", route.min_warm, 0, route.max_containers, "(max_containers)")
    _check_config(route.config, "route.config")
    for name, values in route.headers.items():
        if not HEADER_NAME_RE.fullmatch(name):
            raise InvalidInput(f"route.headers: {name!r} is not a valid header name")
        if name.lower() in FRAMING_HEADERS:
            raise InvalidInput(f"route.headers: {name!r} frames the response: not allowed")
        if any(has_control(v) for v in values):
            raise InvalidInput(f"route.headers.{name}: control characters are not allowed")
    if route.user is not None and not USER_RE.fullmatch(route.user):
        raise InvalidInput("route.user: must be user[:group], names or numeric ids")
    _check_range("route.tmpfs_size", route.tmpfs_size, 1, s.tmpfs_max, "MiB")
    _check_range("route.retries", route.retries, 0, s.retries_max)
    if route.retries and route.type != "async":
        raise InvalidInput("route.retries: only async routes are retried")
    if route.auth == "token" and not s.api_token:
        raise InvalidInput("route.auth: 'token' needs the executor's EXECUTOR_API_TOKEN set")
    if route.jwt_key is not None and route.auth == "token":
        raise InvalidInput("route.jwt_key: not with auth 'token' (both are Authorization)")
    if route.jwt_key is not None and not 1 <= len(route.jwt_key) <= 4096:
        raise InvalidInput("route.jwt_key: from 1 to 4096 characters")
    if route.jwt_key is not None and set(route.jwt_key) == {"*"}:
        raise InvalidInput(f"route.jwt_key: {JWT_KEY_SHOWN!r} stands for the key already set")
    names = route.parameters
    if len(set(names)) != len(names):
        raise InvalidInput("route.path: a parameter name appears twice")
    return route


def _check_range(field: str, value: float, low: float, high: float, unit: str = "") -> None:
    if not low <= value <= high:
        suffix = f" {unit}" if unit else ""
        raise InvalidInput(f"{field}: must be between {low} and {high}{suffix} (got {value})")


def _check_config(config: dict[str, str], field: str) -> None:
    seen: dict[str, str] = {}
    for name, value in config.items():
        if not CONFIG_KEY_RE.fullmatch(name):
            raise InvalidInput(f"{field}: {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
        upper = name.upper()
        if upper.startswith("FN_"):
            raise InvalidInput(f"{field}: {name!r}: names starting with FN_ are reserved")
        if upper in seen:
            raise InvalidInput(
                f"{field}: {seen[upper]!r} and {name!r} are one variable ({upper}) to the function"
            )
        seen[upper] = name
        if "\x00" in value or len(value) > CONFIG_VALUE_MAX:
            raise InvalidInput(f"{field}.{name}: no NUL, at most {CONFIG_VALUE_MAX} characters")


def has_control(value: str) -> bool:
    return any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value)
