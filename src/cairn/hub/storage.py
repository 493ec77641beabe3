"""Storage-management routes (:mod:`cairn.registry.storage`): ``POST …/super-squash/{branch}``,
``GET …/lfs-files`` and ``POST …/lfs-files/batch``, as ``HfApi.super_squash_history``,
``list_lfs_files`` and ``permanently_delete_lfs_files`` call them."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from cairn.errors import UsageError
from cairn.hub.context import Ctx
from cairn.hub.errors import RouteNotFoundError
from cairn.hub.info import iso
from cairn.registry import storage

__all__ = ["delete_lfs_files", "list_lfs_files", "super_squash"]


async def super_squash(ctx: Ctx) -> Response:
    if not ctx.rest:
        raise UsageError("super-squash needs a branch: …/super-squash/{branch}")
    branch = "/".join(ctx.rest)  # percent-encoded by the client (one segment); raw '/' joined back
    repo = await ctx.repo(write=True)
    data = await ctx.json(required=False)
    message = data.get("message")
    if message is None:
        message = ""
    if not isinstance(message, str):
        raise UsageError("'message' must be a string")
    done = await ctx.call(storage.super_squash, ctx.registry, repo, ctx.principal, branch, message)
    return JSONResponse(
        {"commitOid": done.commit.id, "squashed": done.squashed, "prunedCommits": done.pruned}
    )


async def list_lfs_files(ctx: Ctx) -> Response:
    if ctx.rest:
        raise RouteNotFoundError("GET", ctx.request.url.path)
    repo = await ctx.repo(write=True)
    offset = ctx.cursor()
    page = ctx.config.page_size
    found = await ctx.call(
        storage.list_lfs_files, ctx.registry, repo, ctx.principal, offset=offset, limit=page + 1
    )
    items = [
        {
            "fileOid": f.sha256,
            "filename": f.filename,
            "oid": f.sha256,
            "pushedAt": iso(f.pushed_at),
            "ref": f.ref,
            "size": f.size,
        }
        for f in found[:page]
    ]
    headers = {"Link": ctx.next_link(offset + page)} if len(found) > page else {}
    return JSONResponse(items, headers=headers)


async def delete_lfs_files(ctx: Ctx) -> Response:
    if ctx.rest != ["batch"]:
        raise RouteNotFoundError("POST", ctx.request.url.path)
    repo = await ctx.repo(manage=True)
    data = await ctx.json()
    deletions = data.get("deletions")
    if not isinstance(deletions, dict):
        raise UsageError('the body must be {"deletions": {"sha": [...], "rewriteHistory": bool}}')
    rewrite = deletions.get("rewriteHistory", True)
    if not isinstance(rewrite, bool):
        raise UsageError("'deletions.rewriteHistory' must be a boolean")
    shas = storage.check_shas(deletions.get("sha"))
    done = await ctx.call(
        storage.delete_lfs_files, ctx.registry, repo, ctx.principal, shas, rewrite_history=rewrite
    )
    return JSONResponse(
        {"deleted": done.deleted, "rewrittenCommits": done.rewritten, "prunedCommits": done.pruned}
    )
