"""The ASGI application: one catch-all route that dispatches on the raw path (see :mod:`router`),
authenticates the caller, runs the handler, and turns every exception into the one JSON error shape."""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import request_response
from starlette.types import Receive, Scope, Send

from cairn.hub.config import HubConfig
from cairn.hub.context import Ctx
from cairn.hub.errors import HeadersTooLargeError, RouteNotFoundError, error_response
from cairn.hub.router import match, split_path
from cairn.registry import Registry, RepoNotFoundError

__all__ = ["create_app"]

log = logging.getLogger("cairn.hub")


def create_app(registry: Registry, config: HubConfig | None = None) -> Starlette:
    """A hub over ``registry``. The registry must already be migrated (``Registry.open`` does it)."""
    cfg = config or HubConfig()
    secret = registry.users.secret()

    async def endpoint(request: Request) -> Response:
        ctx = Ctx(request=request, registry=registry, config=cfg, secret=secret)
        try:
            header_bytes = sum(len(k) + len(v) for k, v in request.scope["headers"])
            if header_bytes > cfg.max_header_bytes:
                raise HeadersTooLargeError(header_bytes, cfg.max_header_bytes)
            raw = request.scope.get("raw_path") or request.scope["path"].encode()
            path = raw.decode("latin-1")
            root = str(request.scope.get("root_path", ""))
            if root and path.startswith(root):
                path = path[len(root) :]
            handler = match(request.method, split_path(path), ctx)
            if handler is None:
                raise RouteNotFoundError(request.method, path)
            await ctx.authenticate()
            try:
                return await handler(ctx)
            except RepoNotFoundError:
                moved = await _moved(ctx, path)
                if moved is None:
                    raise
                return moved
        except Exception as err:
            return error_response(err, anonymous=not ctx.has_token)

    # Every HTTP request reaches ``endpoint``, whatever its path (a "/{path:path}" route does not match
    # a path holding a decoded newline) or method, so every answer has the JSON error shape.
    app = Starlette()
    http = request_response(endpoint)
    fallback = app.router.default

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        await (http if scope["type"] == "http" else fallback)(scope, receive, send)

    app.router.default = dispatch
    app.state.registry = registry
    app.state.config = cfg
    return app


async def _moved(ctx: Ctx, path: str) -> Response | None:
    """A same-origin, relative 307 to the new name of a moved repo (reads only), or ``None``."""
    p = ctx.params
    if ctx.request.method not in {"GET", "HEAD"} or "ns" not in p or "name" not in p:
        return None
    repo = await ctx.call(ctx.registry.repos.redirect, p["type"], p["ns"], p["name"], ctx.principal)
    if repo is None:
        return None
    # Rebuilt from the parsed segments: the raw path may spell the old name percent-encoded, so a string
    # replace of the decoded name would miss it and redirect to the same URL forever.
    raw = path.split("/")[1:]
    seg = split_path(path)
    at = 2 if seg[0] == "api" else 1 if seg[0] in {"datasets", "spaces"} and len(seg) >= 3 else 0
    if seg[at : at + 2] != [p["ns"], p["name"]]:
        return None
    raw[at : at + 2] = [quote(repo.namespace, safe=""), quote(repo.name, safe="")]
    target = str(ctx.request.scope.get("root_path", "")) + "/" + "/".join(raw)
    query = ctx.request.url.query
    return Response(status_code=307, headers={"Location": target + (f"?{query}" if query else "")})
