"""Trust on upload: the server's policy, and what the registry does with inspections on every commit.

Call order on a commit (see :meth:`cairn.registry.Registry.commit`):

1. :meth:`TrustService.prepare` — before anything is written: every added blob has an inspection (made
   at upload time by :meth:`TrustService.on_ingest`, or now from the blob store); under the ``reject``
   policy an unsafe file fails the commit with :class:`UnsafeUploadError` listing the findings.
2. :meth:`TrustService.record` — inside the commit's own transaction, with the new tree: verifies
   ``model.sig`` against the tree's stored sha256s, enforces a repo's signature requirement
   (:class:`SignatureRequiredError` rolls the whole commit back), and writes the revision's trust record
   (signer, safetensors parameter totals).

Downloads go through :meth:`TrustService.check_download`: an unsafe blob (quarantined) is refused with
:class:`QuarantinedFileError` until an admin releases it for that repo (:meth:`TrustService.release`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, delete, insert, select

from cairn.errors import NotFoundError, PermissionDeniedError, UnsafeContentError, UsageError
from cairn.format.safetensors import HeaderMemo
from cairn.governance.policy import LicensePolicy
from cairn.meta import Database, now_us
from cairn.meta.trust_tables import namespace_trust, quarantine_overrides, repo_trust, revision_trust
from cairn.registry.models import AddFile, FileEntry, Operation, Repo
from cairn.registry.scanning import (
    Inspection,
    inspect_file,
    inspect_stored,
    load_inspections,
    save_inspection,
)
from cairn.security.report import Severity
from cairn.store import BlobStore

__all__ = [
    "SIGNATURE_FILE",
    "QuarantinedFileError",
    "RepoTrustSettings",
    "SignatureRequiredError",
    "TrustPolicy",
    "TrustService",
    "UnsafeUploadError",
]

SIGNATURE_FILE = "model.sig"
_MAX_SIG_BYTES = 4 << 20
Verdict = Literal["safe", "caution", "unsafe", "error", "unscanned"]


@dataclass(frozen=True)
class TrustPolicy:
    """The server's trust settings (documented in docs/trust.md).

    ``on_unsafe``: ``reject`` (default) fails a commit that adds a file with findings at or above
    ``block_severity``; ``quarantine`` accepts it and refuses downloads of that file until an admin
    releases it; ``warn`` accepts and serves it, showing the status only. ``scan=False`` turns scanning
    off (files show as ``unscanned``, never as safe). ``trusted_keys``: PEM public keys whose signatures
    every repo accepts, in addition to a repo's own. ``admins``: users who may release quarantined files
    through the API (the operator can always, with ``cairn admin release``). ``license_policy``: what
    the governance license check of each commit with a README.md does (default ``warn``: record, show).
    """

    on_unsafe: Literal["reject", "quarantine", "warn"] = "reject"
    block_severity: str = "critical"
    scan: bool = True
    trusted_keys: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    block_unscannable: bool = False
    license_policy: LicensePolicy = field(default_factory=LicensePolicy)

    def __post_init__(self) -> None:
        if self.on_unsafe not in {"reject", "quarantine", "warn"}:
            raise UsageError(f"unsafe-file policy must be reject, quarantine or warn, not {self.on_unsafe!r}")
        Severity.parse(self.block_severity)

    def verdict(self, found: Inspection | None) -> Verdict:
        """What an inspection means under this policy. "Could not scan" is ``error``, never ``safe``."""
        if found is None:
            return "unscanned"
        if found.status == "error":
            return "error"
        if found.status == "findings":
            worst = Severity.parse(found.severity or "info")
            return "unsafe" if worst >= Severity.parse(self.block_severity) else "caution"
        return "safe"

    def blocks(self, verdict: str) -> bool:
        """Whether a file with ``verdict`` is refused (rejected, or quarantined) under this policy."""
        return verdict == "unsafe" or (verdict == "error" and self.block_unscannable)


@dataclass(frozen=True)
class RepoTrustSettings:
    require_signature: bool = False
    trusted_keys: tuple[str, ...] = ()


class UnsafeUploadError(UnsafeContentError):
    """A commit adds files with findings at or above the blocking severity (policy ``reject``)."""

    code = "unsafe_upload"

    def __init__(self, files: Mapping[str, list[dict[str, Any]]]) -> None:
        parts = []
        for path, findings in files.items():
            listed = "; ".join(f"{f['severity']} {f['rule']}: {f['construct']}" for f in findings[:5])
            parts.append(f"{path} ({listed})")
        super().__init__("Commit rejected: unsafe content found by the security scan: " + " | ".join(parts))
        self.files = {p: list(f) for p, f in files.items()}


class QuarantinedFileError(PermissionDeniedError):
    """A download of a file the security scan found unsafe, not released by an admin."""

    code = "quarantined"

    def __init__(self, path: str, sha256: str, severity: str | None) -> None:
        super().__init__(
            f"{path} is quarantined: the security scan found {severity or 'unscannable or unsafe'} content; "
            "an administrator must release it before it can be downloaded"
        )
        self.path = path
        self.sha256 = sha256
        self.severity = severity


class SignatureRequiredError(PermissionDeniedError):
    """The repo requires a valid signature from a trusted key and the commit has none."""

    code = "signature_required"

    def __init__(self, repo_id: str, reason: str) -> None:
        super().__init__(
            f"Commit rejected: {repo_id} requires a valid {SIGNATURE_FILE} from a trusted key: {reason}"
        )
        self.repo_id = repo_id
        self.reason = reason


def _reasons(found: Inspection) -> list[dict[str, Any]]:
    """Findings, or for a file that could not be scanned, its scanner errors in the same shape."""
    if found.findings:
        return found.findings
    errors = found.report.get("errors", [])
    return [
        {"severity": "error", "rule": "could-not-scan", "construct": e.get("message", "")} for e in errors
    ]


class TrustService:
    def __init__(self, db: Database, store: BlobStore, staging: Path, policy: TrustPolicy) -> None:
        self.db = db
        self.store = store
        self.staging = staging
        self.policy = policy

    # -- inspections -----------------------------------------------------------------------------------
    def on_ingest(self, src: Path, sha256: str, headers: HeaderMemo | None = None) -> None:
        """Inspect a verified staged upload before it is handed to the store (its pages are still hot);
        ``headers``: the upload's header memo (see :func:`~cairn.registry.scanning.inspect_file`)."""
        if self.policy.scan:
            save_inspection(self.db, inspect_file(src, sha256, headers))

    def inspections(self, sha256s: Sequence[str]) -> dict[str, Inspection]:
        with self.db.read() as conn:
            return load_inspections(conn, list(sha256s))

    def prepare(self, operations: Sequence[Operation]) -> dict[str, Inspection]:
        """Make sure every added blob is inspected; under ``reject``, refuse unsafe ones."""
        added = [op for op in operations if isinstance(op, AddFile)]
        if not self.policy.scan or not added:
            return {}
        known = self.inspections([op.sha256 for op in added])
        for op in added:
            if op.sha256 not in known and self.store.exists(op.sha256):
                found = inspect_stored(self.store, op.sha256, self.staging)
                save_inspection(self.db, found)
                known[op.sha256] = found
        if self.policy.on_unsafe == "reject":
            bad = {
                op.path: _reasons(known[op.sha256])
                for op in added
                if self.policy.blocks(self.policy.verdict(known.get(op.sha256)))
            }
            if bad:
                raise UnsafeUploadError(bad)
        return known

    def file_status(self, entries: Sequence[FileEntry]) -> dict[str, tuple[Verdict, Inspection | None]]:
        """Per path: the verdict and the inspection behind it."""
        found = self.inspections([e.sha256 for e in entries]) if self.policy.scan else {}
        return {e.path: (self.policy.verdict(found.get(e.sha256)), found.get(e.sha256)) for e in entries}

    # -- quarantine ------------------------------------------------------------------------------------
    def check_download(self, repo: Repo, entry: FileEntry) -> None:
        """Raise :class:`QuarantinedFileError` if ``entry`` is unsafe and not released in ``repo``."""
        if self.policy.on_unsafe == "warn" or not self.policy.scan:
            return
        with self.db.read() as conn:
            found = load_inspections(conn, [entry.sha256]).get(entry.sha256)
            if not self.policy.blocks(self.policy.verdict(found)):
                return
            released = conn.execute(
                select(quarantine_overrides.c.sha256).where(
                    quarantine_overrides.c.repo_id == repo.id, quarantine_overrides.c.sha256 == entry.sha256
                )
            ).first()
        if released is None:
            raise QuarantinedFileError(entry.path, entry.sha256, None if found is None else found.severity)

    def release(self, repo: Repo, sha256: str, *, by: str, reason: str = "") -> None:
        """Let downloads of blob ``sha256`` in ``repo`` through (an admin's decision; idempotent)."""
        with self.db.write() as conn:
            conn.execute(
                delete(quarantine_overrides).where(
                    quarantine_overrides.c.repo_id == repo.id, quarantine_overrides.c.sha256 == sha256
                )
            )
            conn.execute(
                insert(quarantine_overrides).values(
                    repo_id=repo.id, sha256=sha256, by=by, reason=reason[:2000], created_at=now_us()
                )
            )

    def revoke(self, repo: Repo, sha256: str) -> None:
        with self.db.write() as conn:
            gone = conn.execute(
                delete(quarantine_overrides).where(
                    quarantine_overrides.c.repo_id == repo.id, quarantine_overrides.c.sha256 == sha256
                )
            ).rowcount
        if gone != 1:
            raise NotFoundError(f"blob {sha256} is not released in {repo.repo_id}")

    # -- repo settings ---------------------------------------------------------------------------------
    def settings(self, repo: Repo, conn: Connection | None = None) -> RepoTrustSettings:
        """The repo's own signature settings (see :meth:`effective` for what a commit must meet)."""
        query = select(repo_trust).where(repo_trust.c.repo_id == repo.id)
        if conn is None:
            with self.db.read() as c:
                row = c.execute(query).first()
        else:
            row = conn.execute(query).first()
        if row is None:
            return RepoTrustSettings()
        return RepoTrustSettings(bool(row.require_signature), tuple(json.loads(row.trusted_keys)))

    def namespace_settings(self, namespace: str, conn: Connection | None = None) -> RepoTrustSettings:
        """Settings for every repo of a user or organisation namespace (the operator sets them)."""
        query = select(namespace_trust).where(namespace_trust.c.namespace == namespace)
        if conn is None:
            with self.db.read() as c:
                row = c.execute(query).first()
        else:
            row = conn.execute(query).first()
        if row is None:
            return RepoTrustSettings()
        return RepoTrustSettings(bool(row.require_signature), tuple(json.loads(row.trusted_keys)))

    def set_namespace_settings(self, namespace: str, settings: RepoTrustSettings) -> RepoTrustSettings:
        from cairn.registry.signatures import load_keys

        load_keys(settings.trusted_keys)
        with self.db.write() as conn:
            conn.execute(delete(namespace_trust).where(namespace_trust.c.namespace == namespace))
            conn.execute(
                insert(namespace_trust).values(
                    namespace=namespace,
                    require_signature=settings.require_signature,
                    trusted_keys=json.dumps(list(settings.trusted_keys)),
                )
            )
        return settings

    def effective(self, repo: Repo, conn: Connection | None = None) -> RepoTrustSettings:
        """Repo, namespace and server settings combined: a signature is required if either the repo or
        its namespace requires one; the keys of all three are trusted."""
        own = self.settings(repo, conn)
        ns = self.namespace_settings(repo.namespace, conn)
        keys = tuple(dict.fromkeys(own.trusted_keys + ns.trusted_keys + self.policy.trusted_keys))
        return RepoTrustSettings(own.require_signature or ns.require_signature, keys)

    def set_settings(self, repo: Repo, settings: RepoTrustSettings) -> RepoTrustSettings:
        from cairn.registry.signatures import load_keys

        load_keys(settings.trusted_keys)  # refuse keys that do not parse before storing them
        with self.db.write() as conn:
            conn.execute(delete(repo_trust).where(repo_trust.c.repo_id == repo.id))
            conn.execute(
                insert(repo_trust).values(
                    repo_id=repo.id,
                    require_signature=settings.require_signature,
                    trusted_keys=json.dumps(list(settings.trusted_keys)),
                )
            )
        return settings

    # -- the commit hook -------------------------------------------------------------------------------
    def record(
        self,
        conn: Connection,
        repo: Repo,
        commit_id: str,
        tree: Mapping[str, FileEntry],
        inspected: Mapping[str, Inspection],
        *,
        enforce: bool = True,
    ) -> None:
        """Verify the signature, enforce the repo's requirement and store the revision's trust record.
        ``enforce=False`` (a history rewrite re-recording old commits) records without refusing."""
        from cairn.registry.signatures import verify_tree

        settings = self.effective(repo, conn)
        keys = settings.trusted_keys
        sig_entry = tree.get(SIGNATURE_FILE)
        sig_bytes = None
        if sig_entry is not None and sig_entry.size <= _MAX_SIG_BYTES:
            sig_bytes = b"".join(self.store.iter_range(sig_entry.sha256))
        license_report = self._license(repo, tree)
        signature = verify_tree(
            sig_entry is not None, sig_bytes, keys, {p: e.sha256 for p, e in tree.items()}
        )
        if enforce and settings.require_signature and signature["status"] != "verified":
            raise SignatureRequiredError(repo.repo_id, str(signature.get("reason", signature["status"])))
        conn.execute(
            insert(revision_trust).values(
                commit_id=commit_id,
                signature=json.dumps(signature),
                safetensors=json.dumps(self._parameters(conn, tree, inspected)),
                license_check=None if license_report is None else json.dumps(license_report, default=str),
            )
        )

    def _license(self, repo: Repo, tree: Mapping[str, FileEntry]) -> dict[str, Any] | None:
        from cairn.registry.licensing import license_check

        if repo.type != "model":
            return None
        return license_check(repo.repo_id, tree, self.store, self._public_main, self.policy.license_policy)

    def _public_main(self, ref: str) -> dict[str, FileEntry] | None:
        """The ``main`` tree of public model repo ``ref`` (``namespace/name``), or ``None``."""
        from cairn.meta import files, refs, repos

        namespace, _, name = ref.partition("/")
        with self.db.read() as conn:
            head = conn.execute(
                select(refs.c.commit_id)
                .join(repos, repos.c.id == refs.c.repo_id)
                .where(
                    repos.c.type == "model",
                    repos.c.namespace == namespace,
                    repos.c.name == name,
                    repos.c.private.is_(False),
                    refs.c.kind == "branch",
                    refs.c.name == "main",
                )
            ).scalar()
            if head is None:
                return None
            rows = conn.execute(select(files).where(files.c.commit_id == head)).all()
        return {
            r.path: FileEntry(r.path, r.sha256, r.git_sha1, r.size, bool(r.lfs), r.last_commit) for r in rows
        }

    @staticmethod
    def _parameters(
        conn: Connection, tree: Mapping[str, FileEntry], inspected: Mapping[str, Inspection]
    ) -> dict[str, Any] | None:
        shas = [e.sha256 for p, e in tree.items() if p.endswith(".safetensors")]
        if not shas:
            return None
        known = dict(inspected)
        missing = [s for s in shas if s not in known]
        if missing:
            known.update(load_inspections(conn, missing))
        counts: dict[str, int] = {}
        for p, e in tree.items():
            found = known.get(e.sha256)
            if p.endswith(".safetensors") and found is not None and found.parameters is not None:
                for dtype, n in found.parameters.items():
                    counts[dtype] = counts.get(dtype, 0) + int(n)
        if not counts:
            return None
        return {"parameters": counts, "total": sum(counts.values())}

    def revision(self, commit_id: str) -> dict[str, Any] | None:
        """The trust record of a commit: ``signature`` and ``safetensors``; ``None`` for commits made
        before trust records existed (such as the initial commit)."""
        with self.db.read() as conn:
            row = conn.execute(select(revision_trust).where(revision_trust.c.commit_id == commit_id)).first()
        if row is None:
            return None
        return {
            "signature": json.loads(row.signature),
            "safetensors": None if row.safetensors is None else json.loads(row.safetensors),
            "licenseCheck": None if row.license_check is None else json.loads(row.license_check),
        }
