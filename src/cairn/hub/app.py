"""The ASGI application: one catch-all route that dispatches on the raw path (see :mod:`router`),
authenticates the caller, runs the handler, and turns every exception into the one JSON error shape."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cairn.hub.config import HubConfig
from cairn.hub.context import Ctx
from cairn.hub.errors import HeadersTooLargeError, RouteNotFoundError, error_response
from cairn.hub.router import match, split_path
from cairn.registry import Registry, RepoNotFoundError

__all__ = ["create_app"]

log = logging.getLogger("cairn.hub")
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


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

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)])
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
    root = str(ctx.request.scope.get("root_path", ""))
    target = root + path.replace(f"/{p['ns']}/{p['name']}", f"/{repo.namespace}/{repo.name}", 1)
    query = ctx.request.url.query
    return Response(status_code=307, headers={"Location": target + (f"?{query}" if query else "")})
