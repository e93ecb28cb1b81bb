"""Variables every format gives a function, as IronFunctions named them (protocol logic
only): per call REQUEST_URL, ROUTE, METHOD, APP_NAME, CALL_ID, HEADER_<X>, PARAM_<X>;
and config keys upper-cased. The `default` format puts them in the environment, `http`
sends the per-call ones as request headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from executor.calls import Call
from executor.models import App, Route

_NOT_ENV = re.compile(r"[^A-Z0-9_]")


def env_name(name: str) -> str:
    """A header's or parameter's name as a variable: upper case, others to `_`."""
    return _NOT_ENV.sub("_", name.upper())


def config_env(config: dict[str, str]) -> dict[str, str]:
    """App or route config as the function sees it: keys upper-cased (IronFunctions')."""
    return {name.upper(): value for name, value in config.items()}


def with_config(env: dict[str, str], app: App, route: Route) -> dict[str, str]:
    """`env`, then the app's config, then the route's (later ones win), upper-cased."""
    env.update(config_env(app.config))
    env.update(config_env(route.config))
    return env


def call_variables(call: Call) -> dict[str, str]:
    """IronFunctions' per-call variables. A repeated header is one value, its values
    joined by ", " (as HTTP allows)."""
    env = {
        "APP_NAME": call.app.name,
        "ROUTE": call.route.path,
        "METHOD": call.method,
        "REQUEST_URL": call.url,
        "CALL_ID": call.id,
    }
    add_headers(env, "HEADER_", call.headers)
    for name, value in call.params.items():
        env["PARAM_" + env_name(name)] = value
    return env


def add_headers(env: dict[str, str], prefix: str, headers: Iterable[tuple[str, str]]) -> None:
    for name, value in headers:
        key = prefix + env_name(name)
        # A repeated header becomes one comma-separated value, as HTTP allows.
        env[key] = f"{env[key]}, {value}" if key in env else value
