"""Verified lineage on the hub: fingerprints of weight files on upload, and what they say about a
revision's declared and undeclared parents.

Steps: :meth:`LineageService.on_ingest` fingerprints a blob as it is stored (safetensors or torch zip,
recognised by content; the staged file's pages are still hot from the upload's own hashing and scan)
and indexes its tensor hashes; :meth:`LineageService.ensure` fingerprints, at commit time, weight files
whose blobs predate this feature. :meth:`LineageService.verify` merges the fingerprints of a revision's
weight files, compares them with each declared parent's ``main`` (a parent the caller cannot read is
reported exactly like a missing one) and looks for undeclared parents among repos that share tensors
(tensor index) or the architecture (``arch`` index) with it — only repos the caller may read, created
before this one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from cairn.errors import CairnError
from cairn.governance.fingerprint import (
    WEIGHT_SUFFIXES,
    Fingerprint,
    StreamingFingerprint,
    arch_key,
    compare,
    fingerprint_blob,
)
from cairn.meta import Database, files, now_us, refs, repos
from cairn.meta.lineage_tables import INDEXED_TENSOR_BYTES, blob_fingerprints, tensor_index
from cairn.registry.models import AddFile, FileEntry, Operation, Principal, Repo
from cairn.registry.repos import _repo
from cairn.store import BlobStore

if TYPE_CHECKING:
    from cairn.registry.service import Registry

__all__ = ["MAX_CANDIDATES", "LineageService", "StreamingFingerprint", "is_weight_file"]

MAX_CANDIDATES = 50
_MAX_LOOKUP_TENSORS = 2000


def _advisory(fn: Any, arg: Any) -> Fingerprint | None:
    """Run a fingerprinting step; lineage is advisory, so no failure of it may fail an upload (an
    unreadable weight file is the scanner's business, and shows as "not fingerprinted" here)."""
    try:
        result: Fingerprint | None = fn(arg)
    except Exception:  # see the docstring
        return None
    return result


def is_weight_file(path: str) -> bool:
    return path.lower().endswith(WEIGHT_SUFFIXES)


class LineageService:
    def __init__(self, db: Database, store: BlobStore, staging: Path) -> None:
        self.db = db
        self.store = store
        self.staging = staging

    # -- fingerprints on upload ------------------------------------------------------------------------
    def on_ingest(self, src: Path, sha256: str, streamed: Fingerprint | None = None) -> None:
        """Record the fingerprint of a verified staged upload: ``streamed`` when the upload computed it
        on the way in (safetensors), else from the file if it holds weights (by content); else nothing."""
        fp = streamed if streamed is not None else _advisory(fingerprint_blob, src)
        if fp is not None:
            self.save(sha256, fp)

    def save(self, sha256: str, fp: Fingerprint) -> None:
        """Store ``fp`` for blob ``sha256`` and index its tensors (idempotent: the first one wins)."""
        indexed = {t.sha256: t.nbytes for t in fp.tensors.values() if t.nbytes >= INDEXED_TENSOR_BYTES}
        with contextlib.suppress(DBIntegrityError), self.db.write() as conn:
            known = conn.execute(
                select(blob_fingerprints.c.sha256).where(blob_fingerprints.c.sha256 == sha256)
            ).first()
            if known is not None:
                return
            conn.execute(
                insert(blob_fingerprints).values(
                    sha256=sha256,
                    arch=arch_key(fp),
                    tensors=len(fp.tensors),
                    fingerprint=json.dumps(fp.to_dict()),
                    created_at=now_us(),
                )
            )
            if indexed:
                conn.execute(
                    insert(tensor_index),
                    [{"tensor_sha256": t, "blob_sha256": sha256, "nbytes": n} for t, n in indexed.items()],
                )

    def ensure(self, operations: Sequence[Operation]) -> None:
        """Fingerprint the weight files a commit adds whose blobs were stored without one."""
        added = {op.sha256 for op in operations if isinstance(op, AddFile) and is_weight_file(op.path)}
        if not added:
            return
        with self.db.read() as conn:
            have = set(
                conn.execute(
                    select(blob_fingerprints.c.sha256).where(blob_fingerprints.c.sha256.in_(sorted(added)))
                ).scalars()
            )
        for sha256 in sorted(added - have):
            if self.store.exists(sha256):
                fp = _advisory(self._fingerprint_stored, sha256)
                if fp is not None:
                    self.save(sha256, fp)

    def _fingerprint_stored(self, sha256: str) -> Fingerprint | None:
        local = self.store.local_path(sha256)
        if local is not None and local.exists():
            return fingerprint_blob(local)
        fd, name = tempfile.mkstemp(dir=self.staging, prefix="fingerprint-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.store.iter_range(sha256):
                    out.write(chunk)
            return fingerprint_blob(Path(name))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    # -- reading ---------------------------------------------------------------------------------------
    def _load(self, sha256s: Sequence[str]) -> dict[str, Fingerprint]:
        out: dict[str, Fingerprint] = {}
        unique = sorted(set(sha256s))
        with self.db.read() as conn:
            for i in range(0, len(unique), 500):
                rows = conn.execute(
                    select(blob_fingerprints.c.sha256, blob_fingerprints.c.fingerprint).where(
                        blob_fingerprints.c.sha256.in_(unique[i : i + 500])
                    )
                )
                for r in rows:
                    out[r.sha256] = Fingerprint.from_dict(json.loads(r.fingerprint))
        return out

    def tree_fingerprint(self, entries: Sequence[FileEntry]) -> tuple[Fingerprint | None, list[str]]:
        """(the merged fingerprint of the tree's weight files, weight files without a fingerprint).
        Safetensors files win over torch twins of the same weights, as for local directories."""
        weights = [e for e in entries if is_weight_file(e.path)]
        st = [e for e in weights if e.path.lower().endswith(".safetensors")]
        weights = st or weights
        if not weights:
            return None, []
        found = self._load([e.sha256 for e in weights])
        tensors: dict[str, Any] = {}
        for e in weights:
            fp = found.get(e.sha256)
            if fp is not None:
                for name, t in fp.tensors.items():
                    tensors.setdefault(name, t)
        missing = [e.path for e in weights if e.sha256 not in found]
        return (Fingerprint(tensors) if tensors else None), missing

    def _related_repos(self, weight_shas: list[str], fp: Fingerprint) -> list[Repo]:
        """Repos whose ``main`` holds a blob sharing a tensor with ``fp`` or the architecture of one of
        ``weight_shas`` (or of ``fp`` itself, for a model that is not on the hub)."""
        big = sorted(
            (t for t in fp.tensors.values() if t.nbytes >= INDEXED_TENSOR_BYTES),
            key=lambda t: -t.nbytes,
        )[:_MAX_LOOKUP_TENSORS]
        with self.db.read() as conn:
            archs = {arch_key(fp)} | set(
                conn.execute(
                    select(blob_fingerprints.c.arch).where(blob_fingerprints.c.sha256.in_(weight_shas))
                ).scalars()
            )
            blobs = set(
                conn.execute(
                    select(tensor_index.c.blob_sha256)
                    .where(tensor_index.c.tensor_sha256.in_([t.sha256 for t in big]))
                    .group_by(tensor_index.c.blob_sha256)
                    .order_by(func.sum(tensor_index.c.nbytes).desc())
                    .limit(MAX_CANDIDATES * 4)
                ).scalars()
            )
            if archs:
                blobs |= set(
                    conn.execute(
                        select(blob_fingerprints.c.sha256)
                        .where(blob_fingerprints.c.arch.in_(sorted(archs)))
                        .limit(MAX_CANDIDATES * 4)
                    ).scalars()
                )
            blobs -= set(weight_shas)
            if not blobs:
                return []
            ids = (
                select(refs.c.repo_id)
                .join(files, files.c.commit_id == refs.c.commit_id)
                .where(refs.c.kind == "branch", refs.c.name == "main", files.c.sha256.in_(sorted(blobs)))
            )
            rows = conn.execute(
                select(repos)
                .where(repos.c.id.in_(ids), repos.c.type == "model")
                .order_by(repos.c.id)
                .limit(MAX_CANDIDATES * 4)
            ).all()
        return [_repo(r) for r in rows]

    # -- the verification ------------------------------------------------------------------------------
    def verify(self, reg: Registry, repo: Repo, commit_id: str, who: Principal | None) -> dict[str, Any]:
        """Declared parents with what the weights say, and undeclared likely parents the caller may read."""
        from cairn.governance.lineage import read_node
        from cairn.registry.licensing import HubSource

        entries = reg.commits.files(commit_id)
        mine, missing = self.tree_fingerprint(entries)
        node = read_node(HubSource(repo.repo_id, {e.path: e for e in entries}, self.store))
        out: dict[str, Any] = {
            "repo": repo.repo_id,
            "sha": commit_id,
            "fingerprinted": mine is not None,
            "notFingerprinted": missing,
            "tensors": 0 if mine is None else len(mine.tensors),
            "declared": [],
            "undeclared": [],
        }
        declared_ids: set[int] = {repo.id}
        for edge in node.parents:
            row: dict[str, Any] = {"ref": edge.ref, "relation": edge.relation}
            parent = self._readable(reg, edge.ref, who)
            if parent is None:
                row.update(supported=None, error=f"{edge.ref} is not a model on this hub that you can read")
            else:
                declared_ids.add(parent.id)
                row.update(self._compare(reg, mine, parent))
            out["declared"].append(row)
        if mine is None:
            return out
        weight_shas = [e.sha256 for e in entries if is_weight_file(e.path)]
        for cand in self._related_repos(weight_shas, mine):
            if cand.id in declared_ids or cand.created_at >= repo.created_at:
                continue
            if not self._may_read(reg, cand, who):  # private or gated for this caller: never revealed
                continue
            cmp = self._compare(reg, mine, cand)
            if cmp.get("supported"):
                out["undeclared"].append({"repo": cand.repo_id, **cmp})
        out["undeclared"].sort(key=lambda r: (-r["identical"], -r["similarity"], r["repo"]))
        return out

    def search(
        self, reg: Registry, fp: Fingerprint, who: Principal | None, *, exclude: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Models on this hub, readable by ``who``, whose weights support a relation with ``fp`` (a model
        that is not on the hub, such as a local directory), strongest first; ``exclude``: repo ids."""
        found = []
        for cand in self._related_repos([], fp):
            if cand.repo_id in exclude or not self._may_read(reg, cand, who):
                continue
            cmp = self._compare(reg, fp, cand)
            if cmp.get("supported"):
                found.append({"repo": cand.repo_id, **cmp})
        found.sort(key=lambda r: (-r["identical"], -r["similarity"], r["repo"]))
        return found

    @staticmethod
    def _may_read(reg: Registry, repo: Repo, who: Principal | None) -> bool:
        from cairn.registry.repos import can_see

        if not can_see(repo, who):
            return False
        try:
            reg.repos.check_content_access(repo, who)
        except CairnError:
            return False
        return True

    def _readable(self, reg: Registry, ref: str, who: Principal | None) -> Repo | None:
        namespace, slash, name = ref.strip().partition("/")
        if not slash or "/" in name or not namespace or not name:
            return None
        try:
            repo = reg.repos.get("model", namespace, name, who)
        except CairnError:
            return None
        return repo if self._may_read(reg, repo, who) else None

    def _compare(self, reg: Registry, mine: Fingerprint | None, other: Repo) -> dict[str, Any]:
        try:
            head, _ = reg.commits.resolve(other, "main")
        except CairnError:
            return {"supported": None, "error": f"{other.repo_id} has no main branch"}
        theirs, _ = self.tree_fingerprint(reg.commits.files(head))
        if mine is None or theirs is None:
            which = "this revision" if mine is None else other.repo_id
            return {"supported": None, "error": f"{which} has no fingerprinted weights"}
        cmp = compare(mine, theirs)
        return {
            "verdict": cmp.verdict,
            "shared": cmp.shared,
            "identical": cmp.identical,
            "similarity": cmp.similarity,
            "dtypeChanged": cmp.dtype_changed,
            "supported": cmp.supports_lineage,
        }
