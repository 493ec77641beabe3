"""Garbage collection of blobs no commit references, safe to run while the hub serves.

Blobs become unreferenced when a repo is deleted (its commits and files go with it), when an upload is
never committed (a client that crashed between the LFS upload and the commit), when a squash or a history
rewrite deletes the commits that named them (:mod:`cairn.registry.storage` deletes commits no ref reaches,
in the transaction that moves the refs), or when a repo gives an object up
(``permanently_delete_lfs_files``, which removes its ``repo_objects`` row). History keeps everything else
alive: a file removed from a branch is still named by the older commits that had it.

A reference counts only while the repo of the commit still holds the object (a ``repo_objects`` row): a
commit whose file was permanently deleted without rewriting history keeps naming it, but no longer keeps
it alive. The same bytes in another repo are that repo's own reference, and keep the blob.

A blob is collected when, inside one write transaction that holds its row lock, (1) its row is older than
the grace period and (2) no ``files`` row of a repo holding it names it. The store object is deleted
inside that transaction, before the rows, so the possible outcomes of a concurrent commit are:

- the commit locked the blob row first (``FOR SHARE`` in :meth:`CommitService._apply`): the collector
  waits, then sees the new ``files`` row and keeps the blob;
- the collector locked it first: the commit waits, finds the row gone and fails with
  :class:`MissingBlobError` (the client uploads again), never a commit naming missing bytes.

A concurrent upload of the same content grants the repo the object under the blob's row lock too
(``FOR SHARE`` in :meth:`Registry.grant_object`): either the grant comes first and the collector sees it
(the old commits that name the object count again), or the collector comes first and the upload finds the
row gone and stores the object again. Such an upload (and an LFS batch or verify that finds the bytes)
also sets the row's ``created_at`` to now (:meth:`Registry.claim_blobs`), which restarts the grace
period: bytes orphaned long ago and uploaded again are not collected before the commit that follows.
The grace period (default 24 h) keeps uploads waiting for their commit out of reach.

Store objects with no row at all ("strays": a crash between writing the object and recording it) are
only counted, from the store's own listing: an upload writes the object before its row, so an old stray
can become a live blob at any instant and nothing in the database can lock it. ``strays=True`` deletes
them too, and is only safe while no hub process serves the same data.

The local store's staging folder collects leftovers too: part folders of multipart uploads a client
abandoned (``mp-<oid>/``, possibly gigabytes) and temporary files of uploads, scans and fingerprints a
crash interrupted. Every live one is written to continuously, and a multipart upload's parts are only
accepted while its signed URL is valid (``upload_url_ttl_s``, 1 h by default, below the smallest grace
period), so an entry whose newest modification is older than the grace period belongs to nobody: it is
counted, and removed with ``apply``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Select, Table, and_, delete, select

from cairn.errors import UsageError
from cairn.meta import Database, blobs, commits, files, now_us, repo_objects
from cairn.meta.lineage_tables import blob_fingerprints, tensor_index
from cairn.meta.trust_tables import blob_inspections, quarantine_overrides
from cairn.store import BlobStore

__all__ = ["DEFAULT_GRACE_S", "GcReport", "collect_garbage"]

DEFAULT_GRACE_S = 24 * 3600
MIN_GRACE_S = 3600
_MAX_LISTED = 1000

#: rows that describe a blob's content and mean nothing once it is gone
_PER_BLOB: tuple[tuple[Table, str], ...] = (
    (blob_inspections, "sha256"),
    (quarantine_overrides, "sha256"),
    (blob_fingerprints, "sha256"),
    (tensor_index, "blob_sha256"),
    (repo_objects, "sha256"),
)


@dataclass
class GcReport:
    """What a collection found and (unless ``dry_run``) removed."""

    dry_run: bool
    grace_s: int
    blobs: int = 0  # unreferenced blob rows old enough to go
    bytes: int = 0
    stray_objects: int = 0  # store objects without a row, old enough to go
    stray_bytes: int = 0
    kept_racing: int = 0  # candidates a commit referenced while the collector ran
    staging_entries: int = 0  # abandoned temporary files and multipart part folders
    staging_bytes: int = 0
    oids: list[str] = field(default_factory=list)  # the first 1000 collected (or to collect)

    def to_dict(self) -> dict[str, object]:
        return {
            "dryRun": self.dry_run,
            "graceSeconds": self.grace_s,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "strayObjects": self.stray_objects,
            "strayBytes": self.stray_bytes,
            "keptRacing": self.kept_racing,
            "stagingEntries": self.staging_entries,
            "stagingBytes": self.staging_bytes,
            "oids": self.oids,
        }


def collect_garbage(
    db: Database,
    store: BlobStore,
    *,
    grace_s: int = DEFAULT_GRACE_S,
    apply: bool = False,
    strays: bool = False,
    staging: Path | None = None,
) -> GcReport:
    """Find (and with ``apply=True`` delete) blobs older than ``grace_s`` that no commit references, and
    leftovers older than that in the ``staging`` folder; ``strays=True`` also deletes store objects that
    have no row (only with the hub stopped)."""
    if grace_s < MIN_GRACE_S:
        raise UsageError(
            f"the grace period must be at least {MIN_GRACE_S} s, so that uploads waiting for their commit are safe"
        )
    report = GcReport(dry_run=not apply, grace_s=grace_s)
    cutoff_us = now_us() - grace_s * 1_000_000
    known: set[str] = set()
    for sha, size in _candidates(db, cutoff_us, known):
        if apply and not _collect_one(db, store, sha, cutoff_us):
            report.kept_racing += 1
            continue
        report.blobs += 1
        report.bytes += size
        if len(report.oids) < _MAX_LISTED:
            report.oids.append(sha)
    _strays(db, store, report, known, time.time() - grace_s, apply and strays)
    if staging is not None:
        _staging(staging, report, time.time() - grace_s, apply)
    return report


def _staging(folder: Path, report: GcReport, cutoff_s: float, apply: bool) -> None:
    """Count (and with ``apply`` remove) entries of the staging folder untouched since ``cutoff_s``."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            newest, size = _newest(entry)
        except OSError:  # gone meanwhile: someone finished with it
            continue
        if newest >= cutoff_s:
            continue
        report.staging_entries += 1
        report.staging_bytes += size
        if apply:
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)


