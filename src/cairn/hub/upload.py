"""The upload path (spec §7): preupload decides regular vs LFS, the LFS batch API hands out signed
upload URLs, the upload ``PUT`` streams to a staging file while hashing and is checked against its sha256
and size before the blob becomes visible, and the NDJSON commit applies all operations atomically.

Bytes always land in the blob store before any row refers to them; a client that disconnects half-way
leaves no blob, no row and no commit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from cairn.errors import IntegrityError, LimitExceededError, PermissionDeniedError, UsageError
from cairn.hub.context import PREFIX, Ctx, ua_version
from cairn.registry import AddFile, DeleteFile, DeleteFolder, Operation, Repo, check_path, pulls
from cairn.registry.commits import LFS_THRESHOLD, MAX_OPERATIONS, is_lfs_path, is_pr_ref
from cairn.registry.discussions import MAX_COMMENT_CHARS, MAX_TITLE_CHARS
from cairn.registry.lineage import StreamingFingerprint
from cairn.registry.models import Commit

__all__ = ["commit", "lfs_batch", "lfs_upload", "lfs_verify", "preupload", "sign", "verify_signature"]

_OID = re.compile(r"[0-9a-f]{64}")
_FLUSH = 4 << 20
LFS_JSON = "application/vnd.git-lfs+json"
XET_WARNING = "xet; This hub does not support Xet uploads. Set HF_HUB_DISABLE_XET=1 to upload large files."


def sign(secret: bytes, oid: str, size: int, expires: int, repo_id: int) -> str:
    """An upload token for ``oid`` of ``size`` bytes, bound to the repo it was issued for."""
    mac = hmac.new(secret, f"{oid}.{size}.{expires}.{repo_id}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{size}.{repo_id}.{mac}"


def verify_signature(secret: bytes, oid: str, token: str) -> tuple[int, int]:
    """(signed size, repo id) if ``token`` is a valid, unexpired upload token for ``oid``."""
    try:
        expires_s, size_s, repo_s, _mac = token.split(".")
        if not (expires_s.isascii() and size_s.isascii() and repo_s.isascii()):
            raise ValueError(token)
        expires, size, repo_id = int(expires_s), int(size_s), int(repo_s)
    except ValueError:
        raise PermissionDeniedError("invalid upload token") from None
    if not hmac.compare_digest(sign(secret, oid, size, expires, repo_id), token):
        raise PermissionDeniedError("invalid upload token")
    if expires < time.time():
        raise PermissionDeniedError("upload token expired")
    return size, repo_id


def _branch_only(kind: str, rev: str) -> None:
    if kind not in {"branch", "pr"}:
        raise UsageError(f"cannot commit to {kind} {rev!r}: commits go to branches and refs/pr/N")


async def _target_repo(ctx: Ctx, rev: str) -> Repo:
    """The repo of an upload to ``rev``: writers only, except that opening a pull request
    (``create_pr=1``) needs only read access, and ``refs/pr/N`` its author's or a writer's
    (:func:`cairn.registry.pulls.check_push`)."""
    if ctx.qbool("create_pr"):
        repo = await ctx.repo(content=True)
        pulls.acting_user(ctx.principal, repo)
        return repo
    if is_pr_ref(rev):
        repo = await ctx.repo()
        await ctx.call(ctx.registry.commits.resolve, repo, rev)  # RevisionNotFound for a missing PR
        d = await ctx.call(ctx.registry.discussions.get, repo, int(rev.rsplit("/", 1)[1]))
        await ctx.call(pulls.check_push, ctx.registry, repo, ctx.principal, d)
        return repo
    return await ctx.repo(write=True)


async def preupload(ctx: Ctx) -> Response:
    rev = ctx.rest[0] if ctx.rest else "main"
    repo = await _target_repo(ctx, rev)
    head, kind = await ctx.call(ctx.registry.commits.resolve, repo, rev)
    _branch_only(kind, rev)
    data = await ctx.json()
    items = data.get("files")
    if not isinstance(items, list) or len(items) > 1000:
        raise UsageError("'files' must be a list of at most 1000 entries")
    version = ua_version(ctx.request.headers.get("user-agent", ""))
    new_client = version is not None and version >= (1, 20)
    out, any_lfs = [], False
    paths = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise UsageError("each file needs a string 'path'")
        size = item.get("size", 0)
        if not isinstance(size, int) or size < 0:
            raise UsageError(f"{item['path']}: 'size' must be a non-negative integer")
        paths.append(check_path(item["path"]))
    current = {e.path: e for e in await ctx.call(ctx.registry.commits.files_at, head, paths)}
    for item, path in zip(items, paths, strict=True):
        size = item.get("size", 0)
        sample = item.get("sample") or ""
        try:
            binary = b"\0" in base64.b64decode(sample[:1024], validate=False)
        except (binascii.Error, ValueError, TypeError):
            binary = False
        mode = "lfs" if (is_lfs_path(path) or size >= LFS_THRESHOLD or binary) and size > 0 else "regular"
        if mode == "lfs" and new_client and size <= ctx.config.regular_upload_cap:
            mode = "regular"  # spec §7.6 B: keep >=1.20 clients off Xet
        any_lfs = any_lfs or mode == "lfs"
        entry: dict[str, Any] = {"path": path, "uploadMode": mode, "shouldIgnore": False}
        if path in current:
            entry["oid"] = current[path].sha256 if mode == "lfs" else current[path].git_sha1
        out.append(entry)
    headers = {"X-HF-Warning": XET_WARNING} if any_lfs and new_client else {}
    return JSONResponse({"files": out, "commitOid": head}, headers=headers)


async def lfs_batch(ctx: Ctx) -> Response:
    data = await ctx.json()
    ref = data.get("ref")
    name = ref.get("name") if isinstance(ref, dict) else None
    if ref is None or (isinstance(name, str) and is_pr_ref(name)):
        # no ref: the client is opening a pull request (its bytes are hashed like any other upload);
        # refs/pr/N: that PR's author or a writer
        repo = await ctx.repo(content=True)
        pulls.acting_user(ctx.principal, repo)
        if isinstance(name, str):
            await _target_repo(ctx, name)
    else:
        repo = await ctx.repo(write=True)
    if data.get("operation") != "upload":
        raise UsageError("only the 'upload' LFS operation is supported; download through /resolve")
    transfers = data.get("transfers") or ["basic"]
    if not isinstance(transfers, list):
        raise UsageError("'transfers' must be a list")
    objects = data.get("objects")
    if not isinstance(objects, list) or len(objects) > 1000:
        raise UsageError("'objects' must be a list of at most 1000 entries")
    base = ctx.base_url()
    expires = int(time.time()) + ctx.config.upload_url_ttl_s
    expires_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expires))
    out = []
    # stored objects the client will not upload again: their grace period restarts before they are
    # looked up, so the collector cannot take them before the commit that follows (gc.py)
    claimed = [o["oid"] for o in objects if isinstance(o, dict) and isinstance(o.get("oid"), str)]
    await ctx.call(ctx.registry.claim_blobs, repo.id, [c for c in claimed if _OID.fullmatch(c)])
    for obj in objects:
        oid = obj.get("oid") if isinstance(obj, dict) else None
        size = obj.get("size") if isinstance(obj, dict) else None
        if not isinstance(oid, str) or not _OID.fullmatch(oid) or not isinstance(size, int) or size < 0:
            out.append(
                {
                    "oid": str(oid)[:64],
                    "size": size if isinstance(size, int) else 0,
                    "error": {"code": 422, "message": "oid must be a sha256 hex digest and size an integer"},
                }
            )
            continue
        if size > ctx.config.max_file_bytes:
            out.append({"oid": oid, "size": size, "error": {"code": 422, "message": "file too large"}})
            continue
        # only this repo's own objects skip the upload: a global look-up would reveal other repos' bytes
        known = await ctx.call(ctx.registry.repo_blob, repo.id, oid)
        if known is not None and known.size == size:
            out.append({"oid": oid, "size": size})
            continue
        token = sign(ctx.secret, oid, size, expires, repo.id)
        if size > ctx.config.multipart_chunk_bytes and "multipart" in transfers:
            from cairn.hub.multipart import multipart_action

            upload_action = multipart_action(ctx, base, oid, size, expires, repo.id)
        else:
            upload_action = {"href": f"{base}/api/lfs-upload/{oid}?token={token}"}
        out.append(
            {
                "oid": oid,
                "size": size,
                "authenticated": True,
                "actions": {
                    "upload": {**upload_action, "expires_at": expires_at},
                    "verify": {
                        "href": f"{base}/api/lfs-verify/{repo.type}s/{repo.repo_id}",
                        "expires_at": expires_at,
                    },
                },
            }
        )
    return JSONResponse({"transfer": "basic", "hash_algo": "sha256", "objects": out}, media_type=LFS_JSON)


async def lfs_upload(ctx: Ctx) -> Response:
    oid = ctx.params["oid"]
    if not _OID.fullmatch(oid):
        raise UsageError("not a sha256 object id")
    size, repo_id = verify_signature(ctx.secret, oid, ctx.q("token") or "")
    declared = ctx.request.headers.get("content-length")
    if declared is not None and declared != str(size):
        raise IntegrityError(oid, what="Content-Length", expected=size, actual=declared)
    # even when the blob is stored already, the bytes are hashed: that proves the uploader has them
    staged = await _stage_stream(ctx, size)
    try:
        sha256, git_sha1, streamed = staged[1], staged[2], staged[3]
        if sha256 != oid:
            raise IntegrityError(oid, what="sha256", expected=oid, actual=sha256)
        await ctx.call(
            ctx.registry.ingest_blob,
            staged[0],
            oid,
            git_sha1,
            size,
            repo_id=repo_id,
            fingerprint=streamed.result(),
            headers=streamed.headers,  # the header it parsed serves the scan too
        )
    finally:
        staged[0].unlink(missing_ok=True)
    return JSONResponse({})


async def _stage_stream(ctx: Ctx, size: int) -> tuple[Path, str, str, StreamingFingerprint]:
    """Stream the request body into a staging file, hashing sha256 and git SHA-1 on the way, and the
    lineage fingerprint when the bytes are a safetensors file (so the file is not read again for it)."""
    fd, name = tempfile.mkstemp(dir=ctx.registry.staging_dir(), prefix="upload-")
    path = Path(name)
    out = os.fdopen(fd, "wb", buffering=0)
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    fingerprint = StreamingFingerprint(size)
    total = 0
    buf: list[bytes] = []
    pending = 0

    def flush(parts: list[bytes]) -> None:
        data = b"".join(parts)
        sha256.update(data)
        sha1.update(data)
        fingerprint.update(data)
        view = memoryview(data)
        while view:
            view = view[out.write(view) or 0 :]

    try:
        async for chunk in ctx.request.stream():
            total += len(chunk)
            if total > size:
                raise IntegrityError(path.name, what="size", expected=size, actual=f"more than {size}")
            buf.append(chunk)
            pending += len(chunk)
            if pending >= _FLUSH:
                await ctx.call(flush, buf)
                buf, pending = [], 0
        await ctx.call(flush, buf)
        if total != size:
            raise IntegrityError(path.name, what="size", expected=size, actual=total)
        os.fsync(fd)
    except (ClientDisconnect, Exception):
        out.close()
        path.unlink(missing_ok=True)
        raise
    out.close()
    return path, sha256.hexdigest(), sha1.hexdigest(), fingerprint


async def lfs_verify(ctx: Ctx) -> Response:
    repo = await ctx.repo(content=True)  # uploads for pull requests verify too; nothing is written here
    pulls.acting_user(ctx.principal, repo)
    data = await ctx.json()
    oid, size = data.get("oid"), data.get("size")
    if not isinstance(oid, str) or not _OID.fullmatch(oid) or not isinstance(size, int):
        raise UsageError("verify needs a sha256 'oid' and an integer 'size'")
    await ctx.call(ctx.registry.claim_blobs, repo.id, [oid])
    known = await ctx.call(ctx.registry.repo_blob, repo.id, oid)
    if known is None or known.size != size:
        return JSONResponse({"error": f"object {oid} of size {size} not found", "code": "missing_blob"}, 404)
    return JSONResponse({})


def _op(ctx: Ctx, line: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    key, value = line.get("key"), line.get("value")
    if not isinstance(key, str) or not isinstance(value, dict):
        raise UsageError('each commit line must be {"key": str, "value": {...}}')
    return key, value


async def commit(ctx: Ctx) -> Response:
    rev = ctx.rest[0] if ctx.rest else "main"
    repo = await _target_repo(ctx, rev)
    who = ctx.require_user()
    _, kind = await ctx.call(ctx.registry.commits.resolve, repo, rev)
    _branch_only(kind, rev)
    header: dict[str, Any] | None = None
    ops: list[Operation] = []
    async for line in _ndjson(ctx):
        key, value = _op(ctx, line)
        if header is None:
            if key != "header":
                raise UsageError("the first commit line must be the header")
            header = value
            continue
        if len(ops) >= MAX_OPERATIONS:  # refuse early, before more bytes are ingested
            raise LimitExceededError(f"a commit may have at most {MAX_OPERATIONS} operations")
        ops.append(await _operation(ctx, repo.id, key, value))
    if header is None:
        raise UsageError("empty commit body")
    summary, description, parent = (
        header.get("summary"),
        header.get("description", ""),
        header.get("parentCommit"),
    )
    if not isinstance(summary, str) or not isinstance(description, str | None):
        raise UsageError("header needs a string 'summary'")
    if parent is not None and (not isinstance(parent, str) or not re.fullmatch(r"[0-9a-f]{40}", parent)):
        raise UsageError("'parentCommit' must be a 40-hex commit id")
    if ctx.qbool("create_pr") or kind == "pr":
        done, pr_url = await _commit_to_pr(ctx, repo, rev, ops, summary, description or "", parent)
    else:
        done = await ctx.call(
            ctx.registry.commit,
            repo,
            rev,
            ops,
            title=summary,
            message=description or "",
            author=who.user.name,
            parent=parent,
        )
        pr_url = None
    url = f"{ctx.base_url()}/{PREFIX[repo.type]}{repo.repo_id}/commit/{done.id}"
    return JSONResponse(
        {"success": True, "commitOid": done.id, "commitUrl": url, "hookOutput": "", "pullRequestUrl": pr_url}
    )


def _pr_title(summary: str) -> str:
    """A PR's title from its first commit's summary: one line, 3-200 characters."""
    title = " ".join(summary.split())[:MAX_TITLE_CHARS]
    return title if len(title) >= 3 else "Upload files"


async def _commit_to_pr(
    ctx: Ctx, repo: Repo, rev: str, ops: list[Operation], title: str, message: str, parent: str | None
) -> tuple[Commit, str]:
    """Commit to ``refs/pr/N``, or with ``create_pr=1`` open a PR into branch ``rev`` (based on
    ``parent`` when given) and commit to it; a PR whose first commit fails is removed again."""
    created = None
    if ctx.qbool("create_pr"):
        created = await ctx.call(
            pulls.open_pull_request,
            ctx.registry,
            repo,
            ctx.principal,
            _pr_title(title),
            message[:MAX_COMMENT_CHARS] or None,
            target=rev,
            base=parent,
        )
        d, parent = created, None
    else:
        d = await ctx.call(ctx.registry.discussions.get, repo, int(rev.rsplit("/", 1)[1]))
    try:
        done = await ctx.call(
            pulls.commit_to_pull_request,
            ctx.registry,
            repo,
            ctx.principal,
            d,
            ops,
            title=title,
            message=message,
            parent=parent,
        )
    except BaseException:
        if created is not None:
            await ctx.call(ctx.registry.discussions.delete, repo, created)
        raise
    return done, f"{ctx.repo_url(repo)}/discussions/{d.num}"


async def _operation(ctx: Ctx, repo_id: int, key: str, value: dict[str, Any]) -> Operation:
    path = value.get("path")
    if not isinstance(path, str):
        raise UsageError(f"{key}: 'path' must be a string")
    if key == "file":
        check_path(path)
        content = value.get("content")
        if not isinstance(content, str) or value.get("encoding", "base64") != "base64":
            raise UsageError(f"{path}: 'content' must be a base64 string")
        if len(content) > ctx.config.max_regular_file_bytes * 4 // 3 + 8:
            raise LimitExceededError(
                f"{path}: inline file larger than {ctx.config.max_regular_file_bytes} bytes"
            )
        try:
            data = await ctx.call(binascii.a2b_base64, content, strict_mode=True)
        except (binascii.Error, ValueError):
            raise UsageError(f"{path}: 'content' is not valid base64") from None
        blob = await ctx.call(ctx.registry.ingest_bytes, data, repo_id=repo_id)
        return AddFile(path, blob.sha256)
    if key == "lfsFile":
        check_path(path)
        oid, size = value.get("oid"), value.get("size")
        if not isinstance(oid, str) or not _OID.fullmatch(oid) or value.get("algo", "sha256") != "sha256":
            raise UsageError(f"{path}: lfsFile needs a sha256 'oid'")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise UsageError(f"{path}: 'size' must be a non-negative integer")
        return AddFile(path, oid, size=size, lfs=True)
    if key == "deletedFile":
        return DeleteFile(check_path(path))
    if key == "deletedFolder":
        return DeleteFolder(check_path(path.rstrip("/")) + "/")
    raise UsageError(f"unknown commit operation {key!r}")


async def _ndjson(ctx: Ctx) -> Any:
    """Yield each JSON object of the NDJSON body, enforcing line and body limits as it streams."""
    limit = ctx.config.max_commit_bytes
    line_limit = ctx.config.max_regular_file_bytes * 4 // 3 + (1 << 20)
    buf = bytearray()
    total = 0
    scanned = 0  # bytes of buf already known to hold no newline: a long line is scanned once, not per chunk
    async for chunk in ctx.request.stream():
        total += len(chunk)
        if total > limit:
            raise LimitExceededError(f"commit body exceeds {limit} bytes")
        buf += chunk
        while (nl := buf.find(b"\n", scanned)) >= 0:
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            scanned = 0
            if line.strip():
                yield _parse_line(line)
        scanned = len(buf)
        if len(buf) > line_limit:
            raise LimitExceededError(f"a commit line exceeds {line_limit} bytes")
    if bytes(buf).strip():
        yield _parse_line(bytes(buf))


def _parse_line(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as err:
        raise UsageError(f"malformed NDJSON line: {err}") from None
    except RecursionError:
        raise UsageError("malformed NDJSON line: nested too deeply") from None
    if not isinstance(value, dict):
        raise UsageError("each NDJSON line must be a JSON object")
    return value
