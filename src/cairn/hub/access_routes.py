"""Organisations, tokens, gated-repo access requests and the audit log over HTTP.

Hugging Face shapes where the Hub has them (``user-access-request/{pending,accepted,rejected,handle,
grant}``, used by ``HfApi.list_pending_access_requests`` and friends); cairn's own JSON API under
``/api/cairn/`` otherwise:

* ``POST /api/cairn/orgs`` ``{"name"}``; ``GET /api/cairn/orgs/{org}/members`` (also the Hub's
  ``/api/organizations/{org}/members``, ``HfApi.list_organization_members``);
  ``PUT|DELETE /api/cairn/orgs/{org}/members/{user}`` (``{"role"}``); ``GET /api/cairn/orgs/{org}/audit``
* ``GET|POST /api/cairn/tokens``; ``DELETE /api/cairn/tokens/{id}``
* ``POST /api/{type}/{ns}/{name}/ask-access`` (the requester; optional ``{"fields": {...}}``)
* ``GET /api/{type}/{ns}/{name}/audit``

Lists page with ``Link: rel="next"`` (``cursor``); the audit log pages by event id, so events added
meanwhile never shift a page.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from cairn.errors import PermissionDeniedError, UsageError
from cairn.hub.context import Ctx
from cairn.hub.info import iso
from cairn.meta import now_us
from cairn.registry.access import AccessRequest
from cairn.registry.audit import AuditEvent
from cairn.registry.models import TokenInfo, TokenScope

__all__ = [
    "ask_access",
    "create_org",
    "create_token",
    "handle_request",
    "list_requests",
    "list_tokens",
    "match_cairn",
    "org_audit",
    "org_members",
    "remove_member",
    "repo_audit",
    "revoke_token",
    "set_member",
    "user_access_request",
]

MAX_TOKEN_DAYS = 3650


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{key!r} must be a non-empty string")
    return value


def match_cairn(method: str, seg: list[str], ctx: Ctx) -> Any:
    """Handler for ``/api/cairn/<...>`` (and the Hub's ``/api/organizations/{org}/members``) or ``None``."""
    if seg[0] == "organizations":
        ctx.params["org"] = seg[1]
        return org_members if method == "GET" else None
    seg = seg[1:]
    if seg == ["orgs"] and method == "POST":
        return create_org
    if len(seg) >= 3 and seg[0] == "orgs":
        ctx.params["org"] = seg[1]
        if seg[2:] == ["members"] and method == "GET":
            return org_members
        if seg[2:] == ["audit"] and method == "GET":
            return org_audit
        if len(seg) == 4 and seg[2] == "members":
            ctx.params["user"] = seg[3]
            return {"PUT": set_member, "DELETE": remove_member}.get(method)
    if seg == ["tokens"]:
        return {"GET": list_tokens, "POST": create_token}.get(method)
    if len(seg) == 2 and seg[0] == "tokens" and method == "DELETE":
        ctx.params["token_id"] = seg[1]
        return revoke_token
    return None


# -- organisations ----------------------------------------------------------------------------------------
async def create_org(ctx: Ctx) -> Response:
    data = await ctx.json()
    name = _str(data, "name")
    assert name is not None
    await ctx.call(ctx.registry.orgs.create, ctx.principal, name)
    return JSONResponse({"name": name, "members": [{"user": ctx.require_user().user.name, "role": "admin"}]})


async def org_members(ctx: Ctx) -> Response:
    members = await ctx.call(ctx.registry.orgs.members, ctx.principal, ctx.params["org"])
    return JSONResponse(
        [
            {"user": m.user, "fullname": m.fullname, "role": m.role, "type": "user", "avatarUrl": ""}
            for m in members
        ]
    )


async def set_member(ctx: Ctx) -> Response:
    data = await ctx.json()
    role = _str(data, "role")
    assert role is not None
    org, user = ctx.params["org"], ctx.params["user"]
    before = await ctx.call(ctx.registry.orgs.set_member, ctx.principal, org, user, role)
    return JSONResponse({"user": user, "role": role, "previousRole": before or None})


async def remove_member(ctx: Ctx) -> Response:
    await ctx.call(ctx.registry.orgs.remove_member, ctx.principal, ctx.params["org"], ctx.params["user"])
    return JSONResponse({})


# -- the audit log ---------------------------------------------------------------------------------------
def _audit_response(ctx: Ctx, events: list[AuditEvent], limit: int) -> Response:
    body = [{**e.to_json(), "time": iso(e.at)} for e in events]
    headers = {"Link": ctx.next_link(events[-1].id)} if len(events) == limit else {}
    return JSONResponse(body, headers=headers)


def _page(ctx: Ctx) -> tuple[int | None, int]:
    before = ctx.qint("before", 0, lo=0) or ctx.cursor() or None
    return before, ctx.qint("limit", min(ctx.config.page_size, 1000), lo=1, hi=1000)


async def org_audit(ctx: Ctx) -> Response:
    org = ctx.params["org"]
    await ctx.call(ctx.registry.orgs.require, ctx.principal, org, 3)
    before, limit = _page(ctx)
    events = await ctx.call(ctx.registry.audit.query, namespace=org, before=before, limit=limit)
    return _audit_response(ctx, events, limit)


async def repo_audit(ctx: Ctx) -> Response:
    repo = await ctx.repo(manage=True)
    before, limit = _page(ctx)
    events = await ctx.call(ctx.registry.audit.query, repo=repo, before=before, limit=limit)
    return _audit_response(ctx, events, limit)


# -- gated repos -----------------------------------------------------------------------------------------
def _request_json(r: AccessRequest) -> dict[str, Any]:
    return {
        "requestId": r.user,
        "user": {"user": r.user, "fullname": r.fullname, "email": None},
        "status": r.status,
        "timestamp": iso(r.created_at),
        "decidedBy": r.decided_by,
        "decidedAt": None if r.decided_at is None else iso(r.decided_at),
        "rejectionReason": r.reason,
        "fields": r.fields or None,
    }


async def ask_access(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    data = await ctx.json(required=False)
    fields = data.get("fields", {})
    if not isinstance(fields, dict):
        raise UsageError("'fields' must be an object")
    status = await ctx.call(ctx.registry.access.request, ctx.principal, repo, fields)
    return JSONResponse({"status": status})


async def user_access_request(ctx: Ctx) -> Response:
    """``GET …/user-access-request/{status}`` and ``POST …/user-access-request/{handle,grant}``."""
    if len(ctx.rest) != 1:
        raise UsageError("expected user-access-request/{pending,accepted,rejected,handle,grant}")
    if ctx.request.method == "POST":
        return await (handle_request(ctx) if ctx.rest[0] == "handle" else _grant(ctx))
    return await list_requests(ctx)


async def list_requests(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    status = ctx.rest[0]
    requests = await ctx.call(ctx.registry.access.list, ctx.principal, repo, status)
    offset, size = ctx.cursor(), ctx.config.page_size
    page = requests[offset : offset + size]
    headers = {"Link": ctx.next_link(offset + size)} if offset + size < len(requests) else {}
    return JSONResponse([_request_json(r) for r in page], headers=headers)


async def handle_request(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    data = await ctx.json()
    user = _str(data, "user", required=False) or _str(data, "requestId")
    status = _str(data, "status")
    reason = _str(data, "rejectionReason", required=False)
    assert user is not None and status is not None
    await ctx.call(ctx.registry.access.decide, ctx.principal, repo, user, status, reason)
    return JSONResponse({})


async def _grant(ctx: Ctx) -> Response:
    if ctx.rest[0] != "grant":
        raise UsageError("expected user-access-request/handle or user-access-request/grant")
    repo = await ctx.repo()
    data = await ctx.json()
    user = _str(data, "user")
    assert user is not None
    await ctx.call(ctx.registry.access.grant, ctx.principal, repo, user)
    return JSONResponse({})


# -- tokens ----------------------------------------------------------------------------------------------
def token_json(t: TokenInfo) -> dict[str, Any]:
    return {
        "id": t.id,
        "displayName": t.name,
        "role": "fineGrained" if t.scopes else t.role,
        "createdAt": iso(t.created_at),
        "expiresAt": None if t.expires_at is None else iso(t.expires_at),
        "revoked": t.revoked_at is not None,
        "lastUsedAt": None if t.last_used_at is None else iso(t.last_used_at),
        "scopes": [
            {"kind": x.kind, "name": x.name, "permission": x.permission, "type": x.repo_type}
            for x in t.scopes
        ],
    }


def _parse_scopes(raw: Any) -> tuple[TokenScope, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 100:
        raise UsageError("'scopes' must be a list of at most 100 objects")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("kind", "name")):
            raise UsageError('each scope is {"kind": "repo"|"org", "name": ..., "permission": ...}')
        perm, rtype = item.get("permission", "read"), item.get("type", "model")
        if not isinstance(perm, str) or not isinstance(rtype, str):
            raise UsageError("scope 'permission' and 'type' must be strings")
        out.append(TokenScope(kind=item["kind"], name=item["name"], permission=perm, repo_type=rtype))  # type: ignore[arg-type]
    return tuple(out)


def _account_token(ctx: Ctx) -> str:
    who = ctx.require_user()
    if who.token.scopes or not who.can_write:
        raise PermissionDeniedError("managing tokens needs an account-wide write token")
    return who.user.name


async def list_tokens(ctx: Ctx) -> Response:
    user = _account_token(ctx)
    found = await ctx.call(ctx.registry.users.tokens_of, user)
    return JSONResponse([token_json(t) for t in found])


async def create_token(ctx: Ctx) -> Response:
    user = _account_token(ctx)
    data = await ctx.json()
    name = _str(data, "name", required=False) or "api"
    role = _str(data, "role", required=False) or "write"
    days = data.get("expiresInDays")
    if days is not None and (
        not isinstance(days, int) or isinstance(days, bool) or not 0 < days <= MAX_TOKEN_DAYS
    ):
        raise UsageError(f"'expiresInDays' must be an integer from 1 to {MAX_TOKEN_DAYS}")
    expires = None if days is None else now_us() + days * 86_400_000_000
    token = await ctx.call(
        ctx.registry.users.create_token,
        user,
        role=role,
        name=name,
        scopes=_parse_scopes(data.get("scopes")),
        expires_at=expires,
        by=user,
    )
    created = await ctx.call(ctx.registry.users.token_info, token)
    return JSONResponse({**token_json(created), "token": token})


async def revoke_token(ctx: Ctx) -> Response:
    user = _account_token(ctx)
    raw = ctx.params["token_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise UsageError("a token id is a positive integer")
    info = await ctx.call(ctx.registry.users.revoke_token, user, int(raw), by=user)
    return JSONResponse({**token_json(info), "revoked": True})
