"""Routing on the raw request path (spec §1.2): split on literal ``/`` first, then percent-decode each
segment, so that a revision sent as ``dev%2Fx`` stays one segment. Repo ids are the two segments before a
marker (``resolve``, ``tree``, ``revision`` ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

from starlette.responses import Response

from cairn.errors import UsageError
from cairn.hub import (
    access_routes,
    compare,
    discussions,
    download,
    info,
    manage,
    multipart,
    storage,
    trust_api,
    upload,
    web,
    web_discussions,
)
from cairn.hub.context import TYPES, Ctx

__all__ = ["Handler", "match", "split_path"]

Handler = Callable[[Ctx], Awaitable[Response]]

_REPO_OPS: dict[tuple[str, str], Handler] = {
    ("GET", "revision"): info.repo_info,
    ("GET", "tree"): info.tree,
    ("POST", "paths-info"): info.paths_info,
    ("GET", "refs"): info.refs,
    ("GET", "commits"): info.repo_commits,
    ("POST", "preupload"): upload.preupload,
    ("POST", "commit"): upload.commit,
    ("PUT", "settings"): manage.settings,
    ("GET", "discussions"): discussions.get_discussions,
    ("POST", "discussions"): discussions.post_discussions,
    ("GET", "auth-check"): manage.auth_check,
    ("GET", "xet-read-token"): manage.xet_token,
    ("GET", "xet-write-token"): manage.xet_token,
    **trust_api.REPO_OPS,
    ("GET", "user-access-request"): access_routes.user_access_request,
    ("POST", "user-access-request"): access_routes.user_access_request,
    ("POST", "ask-access"): access_routes.ask_access,
    ("GET", "audit"): access_routes.repo_audit,
    ("GET", "compare"): compare.compare_api,
    ("POST", "super-squash"): storage.super_squash,
    ("GET", "lfs-files"): storage.list_lfs_files,
    ("POST", "lfs-files"): storage.delete_lfs_files,
}
_REF_OPS: dict[tuple[str, str], Handler] = {
    ("POST", "branch"): manage.create_branch,
    ("DELETE", "branch"): manage.delete_branch,
    ("POST", "tag"): manage.create_tag,
    ("DELETE", "tag"): manage.delete_tag,
}
_TOP: dict[tuple[str, str], Handler] = {
    ("GET", "whoami-v2"): manage.whoami,
    ("POST", "validate-yaml"): manage.validate_yaml,
    ("GET", "agent-harnesses"): manage.agent_harnesses,
}


def split_path(raw: str) -> list[str]:
    """Raw path -> decoded segments. Invalid UTF-8 or NUL in a segment is a 400."""
    out = []
    for part in raw.split("/")[1:]:
        try:
            text = unquote_to_bytes(part).decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the request path is not valid UTF-8") from None
        if "\0" in text:
            raise UsageError("the request path contains NUL")
        out.append(text)
    if out and out[-1] == "" and len(out) > 1:
        out.pop()
    return out


def match(method: str, seg: list[str], ctx: Ctx) -> Handler | None:
    """The handler for ``method`` on path segments ``seg``, filling ``ctx.params``/``ctx.rest``."""
    get = "GET" if method == "HEAD" else method
    if not seg or seg == [""]:
        return web.index if get == "GET" else None
    if seg[0] == "api":
        return _match_api(get, seg[1:], ctx)
    repo_type = "model"
    if seg[0] in {"datasets", "spaces"} and len(seg) >= 3:
        repo_type = TYPES[seg[0]]
        seg = seg[1:]
    if len(seg) >= 2 and seg[1].endswith(".git") and seg[2:] == ["info", "lfs", "objects", "batch"]:
        ctx.params.update(type=repo_type, ns=seg[0], name=seg[1][: -len(".git")])
        return upload.lfs_batch if get == "POST" else None
    if len(seg) < 2:
        return None
    ctx.params.update(type=repo_type, ns=seg[0], name=seg[1])
    ctx.rest = seg[3:]
    if len(seg) == 2:
        return web.repo_page if get == "GET" else None
    if seg[2] == "resolve" and get == "GET":
        return download.resolve_file
    if get != "GET":
        return None
    if seg[2] == "blob":
        return web.file_page
    if seg[2] == "tree":
        return web.repo_page
    if seg[2] == "commit" and len(seg) >= 4:
        return compare.commit_page
    if seg[2] == "compare" and len(seg) >= 4:
        return compare.compare_page
    if seg[2] == "commits":
        return web.commits_page
    if seg[2] == "discussions" and len(seg) <= 4:
        return web_discussions.discussions_page if len(seg) == 3 else web_discussions.discussion_page
    return None


def _match_api(method: str, seg: list[str], ctx: Ctx) -> Handler | None:
    if len(seg) == 1:
        if seg[0] in TYPES and method == "GET":
            ctx.params["type"] = TYPES[seg[0]]
            return info.list_repos
        return _TOP.get((method, seg[0]))
    if seg[0] == "users" and len(seg) == 3 and seg[2] == "likes" and method == "GET":
        ctx.params["user"] = seg[1]
        return trust_api.user_likes
    if seg == ["cairn", "lineage-search"]:
        return trust_api.lineage_search if method == "POST" else None
    if seg[0] == "cairn" or (seg[0] == "organizations" and seg[2:] == ["members"]):
        handler: Handler | None = access_routes.match_cairn(method, seg, ctx)
        return handler
    if seg[0] == "repos" and len(seg) == 2:
        return {
            ("POST", "create"): manage.create_repo,
            ("DELETE", "delete"): manage.delete_repo,
            ("POST", "move"): manage.move_repo,
        }.get((method, seg[1]))
    if seg[0] == "lfs-upload" and len(seg) == 2 and method == "PUT":
        ctx.params["oid"] = seg[1]
        return upload.lfs_upload
    if seg[0] == "lfs-part" and len(seg) == 2 and method == "PUT":
        ctx.params["oid"] = seg[1]
        return multipart.put_part
    if seg[0] == "lfs-complete" and len(seg) == 2 and method == "POST":
        ctx.params["oid"] = seg[1]
        return multipart.complete
    if seg[0] == "lfs-verify" and len(seg) == 4 and method == "POST" and seg[1] in TYPES:
        ctx.params.update(type=TYPES[seg[1]], ns=seg[2], name=seg[3])
        return upload.lfs_verify
    if seg[0] not in TYPES or len(seg) < 3:
        return None
    ctx.params.update(type=TYPES[seg[0]], ns=seg[1], name=seg[2])
    if len(seg) == 3:
        return info.repo_info if method == "GET" else None
    op, ctx.rest = seg[3], seg[4:]
    if op in {"branch", "tag"} and len(seg) == 5:
        ctx.params["ref"] = seg[4]
        return _REF_OPS.get((method, op))
    if op == "auth-check" and seg[4:] == ["write"]:
        ctx.params["write"] = "1"
    return _REPO_OPS.get((method, op))
