"""The API token (`EXECUTOR_API_TOKEN`): the admin API needs it, and so do calls of routes
with `auth: token`. Compared in constant time; never passed to a function (the invoker
drops `Authorization` with the hop-by-hop headers). Routes with a `jwt_key`
(IronFunctions' per-route authentication) need a JWT signed HS256 with that key instead,
checked by PyJWT (its signature, and its `exp` and `nbf` when it has them)."""

from __future__ import annotations

import hmac

import jwt
from aiohttp import web

from executor.api.errors import Handler
from executor.errors import Unauthorized
from executor.models import Route
from executor.state import EXECUTOR

# The admin API, and IronFunctions' /stats (it names apps and routes; IronFunctions'
# was open).
PROTECTED_PREFIXES = ("/v1/", "/stats")


@web.middleware
async def token_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(PROTECTED_PREFIXES):
        require_token(request)
    return await handler(request)


def require_token(request: web.Request) -> None:
    """Raises 401 unless the request carries the executor's token (when it has one)."""
    token = request.app[EXECUTOR].settings.api_token
    if not token:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise Unauthorized("missing API token: send Authorization: Bearer <token>")
    # aiohttp decodes header bytes with surrogateescape: a non-UTF-8 byte encodes back.
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode()):
        raise Unauthorized("wrong API token")


def require_token_for(request: web.Request, route: Route) -> None:
    if route.jwt_key is not None:
        require_jwt(request, route.jwt_key)
        return
    if route.auth != "token":
        return
    if not request.app[EXECUTOR].settings.api_token:
        # Saved while a token was set, served by an executor without one: refuse rather
        # than open a route its owner closed.
        raise Unauthorized("this route needs the API token, and the executor has none set")
    require_token(request)


def require_jwt(request: web.Request, key: str) -> None:
    """Raises 401 unless the request carries a JWT signed (HS256) with the route's key."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("this route needs a JWT: send Authorization: Bearer <token>")
    try:
        jwt.decode(given.strip(), key, algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the JWT has expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid JWT: {exc}") from None
