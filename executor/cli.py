"""`executor`: serve, and a thin client of the HTTP API for apps, routes and calls."""

from __future__ import annotations

import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from executor.config import Settings

if TYPE_CHECKING:
    from executor.autoscale import Scrape

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
apps_cli = typer.Typer(no_args_is_help=True, help="Manage apps.")
routes_cli = typer.Typer(no_args_is_help=True, help="Manage routes.")
cli.add_typer(apps_cli, name="apps")
cli.add_typer(routes_cli, name="routes")

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="EXECUTOR_URL", help="The executor's address.", show_default=True),
]
DEFAULT_URL = "http://127.0.0.1:8080"


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [8080].")] = None,
    db: Annotated[
        str | None,
        typer.Option(help="SQLite file or postgresql:// URL [./data/executor.db]."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="This node's own folder beside a shared db [./data].")
    ] = None,
    docker_url: Annotated[str | None, typer.Option(help="Docker engine address.")] = None,
    log_level: Annotated[
        str, typer.Option(envvar="EXECUTOR_LOG_LEVEL", help="debug, info, warning, error.")
    ] = "info",
    routes: Annotated[
        Path | None,
        typer.Option(help="Apps and routes to create or update at start-up (YAML or JSON)."),
    ] = None,
    prune: Annotated[
        bool, typer.Option(help="With --routes: delete the apps and routes it does not name.")
    ] = False,
) -> None:
    """Run the executor's HTTP server."""
    import uvloop
    from aiohttp import web

    from executor import logs
    from executor.app import create_app
    from executor.errors import BadSetting, StoreLocked

    overrides = {
        "host": host,
        "port": port,
        "db": db,
        "data_dir": data_dir,
        "docker_url": docker_url,
        "routes_file": routes,
        "routes_prune": prune or None,
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    logs.configure(log_level, settings.log_format)
    try:
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            loop=uvloop.new_event_loop(),
            access_log_class=logs.AccessLogger,
            access_log=logging.getLogger("executor.access") if settings.access_log else None,
            # Calls in flight get shutdown_grace (see app._drain); then a moment to answer.
            shutdown_timeout=settings.shutdown_grace + 5,
            print=lambda msg: logging.getLogger("executor").info(msg.strip()),
        )
    except (StoreLocked, BadSetting) as exc:
        typer.echo(f"executor: {exc}", err=True)
        raise typer.Exit(1) from None


