"""Account and repo management routes: whoami, create/delete repo, settings, branches, tags,
validate-yaml, and the small always-answer routes the client probes (spec §2, §5, §6, §7.2, §8)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from cairn.errors import UsageError
from cairn.hub.context import PREFIX, Ctx
from cairn.hub.info import iso
from cairn.registry import AlreadyExistsError, Repo
from cairn.registry.cards import MAX_CARD_BYTES, parse_front_matter
from cairn.registry.models import TokenInfo

__all__ = [
    "access_token_json",
    "agent_harnesses",
    "auth_check",
    "create_branch",
    "create_repo",
    "create_tag",
    "delete_branch",
    "delete_repo",
    "delete_tag",
    "move_repo",
    "settings",
    "validate_yaml",
    "whoami",
    "xet_token",
]


def _str(data: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{key!r} must be a string")
    return value


def _private(data: dict[str, Any]) -> bool | None:
    visibility = data.get("visibility")
    if visibility is not None:
        if visibility not in {"public", "private", "protected"}:
            raise UsageError("visibility must be 'public' or 'private'")
        return bool(visibility != "public")
    private = data.get("private")
    if private is None:
        return None
    if not isinstance(private, bool):
        raise UsageError("'private' must be a boolean")
    return private


async def whoami(ctx: Ctx) -> Response:
    who = ctx.require_user()
    return JSONResponse(
        {
            "type": "user",
            "id": f"{who.user.id:024x}",
            "name": who.user.name,
            "fullname": who.user.fullname,
            "email": None,
            "emailVerified": False,
            "canPay": False,
            "isPro": False,
            "avatarUrl": "",
            "orgs": [
                {"type": "org", "id": name, "name": name, "fullname": name, "roleInOrg": who.role_in(name)}
                for name in who.orgs
            ],
            "auth": {"type": "access_token", "accessToken": access_token_json(who.token)},
        }
    )


def _target(ctx: Ctx, data: dict[str, Any]) -> tuple[str, str, str]:
    who = ctx.require_user()
    name = _str(data, "name")
    if not name:
        raise UsageError("'name' is required")
    namespace = _str(data, "organization") or who.user.name
    if "/" in name:  # some callers send the full id as name
        namespace, _, name = name.partition("/")
    repo_type = _str(data, "type") or "model"
    return repo_type, namespace, name


async def create_repo(ctx: Ctx) -> Response:
    data = await ctx.json()
    repo_type, namespace, name = _target(ctx, data)
    try:
        repo = await ctx.call(
            ctx.registry.repos.create, ctx.principal, repo_type, namespace, name, private=bool(_private(data))
        )
    except AlreadyExistsError as err:
        url = f"{ctx.base_url()}/{PREFIX.get(repo_type, '')}{namespace}/{name}"
        return JSONResponse({"error": err.message, "code": err.code, "url": url}, status_code=409)
    return JSONResponse({"url": ctx.repo_url(repo), "name": repo.repo_id, "id": f"{repo.id:024x}"})


async def move_repo(ctx: Ctx) -> Response:
    data = await ctx.json()
    source, target = _str(data, "fromRepo"), _str(data, "toRepo")
    repo_type = _str(data, "type") or "model"
    if not source or not target or source.count("/") != 1 or target.count("/") != 1:
        raise UsageError("'fromRepo' and 'toRepo' must be NAMESPACE/NAME")
    ns, _, name = source.partition("/")
    repo = await ctx.call(ctx.registry.repos.get, repo_type, ns, name, ctx.principal, write=True)
    new_ns, _, new_name = target.partition("/")
    moved = await ctx.call(ctx.registry.repos.move, ctx.principal, repo, new_ns, new_name)
    return JSONResponse({"url": ctx.repo_url(moved), "name": moved.repo_id})


async def delete_repo(ctx: Ctx) -> Response:
    data = await ctx.json()
    repo_type, namespace, name = _target(ctx, data)
    await ctx.call(ctx.registry.repos.delete, ctx.principal, repo_type, namespace, name)
    return JSONResponse({})


async def settings(ctx: Ctx) -> Response:
    repo = await ctx.repo(write=True)
    data = await ctx.json()
    gated = data.get("gated")
    if gated is not None and gated is not False and not isinstance(gated, str):
        raise UsageError("'gated' must be false, 'auto' or 'manual'")
    repo = await ctx.call(
        ctx.registry.repos.update_settings,
        ctx.principal,
        repo,
        private=_private(data),
        gated=None if gated is None else (gated or ""),
    )
    return JSONResponse({"private": repo.private, "gated": repo.gated or False})


async def _audit(ctx: Ctx, action: str, repo: Repo, target: str, commit: str | None = None) -> None:
    who = ctx.principal.user.name if ctx.principal else None
    detail = {"commit": commit} if commit else None
    await ctx.call(ctx.registry.audit.record, who, action, repo=repo, target=target, detail=detail)


async def create_branch(ctx: Ctx) -> Response:
    repo = await ctx.repo(write=True)
    data = await ctx.json(required=False)
    start = _str(data, "startingPoint") or "main"
    commit, _ = await ctx.call(ctx.registry.commits.resolve, repo, start)
    await ctx.call(ctx.registry.commits.create_ref, repo, "branch", ctx.params["ref"], commit)
    await _audit(ctx, "ref.create", repo, f"branch:{ctx.params['ref']}", commit)
    return JSONResponse({})


async def delete_branch(ctx: Ctx) -> Response:
    repo = await ctx.repo(write=True)
    if ctx.params["ref"] == "main":
        raise UsageError("the main branch cannot be deleted")
    await ctx.call(ctx.registry.commits.delete_ref, repo, "branch", ctx.params["ref"])
    await _audit(ctx, "ref.delete", repo, f"branch:{ctx.params['ref']}")
    return JSONResponse({})


async def create_tag(ctx: Ctx) -> Response:
    repo = await ctx.repo(write=True)
    data = await ctx.json()
    tag = _str(data, "tag")
    if not tag:
        raise UsageError("'tag' is required")
    commit, _ = await ctx.call(ctx.registry.commits.resolve, repo, ctx.params["ref"])
    await ctx.call(ctx.registry.commits.create_ref, repo, "tag", tag, commit)
    await _audit(ctx, "ref.create", repo, f"tag:{tag}", commit)
    return JSONResponse({})


async def delete_tag(ctx: Ctx) -> Response:
    repo = await ctx.repo(write=True)
    await ctx.call(ctx.registry.commits.delete_ref, repo, "tag", ctx.params["ref"])
    await _audit(ctx, "ref.delete", repo, f"tag:{ctx.params['ref']}")
    return JSONResponse({})


async def validate_yaml(ctx: Ctx) -> Response:
    data = await ctx.json()
    content = data.get("content", "")
    if not isinstance(content, str):
        return JSONResponse({"errors": [{"message": "'content' must be a string"}], "warnings": []}, 400)
    if len(content) > MAX_CARD_BYTES:
        return JSONResponse({"errors": [{"message": "README.md is larger than 1 MiB"}], "warnings": []}, 400)
    try:
        parse_front_matter(content)
    except Exception as err:  # yaml.YAMLError and friends: report, never crash
        return JSONResponse(
            {"errors": [{"message": f"Invalid YAML in README.md: {err}"}], "warnings": []}, 400
        )
    return JSONResponse({"errors": [], "warnings": []})


async def agent_harnesses(ctx: Ctx) -> Response:
    return JSONResponse({"standardEnvVars": [], "harnesses": {}})


async def auth_check(ctx: Ctx) -> Response:
    await ctx.repo(write=ctx.params.get("write") == "1")
    return JSONResponse({})


async def xet_token(ctx: Ctx) -> Response:
    await ctx.repo()
    return JSONResponse(
        {"error": "This hub does not support Xet; set HF_HUB_DISABLE_XET=1", "code": "xet_unsupported"},
        status_code=404,
        headers={"X-Error-Message": "This hub does not support Xet; set HF_HUB_DISABLE_XET=1"},
    )


def access_token_json(token: TokenInfo) -> dict[str, Any]:
    """``auth.accessToken`` of whoami: the Hub's shape, ``role: "fineGrained"`` with the scopes for
    fine-grained tokens (``repo.content.read`` / ``repo.write`` per repo, user or org entity)."""
    out: dict[str, Any] = {
        "displayName": token.name,
        "role": "fineGrained" if token.scopes else token.role,
        "createdAt": iso(token.created_at),
    }
    if token.expires_at is not None:
        out["expiresAt"] = iso(token.expires_at)
    if token.scopes:
        out["fineGrained"] = {
            "canReadGatedRepos": False,  # gated files: only through a scope that covers the repo
            "global": [],
            "scoped": [
                {
                    "entity": {
                        "type": scope.repo_type if scope.kind == "repo" else "org",
                        "name": scope.name,
                    },
                    "permissions": ["repo.content.read"]
                    + (["repo.write"] if scope.permission == "write" else []),
                }
                for scope in token.scopes
            ],
        }
    return out
