"""Verified lineage on the hub: fingerprints of weight files on upload, and what they say about a
revision's declared and undeclared parents.

Steps: :meth:`LineageService.on_ingest` fingerprints a blob as it is stored (safetensors or torch zip,
recognised by content; the staged file's pages are still hot from the upload's own hashing and scan)
and indexes its tensor hashes; :meth:`LineageService.ensure` fingerprints, at commit time, weight files
whose blobs predate this feature, and ``cairn admin fingerprints`` (:mod:`cairn.registry.backfill`) the
weight files committed before it. :meth:`LineageService.verify` merges the fingerprints of a revision's
weight files, compares them with each declared parent's ``main`` (a parent the caller cannot read is
reported exactly like a missing one) and looks for undeclared parents among repos that share tensors
(tensor index) or the architecture (``arch`` index) with it — only repos the caller may read, created
before this one.

Bounds, since any user may upload and any caller may ask: the candidates are chosen in SQL among the
repos the caller may read (so repos the caller cannot read neither take a place nor change an answer),
at most ``MAX_CANDIDATES * 4`` of them, ranked by the bytes they share and then by age; a fingerprint
holds at most :data:`~cairn.governance.fingerprint.MAX_TENSORS` tensors (bigger files are stored but
not fingerprinted); parsed fingerprints are cached (blobs never change); and one request parses at most
``_CANDIDATE_TENSOR_BUDGET`` candidate tensors.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.sql.elements import ColumnElement

from cairn.errors import CairnError
from cairn.format.safetensors import HeaderMemo
from cairn.governance.fingerprint import (
    MAX_TENSORS,
    WEIGHT_SUFFIXES,
    Fingerprint,
    StreamingFingerprint,
    arch_key,
    check_names,
    compare,
    fingerprint_blob,
    model_weight_files,
)
from cairn.meta import Database, blobs, files, now_us, refs, repo_access, repos
from cairn.meta.lineage_tables import INDEXED_TENSOR_BYTES, blob_fingerprints, tensor_index
from cairn.registry.models import AddFile, FileEntry, Operation, Principal, Repo
from cairn.registry.repos import _readable, _repo
from cairn.store import BlobStore

if TYPE_CHECKING:
    from cairn.registry.service import Registry

__all__ = ["MAX_CANDIDATES", "LineageService", "StreamingFingerprint", "is_weight_file"]

MAX_CANDIDATES = 50
_MAX_LOOKUP_TENSORS = 2000
_CACHE_TENSORS = 50_000  # parsed fingerprints kept in memory, counted in tensors (~2 kB each)
_CANDIDATE_TENSOR_BUDGET = 500_000  # candidate tensors one verify/search may parse


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
        self._cache: OrderedDict[str, Fingerprint] = OrderedDict()
        self._cached_tensors = 0
        self._lock = threading.Lock()

    # -- fingerprints on upload ------------------------------------------------------------------------
    def on_ingest(
        self,
        src: Path,
        sha256: str,
        streamed: Fingerprint | None = None,
        headers: HeaderMemo | None = None,
    ) -> None:
        """Record the fingerprint of a verified staged upload: ``streamed`` when the upload computed it
        on the way in (safetensors), else from the file if it holds weights (by content, parsing a
        safetensors header through ``headers``, which the scan used already); else nothing.
        Advisory: no failure here fails the upload (the blob is then shown as not fingerprinted)."""
        fp = streamed
        if fp is None:
            fp = _advisory(lambda path: fingerprint_blob(path, headers=headers), src)
        if fp is not None:
            self._save_advisory(sha256, fp)

    def _save_advisory(self, sha256: str, fp: Fingerprint) -> None:
        try:
            self.save(sha256, fp)
        except CairnError:  # a fingerprint that cannot be stored (see save): not fingerprinted
            return

    def save(self, sha256: str, fp: Fingerprint, *, only_if_stored: bool = False) -> bool:
        """Store ``fp`` for blob ``sha256`` and index its tensors (idempotent: the first one wins); returns
        whether the blob has a fingerprint now. A fingerprint of more than :data:`MAX_TENSORS` tensors
        is not stored; one whose names are not Unicode text raises :class:`~cairn.errors.FormatError`.
        ``only_if_stored``: only while the blob's row exists, which is held (``FOR SHARE``) so that the
        garbage collector cannot delete the blob meanwhile and leave its fingerprint behind."""
        if len(fp.tensors) > MAX_TENSORS:
            return False
        check_names(fp.tensors)
        indexed = {t.sha256: t.nbytes for t in fp.tensors.values() if t.nbytes >= INDEXED_TENSOR_BYTES}
        with contextlib.suppress(DBIntegrityError), self.db.write() as conn:
            if only_if_stored:
                held = conn.execute(
                    select(blobs.c.sha256).where(blobs.c.sha256 == sha256).with_for_update(read=True)
                ).first()
                if held is None:
                    return False
            known = conn.execute(
                select(blob_fingerprints.c.sha256).where(blob_fingerprints.c.sha256 == sha256)
            ).first()
            if known is not None:
                return True
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
            return True
        return True  # another writer stored it first (the unique key refused this one)

    def ensure(self, operations: Sequence[Operation]) -> None:
        """Fingerprint the model weight files (:func:`model_weight_files`) that a commit added whose blobs
        were stored without a fingerprint. Call it after the commit succeeded: only then is the repo
        known to be allowed to reference those blobs."""
        adds = {op.path: op.sha256 for op in operations if isinstance(op, AddFile)}
        added = {adds[path] for path in model_weight_files(adds)}
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
                fp = _advisory(self.fingerprint_stored, sha256)
                if fp is not None:
                    self._save_advisory(sha256, fp)

    def fingerprint_stored(self, sha256: str) -> Fingerprint | None:
        """The fingerprint of a stored blob, by content (``None``: it holds no weights cairn
        fingerprints); read in place from a local store, else through a staging copy. Errors of the
        store (a missing blob, a failed read) are raised."""
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
        """The stored fingerprints of these blobs (cached: a blob's fingerprint never changes). A row
        that does not parse (written before a check existed) counts as no fingerprint."""
        out: dict[str, Fingerprint] = {}
        unique = sorted(set(sha256s))
        with self._lock:
            for sha in unique:
                hit = self._cache.get(sha)
                if hit is not None:
                    self._cache.move_to_end(sha)
                    out[sha] = hit
        todo = [sha for sha in unique if sha not in out]
        with self.db.read() as conn:
            for i in range(0, len(todo), 500):
                rows = conn.execute(
                    select(blob_fingerprints.c.sha256, blob_fingerprints.c.fingerprint).where(
                        blob_fingerprints.c.sha256.in_(todo[i : i + 500]),
                        blob_fingerprints.c.tensors <= MAX_TENSORS,
                    )
                )
                for r in rows:
                    try:
                        out[r.sha256] = self._remember(
                            r.sha256, Fingerprint.from_dict(json.loads(r.fingerprint))
                        )
                    except (ValueError, CairnError):
                        continue
        return out

    def _remember(self, sha256: str, fp: Fingerprint) -> Fingerprint:
        with self._lock:
            if sha256 not in self._cache:
                self._cache[sha256] = fp
                self._cached_tensors += len(fp.tensors)
            while self._cached_tensors > _CACHE_TENSORS and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cached_tensors -= len(old.tensors)
        return fp

    def tree_fingerprint(self, entries: Sequence[FileEntry]) -> tuple[Fingerprint | None, list[str]]:
        """(the merged fingerprint of the tree's model weight files, those of them without a
        fingerprint). The files are chosen as for a local directory (:func:`model_weight_files`: top
        level only, safetensors over torch twins, no optimizer or other training state); a merged
        fingerprint of more than :data:`MAX_TENSORS` tensors counts as none."""
        by_path = {e.path: e for e in entries}
        weights = [by_path[path] for path in model_weight_files(by_path)]
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
        if len(tensors) > MAX_TENSORS:
            return None, [e.path for e in weights]
        return (Fingerprint(tensors) if tensors else None), missing

    def _related_repos(
        self,
        weight_shas: list[str],
        fp: Fingerprint,
        who: Principal | None,
        *,
        skip: ColumnElement[bool] | None = None,
    ) -> list[Repo]:
        """Models the caller may read whose ``main`` holds a blob sharing tensors with ``fp`` (most
        shared bytes first), then ones sharing the architecture of one of ``weight_shas`` or of ``fp``
        (oldest first): at most ``MAX_CANDIDATES * 4``. Visibility is decided in the query, before the
        ranking and the limit, so that repos the caller cannot read never take a candidate's place;
        ``skip``: a condition on ``repos`` for rows to leave out as well."""
        cap = MAX_CANDIDATES * 4
        big = sorted(
            (t for t in fp.tensors.values() if t.nbytes >= INDEXED_TENSOR_BYTES),
            key=lambda t: (-t.nbytes, t.sha256),
        )[:_MAX_LOOKUP_TENSORS]
        wanted = [repos.c.type == "model", _visible(who)]
        if skip is not None:
            wanted.append(~skip)
        on_main = and_(refs.c.kind == "branch", refs.c.name == "main", refs.c.commit_id == files.c.commit_id)
        with self.db.read() as conn:
            archs = {arch_key(fp)} | set(
                conn.execute(
                    select(blob_fingerprints.c.arch).where(blob_fingerprints.c.sha256.in_(weight_shas))
                ).scalars()
            )
            order: list[int] = []
            if big:  # each shared tensor counts once per repo (not once per path or shard holding it)
                shared = (
                    select(repos.c.id.label("rid"), tensor_index.c.tensor_sha256, tensor_index.c.nbytes)
                    .select_from(tensor_index)
                    .join(files, files.c.sha256 == tensor_index.c.blob_sha256)
                    .join(refs, on_main)
                    .join(repos, repos.c.id == refs.c.repo_id)
                    .where(tensor_index.c.tensor_sha256.in_(sorted({t.sha256 for t in big})), *wanted)
                    .distinct()
                    .subquery()
                )
                score = func.sum(shared.c.nbytes)
                order = list(
                    conn.execute(
                        select(shared.c.rid)
                        .group_by(shared.c.rid)
                        .order_by(score.desc(), shared.c.rid)
                        .limit(cap)
                    ).scalars()
                )
            if len(order) < cap:
                same_arch = (
                    select(repos.c.id)
                    .select_from(blob_fingerprints)
                    .join(files, files.c.sha256 == blob_fingerprints.c.sha256)
                    .join(refs, on_main)
                    .join(repos, repos.c.id == refs.c.repo_id)
                    .where(blob_fingerprints.c.arch.in_(sorted(archs)), *wanted)
                    .group_by(repos.c.id)
                    .order_by(repos.c.id)
                    .limit(cap)
                )
                taken = set(order)
                order += [i for i in conn.execute(same_arch).scalars() if i not in taken]
            order = order[:cap]
            if not order:
                return []
            rows = {r.id: _repo(r) for r in conn.execute(select(repos).where(repos.c.id.in_(order)))}
        return [rows[i] for i in order if i in rows]

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
        by_path = {e.path: e.sha256 for e in entries}
        weight_shas = [by_path[path] for path in model_weight_files(by_path)]
        skip = repos.c.id.in_(sorted(declared_ids)) | (repos.c.created_at >= repo.created_at)
        budget = [_CANDIDATE_TENSOR_BUDGET]
        for cand in self._related_repos(weight_shas, mine, who, skip=skip):
            if not self._may_read(reg, cand, who):  # the query's filter, checked once more
                continue
            cmp = self._compare(reg, mine, cand, budget)
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
        budget = [_CANDIDATE_TENSOR_BUDGET]
        skip = None
        if exclude:  # one IN list: a chain of 1000 ORs is deeper than SQLite parses
            skip = (repos.c.namespace + "/" + repos.c.name).in_(sorted(set(exclude)))
        for cand in self._related_repos([], fp, who, skip=skip):
            if cand.repo_id in exclude or not self._may_read(reg, cand, who):
                continue
            cmp = self._compare(reg, fp, cand, budget)
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

    def _compare(
        self, reg: Registry, mine: Fingerprint | None, other: Repo, budget: list[int] | None = None
    ) -> dict[str, Any]:
        """``mine`` against ``other``'s ``main``; ``budget``: candidate tensors this request may still
        parse (spent here; at zero the candidate is not compared)."""
        if budget is not None and budget[0] <= 0:
            return {"supported": None, "error": "too many candidate tensors to compare in one request"}
        try:
            head, _ = reg.commits.resolve(other, "main")
        except CairnError:
            return {"supported": None, "error": f"{other.repo_id} has no main branch"}
        theirs, _ = self.tree_fingerprint(reg.commits.files(head))
        if budget is not None and theirs is not None:
            budget[0] -= len(theirs.tensors)
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


def _visible(who: Principal | None) -> ColumnElement[bool]:
    """SQL condition on ``repos``: models whose files ``who`` may read — public, or private in one of
    their namespaces (as the token allows), and not gated unless theirs or their access was accepted."""
    if who is None:
        return and_(repos.c.private.is_(False), repos.c.gated == "")
    mine = _readable(who, "model")
    granted = repos.c.id.in_(
        select(repo_access.c.repo_id).where(
            repo_access.c.user_id == who.user.id, repo_access.c.status == "accepted"
        )
    )
    return and_(or_(repos.c.private.is_(False), mine), or_(repos.c.gated == "", mine, granted))
