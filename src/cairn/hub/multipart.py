"""LFS multipart upload (spec §7.4, optional in the protocol): large objects arrive as numbered parts of
``chunk_size`` bytes, each ``PUT`` to its own signed URL, then one completion ``POST``.

Parts are staged as files under ``STAGING/mp-<oid>/``, each written to a temporary name and renamed, so a
retried part replaces its earlier attempt. Completion concatenates the parts in order while hashing, and
the object becomes visible only when sha256 and size match; the part directory is then removed.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from cairn.errors import IntegrityError, UsageError
from cairn.hub.context import Ctx
from cairn.hub.upload import _OID, LFS_JSON, sign, verify_signature
from cairn.registry.lineage import StreamingFingerprint

__all__ = ["complete", "multipart_action", "put_part"]

_COPY = 8 << 20


def part_count(size: int, chunk: int) -> int:
    return max(1, math.ceil(size / chunk))


def multipart_action(ctx: Ctx, base: str, oid: str, size: int, expires: int, repo_id: int) -> dict[str, Any]:
    """The ``upload`` action for a multipart object: completion href plus one URL per part."""
    token = sign(ctx.secret, oid, size, expires, repo_id)
    chunk = ctx.config.multipart_chunk_bytes
    header: dict[str, str] = {"chunk_size": str(chunk)}
    for n in range(1, part_count(size, chunk) + 1):
        header[str(n)] = f"{base}/api/lfs-part/{oid}?token={token}&part={n}"
    return {"href": f"{base}/api/lfs-complete/{oid}?token={token}", "header": header}


def _parts_dir(ctx: Ctx, oid: str) -> Path:
    return ctx.registry.staging_dir() / f"mp-{oid}"


async def put_part(ctx: Ctx) -> Response:
    oid = ctx.params["oid"]
    if not _OID.fullmatch(oid):
        raise UsageError("not a sha256 object id")
    size, _ = verify_signature(ctx.secret, oid, ctx.q("token") or "")
    chunk = ctx.config.multipart_chunk_bytes
    count = part_count(size, chunk)
    number = ctx.qint("part", 0)
    if not 1 <= number <= count:
        raise UsageError(f"part must be between 1 and {count}")
    expected = min(chunk, size - (number - 1) * chunk)
    folder = _parts_dir(ctx, oid)
    folder.mkdir(exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".part-{number}-")
    digest = hashlib.sha256()
    total = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for data in ctx.request.stream():
                total += len(data)
                if total > expected:
                    raise IntegrityError(
                        f"part {number}", what="size", expected=expected, actual=f"> {expected}"
                    )
                digest.update(data)
                await ctx.call(out.write, data)
        if total != expected:
            raise IntegrityError(f"part {number}", what="size", expected=expected, actual=total)
        os.replace(name, folder / f"part-{number}")
    except (ClientDisconnect, Exception):
        Path(name).unlink(missing_ok=True)
        raise
    return JSONResponse({}, headers={"ETag": f'"{digest.hexdigest()}"'})


async def complete(ctx: Ctx) -> Response:
    oid = ctx.params["oid"]
    if not _OID.fullmatch(oid):
        raise UsageError("not a sha256 object id")
    size, repo_id = verify_signature(ctx.secret, oid, ctx.q("token") or "")
    data = await ctx.json()
    parts = data.get("parts")
    count = part_count(size, ctx.config.multipart_chunk_bytes)
    if data.get("oid") != oid or not isinstance(parts, list):
        raise UsageError('completion needs {"oid": <this oid>, "parts": [...]}')
    numbers = [p.get("partNumber") for p in parts if isinstance(p, dict)]
    if numbers != list(range(1, count + 1)):
        raise UsageError(f"completion must list parts 1..{count} in order")
    await ctx.call(ctx.registry.claim_blobs, repo_id, [oid])
    if await ctx.call(ctx.registry.repo_blob, repo_id, oid) is not None:  # a retried completion
        await ctx.call(shutil.rmtree, _parts_dir(ctx, oid), True)
        return JSONResponse({}, media_type=LFS_JSON)
    # assembled and hashed even if another repo stored the blob: that proves the uploader has the bytes
    await ctx.call(_assemble, ctx, oid, size, count, repo_id)
    return JSONResponse({}, media_type=LFS_JSON)


def _assemble(ctx: Ctx, oid: str, size: int, count: int, repo_id: int) -> None:
    folder = _parts_dir(ctx, oid)
    missing = [n for n in range(1, count + 1) if not (folder / f"part-{n}").is_file()]
    if missing:
        raise UsageError(f"parts not uploaded: {missing[:10]}")
    fd, name = tempfile.mkstemp(dir=ctx.registry.staging_dir(), prefix="assembled-")
    target = Path(name)
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    fingerprint = StreamingFingerprint(size)
    try:
        with os.fdopen(fd, "wb") as out:
            for n in range(1, count + 1):
                with (folder / f"part-{n}").open("rb") as part:
                    while block := part.read(_COPY):
                        sha256.update(block)
                        sha1.update(block)
                        fingerprint.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if sha256.hexdigest() != oid:
            shutil.rmtree(folder, ignore_errors=True)  # the parts can never form this object
            raise IntegrityError(oid, what="sha256", expected=oid, actual=sha256.hexdigest())
        ctx.registry.ingest_blob(
            target,
            oid,
            sha1.hexdigest(),
            size,
            repo_id=repo_id,
            fingerprint=fingerprint.result(),
            headers=fingerprint.headers,  # the header it parsed serves the scan too
        )
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        target.unlink(missing_ok=True)
