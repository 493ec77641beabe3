"""``pull``: download a revision into the cache, in parallel, resuming and verifying every file.

Order of work: resolve the revision to a commit id (so a branch that moves mid-download cannot mix two
commits) → list the commit's files → select by include/exclude → for each file, reuse a cached blob
whose hash still matches, else download ``/resolve/<commit>/<path>`` into ``blobs/<etag>.incomplete``
(continuing an existing one with ``Range: bytes=N-``), hash it, and rename it into place only when its
sha256 (LFS) or git blob SHA-1 (regular files) matches → link it into ``snapshots/<commit>/`` → record
``refs/<revision>``. With a target directory the files are then copied there as well.

Files this pull hashed in full are recorded in the verified-file stat cache
(:mod:`cairn.format.statcache`) where they were placed (the snapshot, the target directory), as a save
records what it wrote, so that ``cairn.load`` of the pulled checkpoint does not hash them again.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from cairn.client.cache import CacheError, FileSpec, RepoCache, file_digests, place
from cairn.client.errors import HubResponseError
from cairn.client.http import HubConnectionError, HubSession
from cairn.client.listing import list_files, resolve_commit, select
from cairn.client.progress import Progress, silent
from cairn.client.refs import RepoRef, safe_join
from cairn.errors import IntegrityError
from cairn.format.statcache import Stamp, default_cache, settled_stamps

__all__ = ["PullResult", "PulledFile", "pull", "remember_verified"]

_RETRIES = 3
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class PulledFile:
    path: str
    size: int
    sha256: str
    etag: str
    status: str  # "downloaded" | "resumed" | "cached" | "repaired"


@dataclass(frozen=True)
class PullResult:
    repo_id: str
    revision: str
    commit: str
    snapshot: Path
    directory: Path
    files: tuple[PulledFile, ...]
    #: etag → the blob's stamp right after this pull hashed all of it (files it only size-checked are
    #: absent); what :func:`remember_verified` records
    verified: Mapping[str, Stamp] = field(default_factory=dict, repr=False, compare=False)

    @property
    def downloaded_bytes(self) -> int:
        return sum(f.size for f in self.files if f.status != "cached")

    def to_dict(self) -> dict[str, object]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "snapshot": str(self.snapshot),
            "directory": str(self.directory),
            "files": [vars(f) for f in self.files],
        }


def pull(
    ref: RepoRef,
    *,
    endpoint: str,
    token: str | None,
    cache_dir: Path,
    directory: Path | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    workers: int = 8,
    progress: Progress | None = None,
    recheck_cached: bool = True,
) -> PullResult:
    """Download ``ref`` into ``cache_dir`` (and copy it into ``directory`` if given).

    Every downloaded byte is verified. Blobs already in the cache are re-hashed too unless
    ``recheck_cached=False``, which checks only their size (for callers that verify the content
    themselves, such as ``cairn.load``; ``PulledFile.sha256`` is then ``""`` for cached regular files).
    """
    bar = progress or silent()
    with HubSession(endpoint, token) as session:
        commit = resolve_commit(session, ref)
        wanted = select(list_files(session, ref, commit), include, exclude)
        cache = RepoCache(cache_dir, ref)
        cache.prepare()
        bar.start(sum(f.size for f in wanted), len(wanted))
        by_etag: dict[str, list[FileSpec]] = {}
        for spec in wanted:
            by_etag.setdefault(spec.etag, []).append(spec)
        with ThreadPoolExecutor(max(1, workers)) as pool:
            fetched = list(
                pool.map(
                    lambda specs: _fetch(session, ref, commit, cache, specs[0], bar, recheck_cached),
                    by_etag.values(),
                )
            )
        status = {etag: (st, sha) for etag, (st, sha, _) in zip(by_etag, fetched, strict=True)}
        verified = {
            etag: stamp for etag, (_, _, stamp) in zip(by_etag, fetched, strict=True) if stamp is not None
        }
        results = []
        for spec in wanted:
            cache.link(commit, spec)
            st, sha = status[spec.etag]
            results.append(PulledFile(spec.path, spec.size, sha, spec.etag, st))
        cache.write_ref(ref.revision or "main", commit)
        bar.close()
    snapshot = cache.snapshot(commit)
    target = snapshot
    if directory is not None:
        target = directory
        target.mkdir(parents=True, exist_ok=True)
        for spec in wanted:
            place(cache.blob(spec.etag), safe_join(target, spec.path), copy=True)
    result = PullResult(
        ref.repo_id, ref.revision or "main", commit, snapshot, target, tuple(results), verified
    )
    remember_verified(snapshot, result, cache)
    if directory is not None:
        remember_verified(directory, result, cache, copies=True)
    return result


def _same_bytes(a: Stamp, b: Stamp) -> bool:
    """Whether two stamps of one inode show no change of content (``ctime`` moves when a link is
    added, so it is left out here; every write moves ``mtime``)."""
    return (a.dev, a.ino, a.size, a.mtime_ns) == (b.dev, b.ino, b.size, b.mtime_ns)


def remember_verified(root: Path, result: PullResult, cache: RepoCache, *, copies: bool = False) -> None:
    """Record in the verified-file stat cache the files of ``result`` placed under ``root`` (hard links
    to their blobs; ``copies=True``: copies of them) whose blobs this pull hashed in full and which have
    not changed since: a file is recorded only while its blob still has the size and ``mtime`` it had
    when it was hashed (a link must be that very inode), and, as for a save, only once its stamp is safe
    from racy timestamps (:func:`~cairn.format.statcache.settled_stamps`). A failure only means no
    record."""
    store = default_cache()
    if store is None:
        return
    sha = {f.path: f.sha256 for f in result.files if f.etag in result.verified and f.sha256}
    etag = {f.path: f.etag for f in result.files}
    try:
        record = store.open(root)
        stamps = settled_stamps(root, {f.path: f.size for f in result.files if f.path in sha})
        for path, (stamp, taken) in stamps.items():
            hashed = result.verified[etag[path]]
            blob = Stamp.of(os.stat(cache.blob(etag[path])))
            linked = stamp.dev == blob.dev and stamp.ino == blob.ino
            if _same_bytes(blob, hashed) and stamp.size == hashed.size and (linked or copies):
                record.add(path, stamp, sha[path], taken_ns=taken)
        record.save()
    except OSError:  # the files are in place; the cache is only an optimisation
        return


def _matches(spec: FileSpec, sha256: str, sha1: str, size: int) -> bool:
    if size != spec.size:
        return False
    return sha256 == spec.sha256 if spec.sha256 else sha1 == spec.git_sha1


def _fetch(
    session: HubSession,
    ref: RepoRef,
    commit: str,
    cache: RepoCache,
    spec: FileSpec,
    bar: Progress,
    recheck: bool = True,
) -> tuple[str, str, Stamp | None]:
    """Make ``blobs/<etag>`` hold exactly ``spec``'s content; (status, sha256, the blob's stamp right
    after this call hashed all of it, or None when it only checked the size).

    The download runs under the per-etag lock, so a concurrent pull (cairn or huggingface_hub) of the
    same blob waits and then finds the finished blob instead of appending to the same partial file."""
    blob = cache.blob(spec.etag)
    if blob.is_file() and not recheck and blob.stat().st_size == spec.size:
        bar.advance(spec.size, done_file=True)
        return "cached", spec.sha256 or "", None
    with cache.lock(spec.etag):
        try:
            return _fetch_locked(session, ref, commit, cache, spec, bar)
        except OSError as err:
            raise CacheError(f"{spec.path}: cannot write {blob}: {err}") from None


def _hash_in_place(blob: Path, spec: FileSpec) -> tuple[int, str, str, Stamp | None]:
    """The digests of a file already in place, and its stamp if it did not change while it was read."""
    before = Stamp.of(blob.stat())
    size, sha256, sha1 = file_digests(blob, git_sha1=spec.sha256 is None)
    after = Stamp.of(blob.stat())
    return size, sha256, sha1, (after if after == before else None)


def _fetch_locked(
    session: HubSession, ref: RepoRef, commit: str, cache: RepoCache, spec: FileSpec, bar: Progress
) -> tuple[str, str, Stamp | None]:
    blob = cache.blob(spec.etag)
    repaired = False
    if blob.is_file():
        size, sha256, sha1, stamp = _hash_in_place(blob, spec)
        if _matches(spec, sha256, sha1, size):  # present, or another process just finished it
            bar.advance(spec.size, done_file=True)
            return "cached", sha256, stamp
        blob.unlink()  # corrupted or truncated: fetch it again (snapshot entries are re-linked after)
        repaired = True
    part = cache.incomplete(spec.etag)
    resumed = part.is_file() and 0 < part.stat().st_size < spec.size
    if part.is_file() and part.stat().st_size >= spec.size:  # complete (or too long): keep it only if right
        size, sha256, sha1 = file_digests(part, git_sha1=spec.sha256 is None)
        if not _matches(spec, sha256, sha1, size):
            part.unlink()
    url = session.url(f"/{ref.repo_id}/resolve/{commit}/{quote(spec.path)}")
    last: Exception | None = None
    for _ in range(_RETRIES):
        try:
            size, sha256, sha1 = _download(session, url, part, spec, bar)
            break
        except HubConnectionError as err:  # a dropped connection: continue from what arrived
            last = err
    else:
        assert last is not None
        raise last
    on_disk = part.stat().st_size  # what is renamed is the file on disk, not the stream we hashed
    if not _matches(spec, sha256, sha1, size) or on_disk != spec.size:
        part.unlink()
        what, expected, actual = (
            ("sha256", spec.sha256, sha256) if spec.sha256 else ("git blob sha1", spec.git_sha1, sha1)
        )
        if on_disk != spec.size:
            what, expected, actual = "size on disk", str(spec.size), str(on_disk)
        raise IntegrityError(spec.path, what=what, expected=expected, actual=actual)
    try:
        os.replace(part, blob)
        stamp = Stamp.of(blob.stat())  # the bytes hashed as they were written
    except FileNotFoundError:  # another writer (one that ignores the lock) renamed it: fine if valid
        size, sha256, sha1, stamp = _hash_in_place(blob, spec)
        if not _matches(spec, sha256, sha1, size):
            raise
    return ("repaired" if repaired else "resumed" if resumed else "downloaded"), sha256, stamp


class _Hasher:
    """sha256 (and, for regular files, git blob SHA-1) of a file as its bytes arrive."""

    def __init__(self, spec: FileSpec) -> None:
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.sha1 = (
            hashlib.sha1(f"blob {spec.size}\0".encode(), usedforsecurity=False)
            if spec.sha256 is None
            else None
        )

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self.sha256.update(data)
        if self.sha1 is not None:
            self.sha1.update(data)

    def update_from(self, path: Path) -> None:
        with path.open("rb", buffering=0) as f:
            while chunk := f.read(4 << 20):
                self.update(chunk)

    def result(self) -> tuple[int, str, str]:
        return self.size, self.sha256.hexdigest(), "" if self.sha1 is None else self.sha1.hexdigest()


def _download(
    session: HubSession, url: str, part: Path, spec: FileSpec, bar: Progress
) -> tuple[int, str, str]:
    """Append the missing bytes of ``spec`` to ``part`` (Range when some are already there), hashing
    the whole file on the way; (size, sha256, git SHA-1 or "")."""
    hasher = _Hasher(spec)
    if part.is_file():
        hasher.update_from(part)  # what an earlier attempt left
    have = hasher.size
    if have >= spec.size:
        part.touch()  # an empty file needs no request
        bar.advance(have, done_file=True)
        return hasher.result()
    headers = {"range": f"bytes={have}-"} if have else {}
    bar.advance(have)
    with session.stream("GET", url, headers=headers) as response:
        if response.status_code == 206:
            m = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            if not m or int(m.group(1)) != have or int(m.group(3)) != spec.size:
                raise HubResponseError(f"{spec.path}: hub answered the wrong byte range", url=url)
            mode = "ab"
        elif response.status_code == 200:
            bar.advance(-have)
            hasher, have, mode = _Hasher(spec), 0, "wb"  # the hub ignored the range: start over
        else:
            raise HubResponseError(f"{spec.path}: unexpected HTTP {response.status_code}", url=url)
        with part.open(mode) as out:
            for chunk in session.iter_download(response, url):  # a dropped connection keeps what came
                have += len(chunk)
                if have > spec.size:
                    raise HubResponseError(f"{spec.path}: hub sent more than {spec.size} bytes", url=url)
                out.write(chunk)
                hasher.update(chunk)
                bar.advance(len(chunk))
    if have != spec.size:
        raise HubConnectionError(url, f"{spec.path}: connection ended after {have} of {spec.size} bytes")
    bar.advance(0, done_file=True)
    return hasher.result()