def _newest(entry: os.DirEntry[str]) -> tuple[float, int]:
    """(the newest modification time, total bytes) of a file, or of a folder and the files in it."""
    st = entry.stat(follow_symlinks=False)
    if not entry.is_dir(follow_symlinks=False):
        return st.st_mtime, st.st_size
    newest, size = st.st_mtime, 0
    with os.scandir(entry.path) as inner:
        for child in inner:
            cst = child.stat(follow_symlinks=False)
            newest, size = max(newest, cst.st_mtime), size + cst.st_size
    return newest, size


def _candidates(db: Database, cutoff_us: int, known: set[str]) -> Iterator[tuple[str, int]]:
    """Unreferenced blob rows older than the cutoff (``known`` collects every row's oid on the way)."""
    with db.read() as conn:
        referenced = set(conn.execute(_held_references().distinct()).scalars())
        rows = conn.execute(select(blobs.c.sha256, blobs.c.size, blobs.c.created_at)).all()
    for sha, size, created in rows:
        known.add(sha)
        if sha not in referenced and created < cutoff_us:
            yield sha, int(size)


def _held_references() -> Select[tuple[str]]:
    """The sha256 of every ``files`` row whose repo still holds the object (see the module docstring)."""
    return select(files.c.sha256).select_from(
        files.join(commits, commits.c.id == files.c.commit_id).join(
            repo_objects,
            and_(repo_objects.c.repo_id == commits.c.repo_id, repo_objects.c.sha256 == files.c.sha256),
        )
    )


def _collect_one(db: Database, store: BlobStore, sha: str, cutoff_us: int) -> bool:
    """Re-check and delete one blob under its row lock; False if it became referenced or was refreshed."""
    with db.write() as conn:
        row = conn.execute(select(blobs.c.created_at).where(blobs.c.sha256 == sha).with_for_update()).first()
        if row is None:
            return True  # another collector got it
        if row.created_at >= cutoff_us:
            return False
        if conn.execute(_held_references().where(files.c.sha256 == sha).limit(1)).first() is not None:
            return False
        for table, column in _PER_BLOB:
            conn.execute(delete(table).where(table.c[column] == sha))
        conn.execute(delete(blobs).where(blobs.c.sha256 == sha))
        store.delete(sha)  # last: a failure rolls the rows back and leaves everything as it was
    return True


def _strays(
    db: Database, store: BlobStore, report: GcReport, known: set[str], cutoff_s: float, apply: bool
) -> None:
    for oid, size, mtime in store.iter_objects():
        if oid in known or mtime >= cutoff_s:
            continue
        with db.read() as conn:  # recorded since the listing began: an ingest finished meanwhile
            if conn.execute(select(blobs.c.sha256).where(blobs.c.sha256 == oid)).first() is not None:
                continue
        if apply:
            store.delete(oid)
        report.stray_objects += 1
        report.stray_bytes += size
        if len(report.oids) < _MAX_LISTED:
            report.oids.append(oid)
