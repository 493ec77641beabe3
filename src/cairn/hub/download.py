"""``HEAD``/``GET /{prefix}{ns}/{name}/resolve/{rev}/{path}``: file metadata and content (spec §3).

Answers directly with 200/206, never a redirect: ``X-Repo-Commit``, a content-addressed ``ETag`` (git
SHA-1 for regular files, sha256 for LFS files, plus ``X-Linked-Etag``/``X-Linked-Size``), the real
``Content-Length``, and single-range support (206, 416). Never any Xet header.
"""

from __future__ import annotations

import mimetypes
import re
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from cairn.errors import UsageError
from cairn.hub.context import Ctx
from cairn.registry import FileEntry, Repo, RevisionNotFoundError, check_path

__all__ = ["content_type", "parse_range", "resolve_file", "resolve_revision"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str, total: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` for a single ``bytes=`` range; ``None`` when absent or ignorable.
    Raises ``ValueError`` when the range cannot be satisfied."""
    m = _RANGE.fullmatch(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # malformed or multi-range: RFC 9110 lets us ignore it and send 200
    if not m.group(1):
        suffix = int(m.group(2))
        if suffix == 0:
            raise ValueError("empty suffix range")
        return max(0, total - suffix), total
    start = int(m.group(1))
    end = int(m.group(2)) + 1 if m.group(2) else total
    if start >= total or end <= start:
        raise ValueError("range not satisfiable")
    return start, min(end, total)


async def resolve_revision(
    ctx: Ctx, repo: Repo, segments: list[str], *, min_rest: int = 1
) -> tuple[str, str, list[str]]:
    """(commit id, revision text, remaining segments) from already percent-decoded path segments. The
    revision is normally one segment (``dev%2Fx``); for unencoded revisions containing ``/`` the
    shortest existing branch or tag prefix wins (spec §1.2). ``min_rest``: segments that must remain."""
    first_error: RevisionNotFoundError | None = None
    for n in range(1, len(segments) - min_rest + 1):
        rev = "/".join(segments[:n])
        try:
            commit, _ = await ctx.call(ctx.registry.commits.resolve, repo, rev)
            return commit, rev, segments[n:]
        except RevisionNotFoundError as err:
            first_error = first_error or err
    if first_error is not None:
        raise first_error
    raise RevisionNotFoundError(repo.repo_id, "")


def content_type(name: str) -> str:
    """The served type of a file called ``name``: its guessed type when that is on an allowlist of types
    a browser only displays or downloads (JSON, plain text, CSV, Markdown, raster images, archives...);
    any other text or markup type (HTML, SVG, XML, scripts, CSS) as plain text, and anything else (PDF, mail,
    Office files, types the host's mime database adds) as an opaque download. Downloads also carry
    ``nosniff`` and a sandbox CSP, so even a wrong guess cannot run as the hub's origin."""
    guessed = (mimetypes.guess_type(name)[0] or "application/octet-stream").lower()
    if guessed in _PASSIVE_TYPES:
        return guessed
    if guessed.startswith("text/") or _MARKUP.search(guessed):
        return "text/plain; charset=utf-8"  # markup and code: readable as source, never rendered
    return "application/octet-stream"


#: markup and script types outside text/*: HTML, SVG, XML documents, JavaScript
_MARKUP = re.compile(r"html|svg|javascript|ecmascript|[/+]xml$")
_PASSIVE_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/json",
        "text/plain",
        "text/csv",
        "text/markdown",
        "text/tab-separated-values",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "audio/mpeg",
        "audio/wav",
        "audio/x-wav",
        "audio/flac",
        "audio/ogg",
        "video/mp4",
        "video/webm",
        "application/zip",
        "application/gzip",
        "application/x-tar",
        "application/x-bzip2",
        "application/x-xz",
        "application/zstd",
    }
)


def file_headers(entry: FileEntry, commit: str) -> dict[str, str]:
    name = entry.path.rsplit("/", 1)[-1]
    headers = {
        "X-Repo-Commit": commit,
        "ETag": f'"{entry.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Type": content_type(name),
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}",
        # uploaded content must never run as the hub's origin (stored XSS)
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    if entry.lfs:
        headers["X-Linked-Etag"] = f'"{entry.sha256}"'
        headers["X-Linked-Size"] = str(entry.size)
    return headers


async def resolve_file(ctx: Ctx) -> Response:
    segments = ctx.rest
    if len(segments) < 2:
        raise UsageError("resolve needs a revision and a file path")
    path = check_path("/".join(segments[1:]))
    p = ctx.params
    try:  # the common case, one query: the revision is one segment (a branch, tag or commit id)
        repo, commit, entry = await ctx.call(
            ctx.registry.lookup_file,
            p["type"],
            p["ns"],
            p["name"],
            segments[0],
            path,
            ctx.principal,
            content=ctx.request.method != "HEAD",
        )
    except RevisionNotFoundError:  # perhaps an unencoded revision containing '/'
        repo = await ctx.repo(content=True)
        commit, _rev, rest = await resolve_revision(ctx, repo, segments)
        path = check_path("/".join(rest))
        entry = await ctx.call(ctx.registry.commits.file, commit, path)
        if ctx.request.method != "HEAD":
            await ctx.call(ctx.registry.check_download, repo, entry)
    headers = file_headers(entry, commit)
    start, end, status = 0, entry.size, 200
    range_header = ctx.request.headers.get("range")
    if range_header:
        try:
            window = parse_range(range_header, entry.size)
        except ValueError:
            headers["Content-Range"] = f"bytes */{entry.size}"
            headers["Content-Length"] = "0"
            return Response(status_code=416, headers=headers)
        if window is not None:
            start, end = window
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
    headers["Content-Length"] = str(end - start)
    if ctx.request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    chunks = await ctx.call(ctx.registry.iter_blob, entry.sha256, start, end)
    # A download is a GET of config.json from its first byte (the Hub's rule for model repos).
    counted = entry.path == "config.json" and start == 0
    task = BackgroundTask(ctx.registry.repos.count_download, repo.id) if counted else None
    return StreamingResponse(chunks, status_code=status, headers=headers, background=task)
