"""What a revision holds: resolve it to a commit id, then list the commit's files (spec §4.1, §4.3),
validating every entry a hub returns before anything is written."""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from cairn.client.cache import FileSpec
from cairn.client.errors import HubResponseError
from cairn.client.http import HubSession, parse_json, quote_rev
from cairn.client.refs import RepoRef, check_repo_path, is_commit_id

__all__ = ["MAX_FILES", "list_files", "resolve_commit", "select"]

MAX_FILES = 1_000_000
MAX_PAGES = 10_000
MAX_FILE_SIZE = 1 << 50
_SHA1 = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def resolve_commit(session: HubSession, ref: RepoRef) -> str:
    """The 40-hex commit id ``ref.revision`` (default ``main``) points at now."""
    rev = ref.revision or "main"
    info = session.json("GET", f"/api/models/{ref.repo_id}/revision/{quote_rev(rev)}")
    sha = info.get("sha") if isinstance(info, dict) else None
    if not isinstance(sha, str) or not is_commit_id(sha):
        raise HubResponseError(f"hub gave no valid commit id for {ref}", url=session.endpoint)
    if is_commit_id(rev) and sha != rev:
        raise HubResponseError(f"asked for commit {rev}, hub answered {sha}", url=session.endpoint)
    return sha


def _spec(entry: Any) -> FileSpec | None:
    if not isinstance(entry, dict):
        raise HubResponseError("tree entry is not an object")
    if entry.get("type") == "directory":
        check_repo_path(entry.get("path"))
        return None
    if entry.get("type") != "file":
        raise HubResponseError(f"tree entry of unknown type {str(entry.get('type'))[:40]!r}")
    path = check_repo_path(entry.get("path"))
    size, oid, lfs = entry.get("size"), entry.get("oid"), entry.get("lfs")
    if type(size) is not int or not 0 <= size <= MAX_FILE_SIZE:
        raise HubResponseError(f"{path}: invalid size in tree listing")
    if not isinstance(oid, str) or not _SHA1.fullmatch(oid):
        raise HubResponseError(f"{path}: invalid oid in tree listing")
    sha256 = None
    if lfs is not None:
        lfs_oid = lfs.get("oid") if isinstance(lfs, dict) else None
        if not isinstance(lfs_oid, str) or not _SHA256.fullmatch(lfs_oid):
            raise HubResponseError(f"{path}: invalid LFS oid in tree listing")
        if lfs.get("size", size) != size:
            raise HubResponseError(f"{path}: LFS size differs from file size in tree listing")
        sha256 = lfs_oid
    return FileSpec(path, size, oid, sha256)


def list_files(session: HubSession, ref: RepoRef, commit: str) -> list[FileSpec]:
    """Every file of ``commit`` (recursive tree listing, following ``Link: rel="next"`` pages on the
    hub's own origin only)."""
    url: str | None = session.url(f"/api/models/{ref.repo_id}/tree/{commit}?recursive=true&expand=false")
    files: dict[str, FileSpec] = {}
    pages = 0
    while url is not None:
        pages += 1
        if pages > MAX_PAGES:
            raise HubResponseError("tree listing has too many pages", url=session.endpoint)
        response = session.request("GET", url)
        page = parse_json(response)
        if not isinstance(page, list):
            raise HubResponseError("tree listing is not a list", url=url)
        for entry in page:
            spec = _spec(entry)
            if spec is None:
                continue
            if spec.path in files and files[spec.path] != spec:
                raise HubResponseError(f"{spec.path}: listed twice with different content", url=url)
            files[spec.path] = spec
            if len(files) > MAX_FILES:
                raise HubResponseError("tree listing has too many files", url=url)
        match = _LINK.search(response.headers.get("link", ""))
        url = match.group(1) if match else None
        if url is not None and not session.same_origin(url):
            raise HubResponseError("tree listing links to another origin; refusing to follow", url=url)
    _check_prefixes(files)
    return sorted(files.values(), key=lambda s: s.path)


def _check_prefixes(files: dict[str, FileSpec]) -> None:
    """A file cannot also be a folder (``a`` and ``a/b``): such a listing cannot be laid out on disk."""
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise HubResponseError(f"{path!r} lies below the file {'/'.join(parts[:i])!r}")


def select(
    files: Sequence[FileSpec], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[FileSpec]:
    """Files matching any ``include`` glob (all when none) and no ``exclude`` glob (``fnmatch`` rules,
    as huggingface_hub's ``allow_patterns``; a pattern ending in ``/`` means everything below it)."""

    def match(path: str, patterns: Sequence[str]) -> bool:
        return any(fnmatchcase(path, p + "*" if p.endswith("/") else p) for p in patterns)

    return [f for f in files if (not include or match(f.path, include)) and not match(f.path, exclude)]
