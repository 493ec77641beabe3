"""Read-only metadata routes: repo info with siblings, ``list_models``, tree, paths-info, refs and the
commit log (spec §4, §6). Dates are ISO-8601 UTC ending in ``Z``; listings page with ``Link``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import JSONResponse, Response

from cairn.errors import UsageError
from cairn.format.hashing import git_blob_sha1
from cairn.hub import trust_api
from cairn.hub.context import Ctx
from cairn.hub.download import resolve_revision
from cairn.registry import Commit, EntryNotFoundError, FileEntry, Repo, check_path
from cairn.registry.discovery import FILTER_PARAMS, parse_filters

__all__ = ["iso", "list_repos", "paths_info", "refs", "repo_commits", "repo_info", "tree"]

_LIST_SORT = {"last_modified": "lastModified", "created_at": "createdAt", "trending_score": "trendingScore"}
MAX_PATHS_INFO = 1000  # distinct paths answered per paths-info request


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def lfs_pointer(entry: FileEntry) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{entry.sha256}\nsize {entry.size}\n".encode()
    )


def tree_oid(entry: FileEntry) -> str:
    return git_blob_sha1(lfs_pointer(entry)) if entry.lfs else entry.git_sha1


def file_json(entry: FileEntry, last: dict[str, Commit] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "file", "oid": tree_oid(entry), "size": entry.size, "path": entry.path}
    if entry.lfs:
        out["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": len(lfs_pointer(entry))}
    if last is not None and entry.last_commit in last:
        c = last[entry.last_commit]
        out["lastCommit"] = {"id": c.id, "title": c.title, "date": iso(c.created_at)}
    return out


def dir_json(path: str, children: list[FileEntry]) -> dict[str, Any]:
    digest = hashlib.sha1(usedforsecurity=False)
    for e in children:
        digest.update(f"{e.path}\0{e.git_sha1}\0{e.sha256}\n".encode())
    return {"type": "directory", "oid": digest.hexdigest(), "size": 0, "path": path}


def repo_json(ctx: Ctx, repo: Repo, sha: str | None, entries: list[FileEntry] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "_id": f"{repo.id:024x}",
        "id": repo.repo_id,
        "author": repo.namespace,
        "lastModified": iso(repo.last_modified),
        "createdAt": iso(repo.created_at),
        "private": repo.private,
        "gated": repo.gated or False,
        "disabled": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "tags": list(repo.tags),
        "cardData": repo.card_data,
    }
    if repo.type == "model":
        out["modelId"] = repo.repo_id
        out["library_name"] = repo.library_name
        out["pipeline_tag"] = repo.pipeline_tag
    if sha is not None:
        out["sha"] = sha
    if entries is not None:
        blobs = ctx.qbool("blobs")
        siblings = []
        for e in entries:
            s: dict[str, Any] = {"rfilename": e.path}
            if blobs:
                s.update(blobId=tree_oid(e), size=e.size)
                if e.lfs:
                    s["lfs"] = {"sha256": e.sha256, "size": e.size, "pointerSize": len(lfs_pointer(e))}
            siblings.append(s)
        out["siblings"] = siblings
        out["usedStorage"] = sum(e.size for e in entries)
    expand = ctx.qlist("expand")
    if expand:
        out = {k: v for k, v in out.items() if k in expand or k in {"id", "_id"}}
    return out


async def repo_info(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    commit, _, _ = await resolve_revision(ctx, repo, ctx.rest or ["main"], min_rest=0)
    entries = await ctx.call(ctx.registry.commits.files, commit)
    out = repo_json(ctx, repo, commit, entries)
    extra = await trust_api.info_fields(ctx, commit, entries)
    expand = ctx.qlist("expand")
    out.update({k: v for k, v in extra.items() if not expand or k in expand or k == "securityRepoStatus"})
    return JSONResponse(out)


async def list_repos(ctx: Ctx) -> Response:
    repo_type = ctx.params["type"]
    limit = ctx.qint("limit", 1 << 62, lo=1)
    page = min(limit, ctx.config.page_size)
    offset = ctx.cursor()
    sort = ctx.q("sort")
    sort = _LIST_SORT.get(sort, sort) if sort else None
    found = await ctx.call(
        ctx.registry.repos.list,
        repo_type,
        ctx.principal,
        search=ctx.q("search"),
        author=ctx.q("author"),
        tags=ctx.qlist("filter"),
        sort=sort,
        offset=offset,
        limit=page,
        where=parse_filters({k: ctx.qlist(k) for k in FILTER_PARAMS}),
    )
    full = ctx.qbool("full")
    items = []
    for repo in found:
        if full:
            sha = await ctx.call(ctx.registry.commits.branch_head, repo, "main")
            entries = await ctx.call(ctx.registry.commits.files, sha)
            items.append(repo_json(ctx, repo, sha, entries))
        else:
            item = repo_json(ctx, repo, None, None)
            if not ctx.qbool("cardData"):
                item.pop("cardData", None)
            items.append(item)
    headers = {}
    if len(found) == page and offset + page < limit:
        headers["Link"] = ctx.next_link(offset + page)
    return JSONResponse(items, headers=headers)


def _children(entries: list[FileEntry], base: str, recursive: bool) -> list[dict[str, Any]]:
    prefix = base + "/" if base else ""
    out: list[dict[str, Any]] = []
    dirs: dict[str, list[FileEntry]] = {}
    for e in entries:
        rel = e.path[len(prefix) :]
        parts = rel.split("/")
        for i in range(1, len(parts)):
            if recursive or i == 1:
                dirs.setdefault(prefix + "/".join(parts[:i]), []).append(e)
        if recursive or len(parts) == 1:
            out.append(file_json(e))
    out += [dir_json(path, kids) for path, kids in dirs.items()]
    out.sort(key=lambda item: item["path"])
    return out


async def tree(ctx: Ctx) -> Response:
    repo = await ctx.repo(content=True)
    commit, _, rest = await resolve_revision(ctx, repo, ctx.rest, min_rest=0)
    base = "/".join(p for p in rest if p).strip("/")
    if base:
        check_path(base)
    entries = await ctx.call(ctx.registry.commits.files, commit, base)
    if base and not entries:
        raise EntryNotFoundError(base, commit)
    items = _children(entries, base, ctx.qbool("recursive"))
    if ctx.qbool("expand"):
        last = await ctx.call(ctx.registry.commits.by_ids, repo, [e.last_commit for e in entries])
        status = await ctx.call(ctx.registry.trust.file_status, entries)
        items = [
            {**file_json(e, last), "securityFileStatus": trust_api.file_security(*status[e.path])}
            if it["type"] == "file"
            else it
            for it, e in _pair(items, {e.path: e for e in entries})
        ]
    offset = ctx.cursor()
    page = items[offset : offset + ctx.config.page_size]
    headers = {}
    if offset + ctx.config.page_size < len(items):
        headers["Link"] = ctx.next_link(offset + ctx.config.page_size)
    return JSONResponse(page, headers=headers)


def _pair(items: list[dict[str, Any]], by_path: dict[str, FileEntry]) -> list[tuple[dict[str, Any], Any]]:
    return [(it, by_path.get(it["path"])) for it in items]


async def paths_info(ctx: Ctx) -> Response:
    repo = await ctx.repo(content=True)
    commit, _, _ = await resolve_revision(ctx, repo, ctx.rest, min_rest=0)
    raw = await ctx.body(ctx.config.max_json_bytes)
    ctype = ctx.request.headers.get("content-type", "")
    if "json" in ctype:
        data = await _json_paths(raw)
    else:
        form = parse_qs(raw.decode("utf-8", "replace"))
        data = form.get("paths", [])
    paths = list(dict.fromkeys(p.strip("/") for p in data))[:MAX_PATHS_INFO]  # deduplicated, capped
    for p in paths:
        check_path(p)
    found = await ctx.call(ctx.registry.commits.files_at, commit, paths)
    out = [file_json(e) for e in found]
    present = {e.path for e in found}
    missing = [p for p in paths if p not in present]
    if missing:  # one read of the tree answers every directory, instead of one subtree query per path
        entries = await ctx.call(ctx.registry.commits.files, commit)
        out += await ctx.call(_directories, entries, missing)
    return JSONResponse(out)


def _directories(entries: list[FileEntry], wanted: list[str]) -> list[dict[str, Any]]:
    """``dir_json`` for each of ``wanted`` that is a folder of some entry (entries sorted by path)."""
    names = set(wanted)
    kids: dict[str, list[FileEntry]] = {}
    for e in entries:
        cut = e.path.find("/")
        while cut >= 0:
            if e.path[:cut] in names:
                kids.setdefault(e.path[:cut], []).append(e)
            cut = e.path.find("/", cut + 1)
    return [dir_json(p, kids[p]) for p in wanted if p in kids]


async def _json_paths(raw: bytes) -> list[str]:
    import json

    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise UsageError("malformed JSON body") from None
    paths = data.get("paths") if isinstance(data, dict) else None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise UsageError('paths-info needs {"paths": [str, ...]}')
    return paths


async def refs(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    found = await ctx.call(ctx.registry.commits.refs, repo)
    full = {"branch": "refs/heads/", "tag": "refs/tags/", "pr": ""}
    as_json = [
        (r.kind, {"name": r.name, "ref": f"{full[r.kind]}{r.name}", "targetCommit": r.commit_id})
        for r in found
    ]
    body: dict[str, Any] = {
        "branches": [j for k, j in as_json if k == "branch"],
        "converts": [],
        "tags": [j for k, j in as_json if k == "tag"],
    }
    if ctx.qbool("include_prs"):
        prs = [j for k, j in as_json if k == "pr"]
        body["pullRequests"] = sorted(prs, key=lambda j: int(j["name"].rsplit("/", 1)[1]))
    return JSONResponse(body)


async def repo_commits(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    commit, _, _ = await resolve_revision(ctx, repo, ctx.rest, min_rest=0)
    offset = ctx.cursor()
    page = ctx.config.page_size
    found = await ctx.call(ctx.registry.commits.history, repo, commit, offset=offset, limit=page + 1)
    items = [
        {
            "id": c.id,
            "title": c.title,
            "message": c.message,
            "date": iso(c.created_at),
            "authors": [{"user": c.author, "avatar": None}],
        }
        for c in found[:page]
    ]
    headers = {"Link": ctx.next_link(offset + page)} if len(found) > page else {}
    return JSONResponse(items, headers=headers)
