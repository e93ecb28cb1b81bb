"""`GET /ui/`: the dashboard, served from the package (executor/ui/), nothing from a CDN.

One page of plain JavaScript (no framework, no build step) that talks to the API like
any client: with a token set it asks for it and sends it as a bearer header, held in the
page's memory only (function responses share this origin: a cookie or storage would be
theirs to read). Every value is rendered as text (`textContent`), and the policy below
lets no script but the page's own run.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from aiohttp import web

# The dashboard's own files only: no inline script or style, nothing from elsewhere, no
# frames, no form posting away; fetch() to this origin only.
UI_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
ASSETS = web.AppKey("ui assets", dict)


def setup(app: web.Application) -> None:
    app[ASSETS] = _load()
    app.router.add_get("/ui", to_ui)
    app.router.add_get("/ui/", ui_asset)
    app.router.add_get("/ui/{name}", ui_asset)


def _load() -> dict[str, tuple[bytes, str, str]]:
    """name -> (bytes, content type, ETag), read once at start-up."""
    assets = {}
    for entry in resources.files("executor.ui").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in TYPES:
            data = entry.read_bytes()
            etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
            assets[entry.name] = (data, TYPES[suffix], etag)
    return assets


async def to_ui(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/ui/")


async def ui_asset(request: web.Request) -> web.Response:
    name = request.match_info.get("name") or "index.html"
    asset = request.app[ASSETS].get(name)
    if asset is None:
        raise web.HTTPNotFound()
    data, content_type, etag = asset
    headers = {
        "Content-Security-Policy": UI_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        # Revalidated each load (a new version of the executor, new files), 304 if same.
        "Cache-Control": "no-cache",
        "ETag": etag,
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if content_type.startswith("text/") else None
    return web.Response(body=data, content_type=content_type, charset=charset, headers=headers)