@apps_cli.command("create")
def apps_create(
    name: str,
    config: Annotated[list[str] | None, typer.Option("--config", help="KEY=VALUE")] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Create an app."""
    _show(_request(url, "POST", "/v1/apps", {"app": {"name": name, "config": _pairs(config)}}))


@apps_cli.command("list")
def apps_list(url: UrlOption = DEFAULT_URL) -> None:
    """List apps."""
    for app in _request(url, "GET", "/v1/apps")["apps"]:
        typer.echo(app["name"])


@apps_cli.command("delete")
def apps_delete(
    name: str,
    force: Annotated[bool, typer.Option(help="Delete its routes too.")] = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Delete an app."""
    suffix = "?force=true" if force else ""
    _show(_request(url, "DELETE", f"/v1/apps/{name}{suffix}"))


@routes_cli.command("create")
def routes_create(
    app: str,
    path: str,
    image: str,
    format: Annotated[str | None, typer.Option(help="default, http or http-stream")] = None,
    type: Annotated[str | None, typer.Option(help="sync or async")] = None,
    memory: Annotated[int | None, typer.Option(help="MiB")] = None,
    timeout: Annotated[int | None, typer.Option(help="seconds")] = None,
    min_warm: Annotated[int | None, typer.Option(help="containers kept ready")] = None,
    max_containers: Annotated[int | None, typer.Option(help="containers at most")] = None,
    idle_timeout: Annotated[str | None, typer.Option(help="seconds, or auto")] = None,
    config: Annotated[list[str] | None, typer.Option("--config", help="KEY=VALUE")] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Create a route (PUT: created, or replaced if it exists)."""
    fields = {"image": image, "format": format, "type": type, "memory": memory}
    fields |= {"timeout": timeout, "min_warm": min_warm, "max_containers": max_containers}
    if idle_timeout is not None:
        fields["idle_timeout"] = int(idle_timeout) if idle_timeout.isdigit() else idle_timeout
    fields |= {"config": _pairs(config) if config else None}
    route = {k: v for k, v in fields.items() if v is not None}
    _show(_request(url, "PUT", f"/v1/apps/{app}/routes/{path.lstrip('/')}", {"route": route}))


@routes_cli.command("list")
def routes_list(app: str, url: UrlOption = DEFAULT_URL) -> None:
    """List an app's routes."""
    for route in _request(url, "GET", f"/v1/apps/{app}/routes")["routes"]:
        typer.echo(f"{route['path']}\t{route['image']}\t{route['format']}")


@routes_cli.command("delete")
def routes_delete(app: str, path: str, url: UrlOption = DEFAULT_URL) -> None:
    """Delete a route."""
    _show(_request(url, "DELETE", f"/v1/apps/{app}/routes/{path.lstrip('/')}"))


@cli.command()
def call(
    app: str,
    path: str,
    method: Annotated[str, typer.Option(help="HTTP method.")] = "POST",
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Call a route: standard input is the body, the response goes to standard output."""
    body = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    status, data = _send(url, method, f"/r/{app}/{path.lstrip('/')}", body)
    if status >= 400:
        typer.echo(f"executor: HTTP {status}: {_error_message(data)}", err=True)
        raise typer.Exit(1)
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@cli.command()
def calls(
    app: str,
    route: Annotated[str | None, typer.Option(help="Only this route's calls.")] = None,
    state: Annotated[str | None, typer.Option(help="success, error, timeout, ...")] = None,
    start: Annotated[str | None, typer.Option(help="cold, warm, fresh or none.")] = None,
    since: Annotated[str | None, typer.Option(help="RFC 3339 time or unix seconds.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 30,
    json: Annotated[bool, typer.Option("--json", help="The records as JSON.")] = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """List an app's call records, newest first."""
    filters = {"route": route, "state": state, "start": start, "since": since}
    query = {k: v for k, v in filters.items() if v is not None}
    records: list[dict[str, Any]] = []
    cursor = None
    while len(records) < limit:
        page = {**query, "per_page": str(min(100, limit - len(records)))}
        if cursor:
            page["cursor"] = cursor
        data = _request(url, "GET", f"/v1/apps/{app}/calls?{urllib.parse.urlencode(page)}")
        records += data["calls"]
        cursor = data["next_cursor"]
        if not cursor:
            break
    if json:
        _show(records)
        return
    columns = ("id", "route", "state", "http_status", "start", "wait_ms", "exec_ms", "created_at")
    typer.echo("\t".join(columns))
    for record in records:
        typer.echo("\t".join("-" if record[c] is None else str(record[c]) for c in columns))


@cli.command()
def logs(call_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Print a call's captured log (a cold call's stderr, a hot call's output lines)."""
    data = _request(url, "GET", f"/v1/calls/{urllib.parse.quote(call_id)}/log")
    sys.stdout.write(data["log"]["log"])
    sys.stdout.flush()


@cli.command()
def autoscale(
    nodes: Annotated[
        list[str], typer.Argument(help="Every node's own address (not the balancer's).")
    ],
    interval: Annotated[float, typer.Option(help="Seconds between the two scrapes.")] = 10.0,
    add_above_ms: Annotated[float, typer.Option(help="Add a node above this wait p99.")] = 100.0,
    remove_below_ms: Annotated[
        float, typer.Option(help="Remove a node below this wait p99 (and load).")
    ] = 10.0,
    node_concurrency: Annotated[
        float, typer.Option(help="Calls in flight one node serves without waiting.")
    ] = 8.0,
    min_nodes: Annotated[int, typer.Option(help="Never fewer.")] = 1,
    max_nodes: Annotated[int, typer.Option(help="Never more.")] = 9,
    count: Annotated[bool, typer.Option("--count", help="Print only the nodes wanted.")] = False,
) -> None:
    """Read every node's wait twice, an interval apart, and say how many nodes the fleet
    wants: one more, one fewer, or as many (docs/scaling.md "Scaling by wait")."""
    import time

    from executor.autoscale import Policy, Window, decide

    policy = Policy(add_above_ms / 1000, remove_below_ms / 1000, node_concurrency,
                    min_nodes, max_nodes)  # fmt: skip
    first = {url: _scrape(url) for url in nodes}
    began = time.monotonic()
    time.sleep(interval)
    then = {url: _scrape(url) for url in nodes}
    seconds = time.monotonic() - began
    windows = {}
    for url in nodes:
        if first[url] is None or then[url] is None:
            typer.echo(f"executor: {url} did not answer; not counted", err=True)
            continue
        windows[url] = Window.between(first[url], then[url], seconds)
    decision = decide(list(windows.values()), policy)
    change = f"{decision.nodes} -> {decision.wanted} nodes"
    line = f"{decision.action}: {change} ({decision.reason})"
    if count:  # the count for a script, the reason for its log
        typer.echo(line, err=True)
        typer.echo(str(decision.wanted))
        return
    typer.echo("node\tcalls\twait_p99_ms\tload\t503s")
    for url, w in windows.items():
        typer.echo(f"{url}\t{w.calls:.0f}\t{w.wait_p99 * 1000:.1f}\t{w.load:.1f}\t{w.too_busy:.0f}")
    typer.echo(line)


def _scrape(url: str) -> Scrape | None:
    from executor.autoscale import Scrape

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=5) as response:
            return Scrape.parse(response.read().decode())
    except (OSError, ValueError):
        return None


# -- the function workflow: init, build, deploy, run, test (workflow.py) -----------------

FolderOption = Annotated[Path, typer.Option("--folder", "-C", help="The function's folder.")]


def _funcfile(folder: Path):
    from executor import funcfile
    from executor.workflow import WorkflowError, folders

    try:
        return funcfile.load(folders(folder, every=False)[0])
    except (WorkflowError, funcfile.FuncFileError) as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    typer.echo(f"executor: {message}", err=True)
    raise typer.Exit(1)


@cli.command()
def init(
    name: Annotated[str | None, typer.Argument(help="The image name [the folder's].")] = None,
    runtime: Annotated[
        str | None, typer.Option(help="go, python, node or shell [guessed from func.*].")
    ] = None,
    format: Annotated[str, typer.Option(help="default, http-stream or http.")] = "default",
    folder: FolderOption = Path("."),
) -> None:
    """Write func.yaml in a folder, and a hello function when it has no code yet."""
    from executor.workflow import WorkflowError
    from executor.workflow import init as init_folder

    if format not in ("default", "http-stream", "http"):
        _fail(f"--format: {format!r} is not default, http-stream or http")
    try:
        written = init_folder(folder, name, runtime, format)
    except WorkflowError as exc:
        _fail(str(exc))
    for path in written:
        typer.echo(f"wrote {path}")


BuildArgOption = Annotated[
    list[str] | None,
    typer.Option("--build-arg", help="ARG=VALUE for the Dockerfile (BASE=python:3.11-slim)."),
]


def _build(ff, docker_url: str | None, build_args: list[str] | None = None) -> None:
    import asyncio

    from executor.workflow import WorkflowError, build

    def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    typer.echo(f"building {ff.image} from {ff.folder}")
    try:
        asyncio.run(build(ff, show, docker_url, _pairs(build_args)))
    except WorkflowError as exc:
        _fail(str(exc))
    typer.echo(f"built {ff.image} (and {ff.name}:latest)")


@cli.command()
def build(
    folder: FolderOption = Path("."),
    build_arg: BuildArgOption = None,
    docker_url: Annotated[str | None, typer.Option(help="Docker engine address.")] = None,
) -> None:
    """Build the function's image (name:version and name:latest) on the engine."""
    _build(_funcfile(folder), docker_url, build_arg)


@cli.command()
def deploy(
    folder: FolderOption = Path("."),
    app: Annotated[str | None, typer.Option(help="The app [the folder's name].")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every func.yaml under the folder.")] = False,
    bump: Annotated[bool, typer.Option("--bump", help="Raise the patch version first.")] = False,
    registry: Annotated[
        str | None, typer.Option(help="Push name:version there, and route to it.")
    ] = None,
    build_arg: BuildArgOption = None,
    docker_url: Annotated[str | None, typer.Option(help="Docker engine address.")] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Build each function, then create or update its route; prints the URL to call."""
    import asyncio

    from executor import funcfile
    from executor.workflow import WorkflowError, folders, push

    app = app or folder.resolve().name
    try:
        files = folders(folder, every)
    except WorkflowError as exc:
        _fail(str(exc))
    status, data = _send(url, "POST", "/v1/apps", orjson.dumps({"app": {"name": app}}))
    if status not in (200, 201, 409):
        _fail(f"app {app!r}: HTTP {status}: {_error_message(data)}")
    for file in files:
        try:
            if bump:
                typer.echo(f"{file}: version {funcfile.bump(file)}")
            ff = funcfile.load(file)
        except funcfile.FuncFileError as exc:
            _fail(str(exc))
        _build(ff, docker_url, build_arg)
        image = ff.image
        if registry:
            try:
                image = asyncio.run(push(ff, registry, sys.stdout.write, docker_url))
            except WorkflowError as exc:
                _fail(str(exc))
        path = ff.route_path
        body = orjson.dumps({"route": ff.route_payload(image)})
        status, data = _send(url, "PUT", f"/v1/apps/{app}/routes{path}", body)
        if status >= 400:
            _fail(f"route {app}{path}: HTTP {status}: {_error_message(data)}")
        typer.echo(f"deployed {image} at {url.rstrip('/')}/r/{app}{path}")


@cli.command()
def run(
    folder: FolderOption = Path("."),
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE for the function.")
    ] = None,
) -> None:
    """Run the built function once with its route's limits, no server needed: standard
    input is the call's body, the answer goes to standard output, its log to standard
    error. Exit 1 when the call fails."""
    import asyncio

    from executor.workflow import run_once

    ff = _funcfile(folder)
    body = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    answer = asyncio.run(run_once(ff, body, _pairs(env)))
    sys.stderr.buffer.write(answer.log)
    sys.stdout.buffer.write(answer.body)
    sys.stdout.flush()
    if answer.status >= 400:
        _fail(f"HTTP {answer.status}")


@cli.command("test")
def test_function(
    folder: FolderOption = Path("."),
    remote: Annotated[
        str | None, typer.Option(help="APP: through its deployed route instead.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Run func.yaml's tests: a pass/fail line each, exit 1 when one fails."""
    import asyncio

    from executor.workflow import Answer, run_tests

    ff = _funcfile(folder)
    if not ff.tests:
        _fail(f"{ff.file}: no tests")
    remote_call = None
    if remote is not None:

        async def remote_call(test):
            if test.env:
                typer.echo(f"  ({test.name}: env is ignored with --remote)", err=True)
            status, data = await asyncio.to_thread(
                _send, url, "POST", f"/r/{remote}{ff.route_path}", test.input.encode()
            )
            return Answer(status, data, b"")

    results = asyncio.run(run_tests(ff, remote_call))
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        typer.echo(f"{mark}  {result.test.name}" + ("" if result.passed else f": {result.why}"))
    failed = sum(not r.passed for r in results)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


# -- the HTTP client ------------------------------------------------------------------


def _send(url: str, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url.rstrip("/") + path, data=body, method=method)
    if os.environ.get("EXECUTOR_API_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['EXECUTOR_API_TOKEN']}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except urllib.error.URLError as exc:
        typer.echo(f"executor: cannot reach {url}: {exc.reason}", err=True)
        raise typer.Exit(2) from None


def _request(url: str, method: str, path: str, payload: Any = None) -> Any:
    body = orjson.dumps(payload) if payload is not None else None
    status, data = _send(url, method, path, body)
    if status >= 400:
        typer.echo(f"executor: HTTP {status}: {_error_message(data)}", err=True)
        raise typer.Exit(1)
    return orjson.loads(data)


def _error_message(data: bytes) -> str:
    try:
        return orjson.loads(data)["error"]["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return data.decode(errors="replace")


def _pairs(items: list[str] | None) -> dict[str, str]:
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE")
        result[key] = value
    return result


def _show(data: Any) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def main() -> None:
    cli()
