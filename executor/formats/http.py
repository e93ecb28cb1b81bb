"""The `http` format (IronFunctions' hot format): HTTP/1.1 over the container's stdin and
stdout, which stay open between calls. Protocol logic only (no IO): the container's
environment, the bytes of one request, and what its response head means for the caller.

Each call is one request written to stdin, always with a `Content-Length` (the function
reads that many bytes: `http.ReadRequest` and `Content-Length` is IronFunctions' own
example), and one response read from stdout, which must carry a `Content-Length` too (or
be chunked). stderr is the call's log. The request carries the caller's method, URL
path, query and headers, and, as IronFunctions sent its environment, the call's
variables as headers (`REQUEST_URL`, `ROUTE`, `METHOD`, `APP_NAME`, `CALL_ID`,
`PARAM_<X>`) with `Task-ID` (IronFunctions' name for the call id).
"""

from __future__ import annotations

from executor.calls import HOP_BY_HOP, Call
from executor.formats.environment import call_variables, with_config
from executor.formats.http_stream import NOT_FROM_FUNCTION, Answer, check_status
from executor.models import App, Route


def environment(app: App, route: Route) -> dict[str, str]:
    """A container's variables (Fn's and IronFunctions' names), then the app's config,
    then the route's, keys upper-cased."""
    env = {
        "FN_FORMAT": "http",
        "FN_APP_NAME": app.name,
        "FN_PATH": route.path,
        "FN_MEMORY": str(route.memory),
        "FN_TYPE": route.type,
        "APP_NAME": app.name,
        "ROUTE": route.path,
    }
    return with_config(env, app, route)


def call_head(call: Call) -> bytes:
    """The head of one call's request, for the path and query the caller sent."""
    headers = call.headers
    target = "/" + call.url.split("/", 3)[3]  # the URL without its scheme and host
    lines = [f"{call.method} {target} HTTP/1.1", f"Content-Length: {len(call.body)}"]
    if not any(name.lower() == "host" for name, _ in headers):
        lines.append("Host: localhost")
    for name, value in headers:
        lower = name.lower()
        if lower not in HOP_BY_HOP and lower != "content-length":
            lines.append(f"{name}: {value}")
    lines.append(f"Task-ID: {call.id}")
    # The caller's headers are there as themselves: not again as HEADER_*.
    variables = {k: v for k, v in call_variables(call).items() if not k.startswith("HEADER_")}
    # A parameter's value comes decoded from the URL: one with a line break would end
    # the head early, so it is left out.
    lines += [f"{k}: {v}" for k, v in variables.items() if "\r" not in v and "\n" not in v]
    lines.append("\r\n")
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: this gives them back.
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


def interpret(status: int, headers: list[tuple[bytes, bytes]]) -> Answer:
    """The function's own response is the caller's: its status (200-599) and headers,
    but those that frame the message, which the executor sets."""
    check_status(status, f"response status {status}")
    out = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in headers
        if name.decode("latin-1").lower() not in NOT_FROM_FUNCTION
    ]
    return Answer(status, out, "ok")
