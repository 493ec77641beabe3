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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from cairn.format.hashing import git_blob_sha1
from cairn.meta import Database, blobs, now_us
from cairn.meta.migrate import migrate
from cairn.registry.access import AccessService
from cairn.registry.audit import AuditService
from cairn.registry.cards import MAX_CARD_BYTES, derive_card_info
from cairn.registry.commits import CommitService
from cairn.registry.models import Commit, FileEntry, Operation, Principal, Repo
from cairn.registry.names import is_commit_id
from cairn.registry.orgs import OrgService
from cairn.registry.repos import RepoService, can_see
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
    "f.sha256, f.git_sha1, f.size, f.lfs, f.last_commit "
    "FROM repos r JOIN refs x ON x.repo_id = r.id AND x.name = :rev "
    "JOIN files f ON f.commit_id = x.commit_id AND f.path = :path "
    "WHERE r.type = :type AND r.namespace = :ns AND r.name = :name ORDER BY x.kind LIMIT 1"
)

_LOOKUP_COMMIT = text(
    "SELECT r.id, r.private, r.gated, r.created_at, r.last_modified, c.id AS commit_id, "
    "f.sha256, f.git_sha1, f.size, f.lfs, f.last_commit "
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

    def __init__(self, db: Database, store: BlobStore) -> None:
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

    @classmethod
    def open(cls, db_url: str, blobs_url: str, *, upgrade: bool = True) -> Registry:
        """Open (and by default migrate) the database at ``db_url`` and the store at ``blobs_url``."""
        db = Database(db_url)
        if upgrade:
            migrate(db)
        return cls(db, open_blob_store(blobs_url))

    def close(self) -> None:
        self.db.dispose()
        if self._own_staging is not None:
            shutil.rmtree(self._own_staging, ignore_errors=True)

    # -- blobs -----------------------------------------------------------------------------------------
    def staging_dir(self) -> Path:
        """Where uploads are streamed before they are verified and handed to the store."""
        assert self._staging is not None
        return self._staging

    def ingest_blob(self, src: Path, sha256: str, git_sha1: str, size: int) -> BlobInfo:
        """Store a verified temporary file (consumed) and record it. Idempotent."""
        existing = self.blob(sha256)
        if existing is not None and self.store.exists(sha256):
            src.unlink(missing_ok=True)
            return existing
        self.store.put_file(sha256, src)
        with contextlib.suppress(DBIntegrityError), self.db.write() as conn:
            conn.execute(
                insert(blobs).values(sha256=sha256, size=size, git_sha1=git_sha1, created_at=now_us())
            )
        return BlobInfo(sha256, size, git_sha1)

    def ingest_bytes(self, data: bytes) -> BlobInfo:
        sha256 = hashlib.sha256(data).hexdigest()
        fd, tmp = tempfile.mkstemp(dir=self.staging_dir())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return self.ingest_blob(Path(tmp), sha256, git_blob_sha1(data), len(data))

    def blob(self, sha256: str) -> BlobInfo | None:
        with self.db.read() as conn:
            row = conn.execute(select(blobs).where(blobs.c.sha256 == sha256)).first()
        return None if row is None else BlobInfo(row.sha256, row.size, row.git_sha1)

    def read_blob(self, sha256: str, limit: int) -> bytes | None:
        """The whole content of a small blob (``None`` if larger than ``limit``)."""
        if self.store.size(sha256) > limit:
            return None
        return b"".join(self.store.iter_range(sha256))

    def iter_blob(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self.store.iter_range(sha256, start, end)

    # -- the hot path ----------------------------------------------------------------------------------
    def lookup_file(
        self, repo_type: str, namespace: str, name: str, revision: str, path: str, who: Principal | None
    ) -> tuple[Repo, str, FileEntry]:
        """(repo, commit id, file) for a download, in one query when ``revision`` is a branch or tag
        and the file exists; otherwise through the general path, which raises the precise error."""
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
                return repo, row.commit_id, entry
        repo = self.repos.get(repo_type, namespace, name, who)
        self.repos.check_content_access(repo, who)
        commit, _ = self.commits.resolve(repo, revision)
        return repo, commit, self.commits.file(commit, path)

    # -- commits with side effects ---------------------------------------------------------------------
    def _initial_commit(self, repo: Repo, author: str) -> None:
        info = self.ingest_bytes(GITATTRIBUTES)
        self.commits.initial_commit(repo, author, info.sha256)

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
    ) -> Commit:
        """Commit, then refresh the repo's derived metadata (tags, card) when ``main`` moved."""
        commit = self.commits.commit(
            repo, branch, operations, title=title, message=message, author=author, parent=parent
        )
        self.repos.touch(repo, commit.created_at)
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
