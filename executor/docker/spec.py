"""Pure builders: from an app, a route and a call to the container-create body.

Nothing here talks to Docker; everything here is unit tested.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from executor.docker.engine import ImageInfo
from executor.formats.default import LAUNCHER_PATH
from executor.models import App, Route

MiB = 1024 * 1024
NOBODY = "65534:65534"
ROOT_USERS = {"", "root", "0", "0:0", "root:root", "root:0", "0:root"}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who owns a container: this executor's group (its database) and process."""

    group: str
    instance: str


def labels(
    identity: Identity, app: str, route: str, kind: str, call_id: str | None = None
) -> dict[str, str]:
    result = {
        "executor.managed": "true",
        "executor.group": identity.group,
        "executor.instance": identity.instance,
        "executor.app": app,
        "executor.route": route,
        "executor.kind": kind,
    }
    if call_id is not None:
        result["executor.call"] = call_id
    return result


def container_user(route: Route, image: ImageInfo) -> str:
    """The route's user, else the image's USER unless it is root, else nobody."""
    if route.user:
        return route.user
    if image.user.strip() in ROOT_USERS:
        return NOBODY
    return image.user


# Open files per container process (AWS Lambda's bound): enough for any function, and
# no function can take the host's file table.
NOFILE = 1024


def host_config(route: Route, pids_limit: int, *, log_driver: str) -> dict[str, Any]:
    memory = route.memory * MiB
    config: dict[str, Any] = {
        "NetworkMode": route.network,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "ReadonlyRootfs": True,
        "Tmpfs": {"/tmp": f"rw,nosuid,nodev,size={route.tmpfs_size}m,mode=1777"},
        "PidsLimit": pids_limit,
        "Ulimits": [{"Name": "nofile", "Soft": NOFILE, "Hard": NOFILE}],
        "Memory": memory,
        "MemorySwap": memory,
        "LogConfig": {"Type": log_driver, "Config": {}},
    }
    if route.cpus is not None:
        config["NanoCpus"] = round(route.cpus * 1e9)
    return config


def cold_container(
    *,
    identity: Identity,
    app: App,
    route: Route,
    image: ImageInfo,
    call_id: str,
    env: dict[str, str],
    pids_limit: int,
) -> dict[str, Any]:
    """A `default`-format container: stdin attached once, output captured by attach."""
    body = _container(identity, app, route, image, env, pids_limit, "cold", call_id)
    body.update(Image=route.image, AttachStdin=True, OpenStdin=True, StdinOnce=True)
    return body


def prestart_container(
    *,
    identity: Identity,
    app: App,
    route: Route,
    image: ImageInfo,
    env: dict[str, str],
    pids_limit: int,
    launcher: str,
) -> dict[str, Any]:
    """A pre-started `default` container: started before its call, waiting in the
    launcher (`launcher`, its host path, bind-mounted read-only as the entrypoint) with
    the image's own command as its arguments. `env` has no per-call values: the launcher
    header brings them (formats/default.py). Keyed like a hot pool: the image is its ID.

    Its PidsLimit is one more than a cold container's: the launcher stays as the
    program's parent, so the program may run as many processes as in a cold one.
    """
    body = _container(identity, app, route, image, env, pids_limit + 1, "cold")
    body.update(
        Image=image.id,
        Entrypoint=[LAUNCHER_PATH],
        Cmd=list(image.command),
        AttachStdin=True,
        OpenStdin=True,
        StdinOnce=True,
    )
    mount = {"Type": "bind", "Source": launcher, "Target": LAUNCHER_PATH, "ReadOnly": True}
    body["HostConfig"]["Mounts"] = [mount]
    return body


def hot_container(
    *,
    identity: Identity,
    app: App,
    route: Route,
    image: ImageInfo,
    env: dict[str, str],
    pids_limit: int,
) -> dict[str, Any]:
    """A hot container: `http-stream` without its per-container iofs bind (`with_iofs`);
    `http` with its stdin kept open (its calls come that way).

    The image is its ID, not the tag: every container of a pool runs the same image, and
    a rebuilt tag changes the body, hence the pool key.
    """
    body = _container(identity, app, route, image, env, pids_limit, "hot")
    stdin = route.format == "http"
    body.update(Image=image.id, AttachStdin=stdin, OpenStdin=stdin, StdinOnce=False)
    return body


def _container(
    identity: Identity,
    app: App,
    route: Route,
    image: ImageInfo,
    env: dict[str, str],
    pids_limit: int,
    kind: str,
    call_id: str | None = None,
) -> dict[str, Any]:
    return {
        "Env": [f"{k}={v}" for k, v in env.items()],
        "Labels": labels(identity, app.name, route.path, kind, call_id),
        "User": container_user(route, image),
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        # Output is read through attach, so the engine need not store any of it.
        "HostConfig": host_config(route, pids_limit, log_driver="none"),
    }


def pool_key(body: dict[str, Any]) -> str:
    """SPEC.md "Pool identity": the hash of the container-create body."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def with_iofs(body: dict[str, Any], host_dir: str, mount: str) -> dict[str, Any]:
    """The body with one container's iofs directory bind-mounted.

    A `Mounts` bind, not `Binds`: a host directory that does not exist (iofs_host_dir not
    matching the executor's volume) fails the create, where `Binds` would make an empty
    one and the function's socket would never reach the executor."""
    host = dict(body["HostConfig"])
    host["Mounts"] = [{"Type": "bind", "Source": host_dir, "Target": mount}]
    return {**body, "HostConfig": host}
