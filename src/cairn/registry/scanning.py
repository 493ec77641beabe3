"""Inspecting blobs on upload: scan with :func:`cairn.security.scan` and read safetensors headers, once
per sha256, and remember the result in ``blob_inspections``.

Steps: :func:`inspect_file` (a local file: the staged upload, or the blob store's own file) → an
:class:`Inspection` → :func:`save_inspection`. A safetensors header is parsed once per upload: the
scan, the parameter counts and the lineage fingerprint share a
:class:`~cairn.format.safetensors.HeaderMemo`. The scanner works on a path and memory-maps it, so a huge
upload is never read into memory; remote stores are first copied to a staging file. What an inspection
*means* under the server's policy is decided by :meth:`cairn.registry.trust.TrustPolicy.verdict`, at read
time, so changing the policy needs no re-scan.

Facts stored (``status``): ``clean`` (scanned, nothing found), ``findings``, ``error`` (could not be
scanned: never treated as clean) and ``skipped`` (not a model format: nothing in it can run).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from cairn import __version__
from cairn.errors import CairnError
from cairn.format.safetensors import HeaderMemo
from cairn.meta import Database, now_us
from cairn.meta.trust_tables import blob_inspections
from cairn.store import BlobStore

__all__ = [
    "SCANNER",
    "Inspection",
    "inspect_file",
    "inspect_stored",
    "load_inspections",
    "safetensors_parameters",
    "save_inspection",
]

SCANNER = f"cairn-{__version__}"
_MAX_FINDINGS = 100


@dataclass(frozen=True)
class Inspection:
    """What is known about one blob: scan facts, and parameter counts by dtype for safetensors."""

    sha256: str
    status: str  # clean | findings | error | skipped
    severity: str | None  # worst finding's severity, lower-case ("critical"), or None
    report: dict[str, Any] = field(hash=False, compare=False)
    parameters: dict[str, int] | None = field(default=None, hash=False, compare=False)

    @property
    def findings(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.report.get("findings", [])
        return found


def safetensors_parameters(
    read: Callable[[int, int], bytes], size: int, headers: HeaderMemo | None = None
) -> dict[str, int] | None:
    """Parameter counts by dtype from a safetensors header (two range reads), or ``None`` if the bytes
    are not a valid safetensors file. ``headers``: parse through this memo (see :func:`inspect_file`)."""
    from cairn.format.safetensors_index import read_header_ranges

    try:
        header = read_header_ranges(read, file_size=size, memo=headers)
    except CairnError:
        return None
    counts: dict[str, int] = {}
    for t in header.tensors.values():
        counts[t.dtype] = counts.get(t.dtype, 0) + t.numel
    return counts


def _relabel(report: dict[str, Any], label: str) -> dict[str, Any]:
    """Scanner output names the staging file; store it under the blob's sha256 instead."""
    for key in ("findings", "errors", "skipped"):
        items = report.get(key, [])
        for item in items:
            item["path"] = label
        report[key] = items[:_MAX_FINDINGS]
    report.pop("scanned", None)
    return report


def inspect_file(path: Path, sha256: str, headers: HeaderMemo | None = None) -> Inspection:
    """Scan the file at ``path`` (whose content has digest ``sha256``) and read its safetensors header.

    The scan and the parameter counts parse the header through one memo (``headers``, or a new one), so
    a large header is parsed once; a caller that passes its own memo (the upload, which parsed the
    header for its lineage fingerprint already) makes that one parse serve all three."""
    from cairn.security import scan

    headers = HeaderMemo() if headers is None else headers
    try:
        result = scan([path], headers=headers)
    except Exception as exc:  # a scanner crash is "could not scan", never "clean"
        report: dict[str, Any] = {
            "findings": [],
            "errors": [{"path": sha256, "member": "", "message": f"scanner failed: {exc!r:.300}"}],
            "skipped": [],
        }
        return Inspection(sha256, "error", None, report)
    report = _relabel(result.to_dict(), sha256)
    severity = None if result.max_severity is None else str(result.max_severity)
    if result.errors:
        status = "error"
    elif result.findings:
        status = "findings"
    elif result.skipped and not result.scanned:
        status = "skipped"
    else:
        status = "clean"
    size = path.stat().st_size

    def read(start: int, end: int) -> bytes:
        with path.open("rb") as fh:
            fh.seek(start)
            return fh.read(max(0, min(end, size) - start))

    params = safetensors_parameters(read, size, headers) if size >= 8 else None
    return Inspection(sha256, status, severity, report, params)


def inspect_stored(store: BlobStore, sha256: str, staging: Path) -> Inspection:
    """Inspect a blob already in ``store``: in place when the store is local, else through a staging copy."""
    local = store.local_path(sha256)
    if local is not None and local.exists():
        return inspect_file(local, sha256)
    fd, name = tempfile.mkstemp(dir=staging, prefix="inspect-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in store.iter_range(sha256):
                out.write(chunk)
        return inspect_file(Path(name), sha256)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def save_inspection(db: Database, found: Inspection) -> None:
    """Record ``found`` (idempotent: the first inspection of a sha256 wins)."""
    with contextlib.suppress(DBIntegrityError), db.write() as conn:
        known = conn.execute(
            select(blob_inspections.c.sha256).where(blob_inspections.c.sha256 == found.sha256)
        ).first()
        if known is None:
            conn.execute(
                insert(blob_inspections).values(
                    sha256=found.sha256,
                    status=found.status,
                    severity=found.severity,
                    report=json.dumps(found.report, default=str),
                    parameters=None if found.parameters is None else json.dumps(found.parameters),
                    scanner=SCANNER,
                    created_at=now_us(),
                )
            )


def load_inspections(conn: Connection, sha256s: list[str]) -> dict[str, Inspection]:
    """The stored inspections of ``sha256s`` (missing ones are absent from the result)."""
    out: dict[str, Inspection] = {}
    unique = sorted(set(sha256s))
    for i in range(0, len(unique), 500):
        rows = conn.execute(
            select(blob_inspections).where(blob_inspections.c.sha256.in_(unique[i : i + 500]))
        )
        for r in rows:
            params = None if r.parameters is None else json.loads(r.parameters)
            out[r.sha256] = Inspection(r.sha256, r.status, r.severity, json.loads(r.report), params)
    return out
