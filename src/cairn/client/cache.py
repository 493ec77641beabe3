"""The local cache, laid out as huggingface_hub lays out its own so that each finds the other's files::

    <cache>/models--org--name/
        blobs/<etag>                 content: etag = sha256 (LFS files) or git blob SHA-1 (regular files)
        blobs/<etag>.incomplete      a download in progress; resumed with an HTTP Range request
        snapshots/<commit>/<path>    one entry per file of a commit (a hard link to its blob, or a copy)
        refs/<revision>              the commit id a branch or tag pointed to when last pulled
    <cache>/.locks/models--org--name/<etag>.lock
                                 held (``flock``, as huggingface_hub's ``filelock`` does) while a
                                 process writes ``blobs/<etag>.incomplete``

Snapshot entries are hard links rather than huggingface_hub's symlinks, so that tools which refuse
symlinks (cairn's checkpoint reader, signature verification) read them as plain files; huggingface_hub
only checks that the snapshot path exists, so offline ``hf_hub_download`` finds them either way.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cairn.client.refs import RepoRef, is_commit_id, safe_join
from cairn.errors import CairnError, UsageError

__all__ = ["CacheError", "FileSpec", "RepoCache", "file_digests", "place"]

_CHUNK = 4 << 20


@dataclass(frozen=True)
class FileSpec:
    """One file of a commit as the hub lists it: path, size, git blob SHA-1 and (LFS files) sha256."""

    path: str
    size: int
    git_sha1: str
    sha256: str | None = None

    @property
    def etag(self) -> str:
        return self.sha256 or self.git_sha1


def file_digests(path: Path, *, git_sha1: bool = True) -> tuple[int, str, str]:
    """(size, sha256 hex, git blob SHA-1 hex) of a file, hashed in one pass; with ``git_sha1=False``
    the SHA-1 is skipped (LFS files are identified by sha256 alone) and returned as ``""``."""
    size = path.stat().st_size
    h256 = hashlib.sha256()
    h1 = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False) if git_sha1 else None
    with path.open("rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            h256.update(chunk)
            if h1 is not None:
                h1.update(chunk)
    return size, h256.hexdigest(), "" if h1 is None else h1.hexdigest()


class CacheError(CairnError):
    code = "cache"


class RepoCache:
    """One repository's folder in the cache."""

    def __init__(self, cache_dir: Path, ref: RepoRef) -> None:
        self.root = cache_dir / ref.cache_folder
        self.locks = cache_dir / ".locks" / ref.cache_folder
        self.blobs = self.root / "blobs"
        self.snapshots = self.root / "snapshots"
        self.refs = self.root / "refs"

    def blob(self, etag: str) -> Path:
        return self.blobs / etag

    def incomplete(self, etag: str) -> Path:
        return self.blobs / f"{etag}.incomplete"

    @contextmanager
    def lock(self, etag: str) -> Iterator[None]:
        """Hold the exclusive per-blob lock (``.locks/<repo folder>/<etag>.lock``, huggingface_hub's
        layout) so that no two processes write the same ``.incomplete`` file."""
        import fcntl

        try:
            self.locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.locks / f"{etag}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise CacheError(f"cannot create the lock for {etag} in {self.locks}: {err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def snapshot(self, commit: str) -> Path:
        if not is_commit_id(commit):
            raise UsageError(f"not a commit id: {commit!r}")
        return self.snapshots / commit

    def prepare(self) -> None:
        try:
            self.blobs.mkdir(parents=True, exist_ok=True)
            self.snapshots.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CacheError(f"cannot create the cache folder {self.root}: {err}") from None

    def write_ref(self, revision: str, commit: str) -> None:
        """Record that ``revision`` (a branch or tag) pointed at ``commit`` (written atomically)."""
        if is_commit_id(revision):
            return
        target = safe_join(self.refs, revision)
        tmp = _temp_name(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("x", encoding="ascii") as f:
                f.write(commit)
            os.replace(tmp, target)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise CacheError(f"cannot record {revision!r} in {self.refs}: {err}") from None

    def read_ref(self, revision: str) -> str | None:
        try:
            path = safe_join(self.refs, revision)
            text = path.read_text(encoding="ascii", errors="replace").strip()
        except (OSError, CairnError):
            return None
        return text if is_commit_id(text) else None

    def link(self, commit: str, spec: FileSpec) -> Path:
        """Put the blob of ``spec`` at its path in the commit's snapshot (replacing a stale entry)."""
        snap = self.snapshot(commit)
        snap.mkdir(parents=True, exist_ok=True)
        target = safe_join(snap, spec.path)
        place(self.blob(spec.etag), target)
        return target


def _temp_name(target: Path) -> Path:
    """A fresh temp name next to ``target``: pid + random, and a ``\\`` that :func:`check_repo_path`
    refuses, so no hub listing can name it (and it is created exclusively, never unlinked blindly)."""
    return target.with_name(f".{target.name[:120]}\\{os.getpid()}-{secrets.token_hex(6)}.cairn-tmp")


def place(source: Path, target: Path, *, copy: bool = False) -> None:
    """Make ``target`` a hard link to ``source`` (a copy with ``copy=True`` or where links are
    impossible), atomically: a reader sees the old entry or the new one. Any failure of the file
    system is a :class:`CacheError`."""
    try:
        _place(source, target, copy=copy)
    except OSError as err:
        raise CacheError(f"cannot place {target}: {err}") from None


def _place(source: Path, target: Path, *, copy: bool) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CacheError(f"{target.parent} exists and is not a directory") from None
    except OSError as err:
        raise CacheError(f"cannot create {target.parent}: {err}") from None
    if target.is_dir() and not target.is_symlink():
        raise CacheError(f"{target} is a directory; cannot put a file there")
    if not copy and target.is_file() and not target.is_symlink() and os.path.samefile(source, target):
        return  # already this blob (renaming a link onto its twin would be a no-op that leaves tmp)
    tmp = _temp_name(target)
    try:
        try:
            if copy:
                raise OSError("copy requested")
            os.link(source, tmp)
        except FileExistsError:
            raise
        except OSError:
            import shutil

            with source.open("rb") as src, tmp.open("xb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        os.replace(tmp, target)
        tmp.unlink(missing_ok=True)  # a rename onto a hard link of the same blob is a no-op: tmp stays
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if target.is_dir() and not target.is_symlink():
            raise CacheError(f"{target} is a directory; cannot put a file there") from None
        raise CacheError(f"cannot place {target}: {err}") from None
