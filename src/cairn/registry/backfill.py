"""Lineage fingerprints for blobs stored before the hub computed them (``cairn admin fingerprints``).

Fingerprints (migration ``0008_fingerprints``) are computed when a blob is uploaded, and at commit time
for a weight file whose blob has none. Blobs committed before that have none, so lineage verification
and search miss them. The backfill gives them one, computed exactly as for an upload that was not
streamed (:meth:`~cairn.registry.lineage.LineageService.fingerprint_stored`: by content, safetensors
or a torch zip checkpoint).

Which blobs: those without a ``blob_fingerprints`` row that some commit names with a weight-file suffix
(``.safetensors``, ``.bin``, ``.pt``, ``.pth``, ``.ckpt``), the only files a revision's fingerprint is
made of. They are read in pages ordered by sha256 (:data:`PAGE` rows at a time, one blob at a time), so
memory stays bounded however many blobs the hub holds.

A dry run (the default) reads only the first bytes of each candidate, to say which look like weights
and which cannot be read; ``apply=True`` fingerprints them. Running it again is harmless: blobs that
have a fingerprint (from the backfill, an upload or a commit meanwhile) are not candidates, a
fingerprint is written only once (the first one wins), and one is written only while the blob's row
exists, held against the garbage collector. A blob missing from the store, or one that cannot be read,
is counted and listed, never fatal. Safe while the hub serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import exists, func, or_, select

from cairn.errors import CairnError
from cairn.governance.fingerprint import WEIGHT_SUFFIXES
from cairn.meta import blobs, files
from cairn.meta.lineage_tables import blob_fingerprints
from cairn.registry.lineage import LineageService

__all__ = ["PAGE", "BackfillReport", "backfill_fingerprints"]

#: candidate blobs read from the database at a time
PAGE = 200
_MAX_LISTED = 100


@dataclass
class BackfillReport:
    """What a backfill found and (unless ``dry_run``) stored."""

    dry_run: bool
    candidates: int = 0  # weight files' blobs without a fingerprint
    fingerprinted: int = 0  # stored now (dry run: candidates whose first bytes look like weights)
    bytes: int = 0  # the size of those
    not_fingerprintable: int = 0  # no weights cairn fingerprints (other content, malformed, too many tensors)
    unreadable: int = 0  # missing from the store, or reading it failed
    errors: list[dict[str, str]] = field(default_factory=list)  # the first 100 unreadable blobs

    def to_dict(self) -> dict[str, object]:
        return {
            "dryRun": self.dry_run,
            "candidates": self.candidates,
            "fingerprinted": self.fingerprinted,
            "bytes": self.bytes,
            "notFingerprintable": self.not_fingerprintable,
            "unreadable": self.unreadable,
            "errors": self.errors,
        }


def backfill_fingerprints(lineage: LineageService, *, apply: bool = False) -> BackfillReport:
    """Fingerprint (with ``apply=True``; else only count) the blobs of committed weight files that have
    no fingerprint. See the module docstring."""
    report = BackfillReport(dry_run=not apply)
    for sha256, size in _candidates(lineage):
        report.candidates += 1
        try:
            looks = _looks_like_weights(lineage, sha256)
            if looks and apply:
                fp = lineage.fingerprint_stored(sha256)
                looks = fp is not None and lineage.save(sha256, fp, only_if_stored=True)
        except Exception as exc:  # a store that fails for one blob must not stop the others
            report.unreadable += 1
            if len(report.errors) < _MAX_LISTED:
                report.errors.append({"sha256": sha256, "error": _describe(exc)})
            continue
        if looks:
            report.fingerprinted += 1
            report.bytes += size
        else:
            report.not_fingerprintable += 1
    return report


def _candidates(lineage: LineageService) -> Iterator[tuple[str, int]]:
    """(sha256, size) of every blob a commit names as a weight file that has no fingerprint, in pages
    by sha256 (a blob fingerprinted meanwhile simply drops out of later pages)."""
    named_as_weights = exists().where(
        files.c.sha256 == blobs.c.sha256,
        or_(*(func.lower(files.c.path).like(f"%{suffix}") for suffix in WEIGHT_SUFFIXES)),
    )
    fingerprinted = exists().where(blob_fingerprints.c.sha256 == blobs.c.sha256)
    after = ""
    while True:
        with lineage.db.read() as conn:
            page = conn.execute(
                select(blobs.c.sha256, blobs.c.size)
                .where(blobs.c.sha256 > after, named_as_weights, ~fingerprinted)
                .order_by(blobs.c.sha256)
                .limit(PAGE)
            ).all()
        for sha256, size in page:
            yield sha256, int(size)
        if len(page) < PAGE:
            return
        after = page[-1][0]


def _looks_like_weights(lineage: LineageService, sha256: str) -> bool:
    """Whether the blob starts like a safetensors file or a zip (a torch checkpoint); raises when the
    blob is missing or cannot be read."""
    head = b"".join(lineage.store.iter_range(sha256, 0, 9))
    safetensors = len(head) == 9 and head[8:9] == b"{"
    return safetensors or head[:4] == b"PK\x03\x04"


def _describe(exc: Exception) -> str:
    if isinstance(exc, CairnError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"[:300]
