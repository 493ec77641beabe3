"""The :class:`Registry` facade: the one object the hub (and the CLI's admin commands) talk to.

It owns a :class:`~cairn.meta.Database` and a :class:`~cairn.store.BlobStore` and composes the user,
repo and commit services. Blobs enter through :meth:`Registry.ingest_blob` (bytes first, then the row
that makes them referable), so a crash at any point leaves at worst an unreferenced blob, never a commit
that names missing bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from cairn.format.hashing import git_blob_sha1
from cairn.format.safetensors import HeaderMemo
from cairn.governance.fingerprint import Fingerprint
from cairn.meta import Database, blobs, now_us, repo_objects
from cairn.meta.migrate import migrate
from cairn.registry.access import AccessService
from cairn.registry.audit import AuditService
from cairn.registry.backfill import BackfillReport, backfill_fingerprints
from cairn.registry.cards import MAX_CARD_BYTES, derive_card_info
from cairn.registry.commits import CommitService
from cairn.registry.discovery import DiscoveryService
from cairn.registry.discussions import DiscussionService
from cairn.registry.errors import FileDeletedError, MissingBlobError
from cairn.registry.gc import GcReport, collect_garbage
from cairn.registry.lineage import LineageService
from cairn.registry.models import Commit, FileEntry, Operation, Principal, Repo
from cairn.registry.names import is_commit_id
from cairn.registry.orgs import OrgService
from cairn.registry.repos import RepoService, can_see
from cairn.registry.trust import TrustPolicy, TrustService
from cairn.registry.users import UserService
from cairn.store import BlobStore, open_blob_store

__all__ = ["GITATTRIBUTES", "BlobInfo", "Registry"]

GITATTRIBUTES = "".join(
    f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
    for ext in (
        "bin",
        "ckpt",
        "gguf",
        "h5",
        "msgpack",
        "npy",
        "npz",
        "onnx",
        "pt",
        "pth",
        "safetensors",
        "zip",
    )
).encode()


# Branches win over tags (ORDER BY kind: 'branch' < 'tag'), as revision resolution requires.
_LOOKUP = text(
    "SELECT r.id, r.private, r.gated, r.created_at, r.last_modified, x.commit_id, "
    "f.sha256, f.git_sha1, f.size, f.lfs, f.last_commit, "
    "EXISTS (SELECT 1 FROM repo_objects o WHERE o.repo_id = r.id AND o.sha256 = f.sha256) AS owned "
    "FROM repos r JOIN refs x ON x.repo_id = r.id AND x.name = :rev "
    "JOIN files f ON f.commit_id = x.commit_id AND f.path = :path "
    "WHERE r.type = :type AND r.namespace = :ns AND r.name = :name ORDER BY x.kind LIMIT 1"
)

_LOOKUP_COMMIT = text(
    "SELECT r.id, r.private, r.gated, r.created_at, r.last_modified, c.id AS commit_id, "
    "f.sha256, f.git_sha1, f.size, f.lfs, f.last_commit, "
    "EXISTS (SELECT 1 FROM repo_objects o WHERE o.repo_id = r.id AND o.sha256 = f.sha256) AS owned "
    "FROM repos r JOIN commits c ON c.repo_id = r.id AND c.id = :rev "
    "JOIN files f ON f.commit_id = c.id AND f.path = :path "
    "WHERE r.type = :type AND r.namespace = :ns AND r.name = :name"
)


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    git_sha1: str


class Registry:
    """Domain operations over one database and one blob store."""

    def __init__(self, db: Database, store: BlobStore, trust: TrustPolicy | None = None) -> None:
        self.db = db
        self.store = store
        self.audit = AuditService(db)
        self.users = UserService(db, self.audit)
        self.commits = CommitService(db)
        self.repos = RepoService(db, self._initial_commit, self.audit)
        self.orgs = OrgService(db, self.users, self.audit)
        self.access = AccessService(db, self.repos, self.audit)
        local = store.staging_dir()
        self._own_staging = None if local is not None else Path(tempfile.mkdtemp(prefix="cairn-staging-"))
        self._staging = local or self._own_staging
        self.trust = TrustService(db, store, self.staging_dir(), trust or TrustPolicy())
        self.discovery = DiscoveryService(db)
        self.lineage = LineageService(db, store, self.staging_dir())
        self.discussions = DiscussionService(db)

    @classmethod
    def open(
        cls, db_url: str, blobs_url: str, *, upgrade: bool = True, trust: TrustPolicy | None = None
    ) -> Registry:
        """Open (and by default migrate) the database at ``db_url`` and the store at ``blobs_url``.
        ``trust``: the server's scanning and signature policy (default: scan, reject unsafe files)."""
        db = Database(db_url)
        if upgrade:
            migrate(db)
        return cls(db, open_blob_store(blobs_url), trust)

    def close(self) -> None:
        self.db.dispose()
        if self._own_staging is not None:
            shutil.rmtree(self._own_staging, ignore_errors=True)

    # -- blobs -----------------------------------------------------------------------------------------
    def staging_dir(self) -> Path:
        """Where uploads are streamed before they are verified and handed to the store."""
        assert self._staging is not None
        return self._staging

    def ingest_blob(
        self,
        src: Path,
        sha256: str,
        git_sha1: str,
        size: int,
        *,
        repo_id: int | None = None,
        fingerprint: Fingerprint | None = None,
        headers: HeaderMemo | None = None,
    ) -> BlobInfo:
        """Store a verified temporary file (consumed) and record it. Idempotent.

        ``fingerprint``: its lineage fingerprint if the caller computed it while streaming the bytes in
        (else the file is fingerprinted here when it holds weights). ``headers``: the memo through which
        that computation parsed a safetensors header (:attr:`StreamingFingerprint.headers`); the scan,
        the parameter counts and the fingerprint all parse through one memo, so the header is parsed
        once per upload.

        ``repo_id``: the repo the verified bytes were uploaded through; it may then reference the blob
        (:meth:`grant_object`). Only a caller that hashed the bytes itself may pass it.

        Bytes already stored get their row's ``created_at`` refreshed, which restarts the garbage
        collector's grace period (:mod:`cairn.registry.gc`): an old unreferenced row would otherwise be
        collected between this upload and the commit that names it."""
        existing = self.blob(sha256)
        if (
            existing is not None
            and self._refresh([sha256])  # 0: collected meanwhile
            and self.store.exists(sha256)
            and (repo_id is None or self.grant_object(repo_id, sha256))  # False: collected meanwhile
        ):
            src.unlink(missing_ok=True)
            return existing
        memo = HeaderMemo() if headers is None else headers
        self.trust.on_ingest(src, sha256, memo)
        self.lineage.on_ingest(src, sha256, fingerprint, memo)
        self.store.put_file(sha256, src)
        with contextlib.suppress(DBIntegrityError), self.db.write() as conn:
            conn.execute(
                insert(blobs).values(sha256=sha256, size=size, git_sha1=git_sha1, created_at=now_us())
            )
        if repo_id is not None and not self.grant_object(repo_id, sha256):
            raise MissingBlobError("(upload)", sha256)  # collected between storing and granting: retry
        return BlobInfo(sha256, size, git_sha1)

    def ingest_bytes(self, data: bytes, *, repo_id: int | None = None) -> BlobInfo:
        sha256 = hashlib.sha256(data).hexdigest()
        fd, tmp = tempfile.mkstemp(dir=self.staging_dir())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return self.ingest_blob(Path(tmp), sha256, git_blob_sha1(data), len(data), repo_id=repo_id)

    def _refresh(self, sha256s: Sequence[str], repo_id: int | None = None) -> int:
        """Set the rows' ``created_at`` to now (only rows ``repo_id`` may reference, if given); how many
        rows there were. A row the collector already holds is deleted before this update runs."""
        if not sha256s:
            return 0
        query = update(blobs).where(blobs.c.sha256.in_(list(sha256s)))
        if repo_id is not None:
            owned = select(repo_objects.c.sha256).where(
                repo_objects.c.repo_id == repo_id, repo_objects.c.sha256.in_(list(sha256s))
            )
            query = query.where(blobs.c.sha256.in_(owned))
        with self.db.write() as conn:
            return int(conn.execute(query.values(created_at=now_us())).rowcount)

    def claim_blobs(self, repo_id: int, sha256s: Sequence[str]) -> None:
        """Restart the garbage collector's grace period of the blobs ``repo_id`` may reference among
        ``sha256s``: an upload found them already stored (LFS batch, verify, a retried completion) and
        its commit will name them. Call it before :meth:`repo_blob`, so that a blob found there stays
        out of the collector's reach for the whole grace period."""
        self._refresh(sha256s, repo_id)

    def blob(self, sha256: str) -> BlobInfo | None:
        with self.db.read() as conn:
            row = conn.execute(select(blobs).where(blobs.c.sha256 == sha256)).first()
        return None if row is None else BlobInfo(row.sha256, row.size, row.git_sha1)

    def grant_object(self, repo_id: int, sha256: str) -> bool:
        """Let repo ``repo_id`` reference blob ``sha256`` (its bytes were proven through that repo).

        The grant is written holding the blob's row (``FOR SHARE``), so the garbage collector either
        sees it or has already removed the row: then nothing is granted and this returns False."""
        held = (repo_objects.c.repo_id == repo_id) & (repo_objects.c.sha256 == sha256)
        with self.db.read() as conn:
            if conn.execute(select(repo_objects.c.sha256).where(held)).first() is not None:
                return True
        with contextlib.suppress(DBIntegrityError), self.db.write() as conn:
            row = conn.execute(
                select(blobs.c.sha256).where(blobs.c.sha256 == sha256).with_for_update(read=True)
            ).first()
            if row is None:
                return False
            if conn.execute(select(repo_objects.c.sha256).where(held)).first() is None:
                conn.execute(insert(repo_objects).values(repo_id=repo_id, sha256=sha256))
        return True

    def repo_blob(self, repo_id: int, sha256: str) -> BlobInfo | None:
        """The blob ``sha256`` if repo ``repo_id`` may reference it, else ``None`` (even if stored for
        another repo: whether other repos hold some bytes is not revealed)."""
        with self.db.read() as conn:
            row = conn.execute(
                select(blobs)
                .join(repo_objects, repo_objects.c.sha256 == blobs.c.sha256)
                .where(repo_objects.c.repo_id == repo_id, blobs.c.sha256 == sha256)
            ).first()
        return None if row is None else BlobInfo(row.sha256, row.size, row.git_sha1)

    def read_blob(self, sha256: str, limit: int) -> bytes | None:
        """The whole content of a small blob (``None`` if larger than ``limit``)."""
        if self.store.size(sha256) > limit:
            return None
        return b"".join(self.store.iter_range(sha256))

    def iter_blob(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self.store.iter_range(sha256, start, end)

    def collect_garbage(self, *, grace_s: int, apply: bool = False, strays: bool = False) -> GcReport:
        """Blobs no commit references, older than ``grace_s``: counted, and deleted with ``apply``
        (see :mod:`cairn.registry.gc` for why this is safe while the hub serves)."""
        return collect_garbage(
            self.db, self.store, grace_s=grace_s, apply=apply, strays=strays, staging=self.store.staging_dir()
        )

    def backfill_fingerprints(self, *, apply: bool = False) -> BackfillReport:
        """Lineage fingerprints for committed weight files stored before the hub computed them: counted,
        and computed and stored with ``apply`` (see :mod:`cairn.registry.backfill`)."""
        return backfill_fingerprints(self.lineage, apply=apply)

    # -- the hot path ----------------------------------------------------------------------------------
    def lookup_file(
        self,
        repo_type: str,
        namespace: str,
        name: str,
        revision: str,
        path: str,
        who: Principal | None,
        *,
        content: bool = True,
    ) -> tuple[Repo, str, FileEntry]:
        """(repo, commit id, file) for a download, in one query when ``revision`` is a branch or tag
        and the file exists; otherwise through the general path, which raises the precise error.
        ``content``: the caller will send the bytes, so a quarantined file is refused
        (:class:`~cairn.registry.trust.QuarantinedFileError`); metadata alone is always answered."""
        query = _LOOKUP_COMMIT if is_commit_id(revision) else _LOOKUP
        with self.db.read() as conn:
            row = conn.execute(
                query, {"type": repo_type, "ns": namespace, "name": name, "rev": revision, "path": path}
            ).first()
        if row is not None:
            repo = Repo(
                id=row.id,
                type=repo_type,
                namespace=namespace,
                name=name,
                private=bool(row.private),
                gated=row.gated,
                created_at=row.created_at,
                last_modified=row.last_modified,
            )
            if can_see(repo, who) and not repo.gated:
                entry = FileEntry(path, row.sha256, row.git_sha1, row.size, bool(row.lfs), row.last_commit)
                if content:
                    if not row.owned:
                        raise FileDeletedError(path, row.sha256)
                    self.trust.check_download(repo, entry)
                return repo, row.commit_id, entry
        repo = self.repos.get(repo_type, namespace, name, who)
        self.repos.check_content_access(repo, who)
        commit, _ = self.commits.resolve(repo, revision)
        entry = self.commits.file(commit, path)
        if content:
            self.check_download(repo, entry)
        return repo, commit, entry

    def check_download(self, repo: Repo, entry: FileEntry) -> None:
        """Refuse to send a file's bytes: :class:`FileDeletedError` when the repo gave the object up
        (``permanently_delete_lfs_files`` without rewriting history), else the trust policy's
        :meth:`TrustService.check_download` (quarantine)."""
        with self.db.read() as conn:
            held = conn.execute(
                select(repo_objects.c.sha256).where(
                    repo_objects.c.repo_id == repo.id, repo_objects.c.sha256 == entry.sha256
                )
            ).first()
        if held is None:
            raise FileDeletedError(entry.path, entry.sha256)
        self.trust.check_download(repo, entry)

    # -- commits with side effects ---------------------------------------------------------------------
    def _initial_commit(self, repo: Repo, author: str) -> None:
        info = self.ingest_bytes(GITATTRIBUTES, repo_id=repo.id)
        first = self.commits.initial_commit(repo, author, info.sha256)
        verdicts = [v for v, _ in self.trust.file_status(self.commits.files(first.id)).values()]
        self.discovery.index(repo, {}, None, verdicts)

    def commit(
        self,
        repo: Repo,
        branch: str,
        operations: Sequence[Operation],
        *,
        title: str,
        message: str = "",
        author: str,
        parent: str | None = None,
        then: Callable[[Connection, str], None] | None = None,
    ) -> Commit:
        """Commit, then refresh the repo's derived metadata (tags, card) when ``main`` moved.

        Every added file is inspected first (:meth:`TrustService.prepare`: unsafe files fail the commit
        under the ``reject`` policy); the signature and the revision's trust record are checked and written
        in the commit's own transaction, so a rejected commit leaves nothing behind. ``then(conn,
        commit_id)`` runs last in that transaction (a pull request records its commit or merge there).
        Added weight files stored before lineage fingerprints existed are fingerprinted after the commit
        (:meth:`LineageService.ensure`)."""
        inspected = self.trust.prepare(operations)

        def on_tree(conn: Connection, commit_id: str, tree: dict[str, FileEntry]) -> None:
            self.trust.record(conn, repo, commit_id, tree, inspected)
            if then is not None:
                then(conn, commit_id)

        commit = self.commits.commit(
            repo,
            branch,
            operations,
            title=title,
            message=message,
            author=author,
            parent=parent,
            on_tree=on_tree,
        )
        self.repos.touch(repo, commit.created_at)
        # after the commit: only now is the repo known to be allowed to reference the added blobs
        self.lineage.ensure(operations)
        self.audit.record(
            author,
            "repo.commit",
            repo=repo,
            target=branch,
            detail={"commit": commit.id, "title": title[:200]},
        )
        if branch == "main":
            self.refresh_card(repo, commit.id)
        return commit

    def refresh_card(self, repo: Repo, commit_id: str) -> None:
        entries = self.commits.files(commit_id)
        by_path = {e.path: e for e in entries}

        def content(path: str) -> bytes | None:
            entry = by_path.get(path)
            return None if entry is None else self.read_blob(entry.sha256, MAX_CARD_BYTES)

        info = derive_card_info(by_path, content("README.md"), content("config.json"))
        self.repos.set_card_info(repo, info)
        record = self.trust.revision(commit_id) or {}
        params = (record.get("safetensors") or {}).get("total")
        verdicts = [v for v, _ in self.trust.file_status(entries).values()]
        self.discovery.index(repo, info.card_data, params, verdicts)
