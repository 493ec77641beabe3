"""Commits, trees and refs. Commits are immutable and named by a 40-hex SHA-1; a commit stores its full
tree; branches move only by compare-and-swap inside the same transaction that writes the commit, so two
writers racing on one branch cannot both win and neither leaves a half-written commit behind.

Every transaction that writes a ref first takes the repo's row in shared mode (:func:`lock_repo`), and
one that points a ref at an existing commit checks, after that, that the commit is still there; history
rewrites (:mod:`cairn.registry.storage`) take the row exclusively, so they never delete a commit that a
ref being written is about to name, and all of them lock in the same order (repo row, then ref rows)."""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, Integer, Row, and_, delete, insert, literal, select, update

from cairn.errors import LimitExceededError
from cairn.meta import Database, blobs, commits, files, now_us, refs, repo_objects, repos
from cairn.registry.errors import (
    AlreadyExistsError,
    EntryNotFoundError,
    MissingBlobError,
    RefMovedError,
    RevisionNotFoundError,
    StaleParentError,
)
from cairn.registry.models import AddFile, Commit, DeleteFile, DeleteFolder, FileEntry, Operation, Ref, Repo
from cairn.registry.names import check_path, check_ref_name, is_commit_id

__all__ = [
    "LFS_PATTERNS",
    "LFS_THRESHOLD",
    "MAX_OPERATIONS",
    "CommitService",
    "is_lfs_path",
    "is_pr_ref",
    "lock_repo",
    "new_commit_id",
    "pr_ref",
]

LFS_THRESHOLD = 10 * 1024 * 1024
MAX_OPERATIONS = 25_000  # per commit
LFS_PATTERNS = frozenset(
    {"7z", "arrow", "bin", "bz2", "ckpt", "ftz", "gguf", "gz", "h5", "joblib", "keras", "mlmodel", "model"}
    | {"msgpack", "npy", "npz", "onnx", "ot", "parquet", "pb", "pickle", "pkl", "pt", "pth", "rar"}
    | {"safetensors", "tar", "tflite", "tgz", "wasm", "xz", "zip", "zst"}
)
_HEX_PREFIX = re.compile(r"[0-9a-f]{5,39}")
_PR_REF = re.compile(r"refs/pr/[1-9][0-9]{0,8}")
_MAX_DEPTH = (1 << 31) - 1  # history depth bound: a 32-bit INTEGER in SQL


def lock_repo(conn: Connection, repo_id: int, *, exclusive: bool = False) -> None:
    """Lock the repo's row for this transaction: shared (``FOR KEY SHARE``) by writers that point refs
    at commits, exclusive (``FOR UPDATE``) by history rewrites that delete commits. SQLite has one
    writer at a time, so there the write transaction itself is the lock."""
    query = select(repos.c.id).where(repos.c.id == repo_id)
    query = query.with_for_update() if exclusive else query.with_for_update(read=True, key_share=True)
    conn.execute(query).first()


def pr_ref(num: int) -> str:
    """The ref a pull request's commits go to (a ``refs`` row of kind ``pr`` with this name)."""
    return f"refs/pr/{num}"


def is_pr_ref(name: str) -> bool:
    return _PR_REF.fullmatch(name) is not None


def is_lfs_path(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return "." in name and name.rsplit(".", 1)[-1].lower() in LFS_PATTERNS


def _commit(row: Row[Any]) -> Commit:
    return Commit(row.id, row.parent_id, row.title, row.message, row.author, row.created_at)


def _entry(row: Row[Any]) -> FileEntry:
    return FileEntry(row.path, row.sha256, row.git_sha1, row.size, bool(row.lfs), row.last_commit)


class CommitService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- revisions -------------------------------------------------------------------------------------
    def resolve(self, repo: Repo, revision: str) -> tuple[str, Literal["branch", "tag", "pr", "commit"]]:
        """Branch, then tag, then pull-request ref, then full commit id, then unique commit-id prefix."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(refs.c.kind, refs.c.commit_id).where(
                    refs.c.repo_id == repo.id, refs.c.name == revision
                )
            ).all()
            by_kind = {r.kind: r.commit_id for r in rows}
            if "branch" in by_kind:
                return by_kind["branch"], "branch"
            if "tag" in by_kind:
                return by_kind["tag"], "tag"
            if "pr" in by_kind:
                return by_kind["pr"], "pr"
            if is_commit_id(revision):
                found = conn.execute(
                    select(commits.c.id).where(commits.c.id == revision, commits.c.repo_id == repo.id)
                ).scalar()
                if found:
                    return revision, "commit"
            elif _HEX_PREFIX.fullmatch(revision):
                ids = conn.execute(
                    select(commits.c.id)
                    .where(commits.c.repo_id == repo.id, commits.c.id.startswith(revision))
                    .limit(2)
                ).all()
                if len(ids) == 1:
                    return ids[0].id, "commit"
        raise RevisionNotFoundError(repo.repo_id, revision)

    def branch_head(self, repo: Repo, branch: str) -> str:
        with self.db.read() as conn:
            head = self._ref(conn, repo, "branch", branch)
        if head is None:
            raise RevisionNotFoundError(repo.repo_id, branch)
        return head

    @staticmethod
    def _ref(conn: Connection, repo: Repo, kind: str, name: str) -> str | None:
        value: str | None = conn.execute(
            select(refs.c.commit_id).where(
                refs.c.repo_id == repo.id, refs.c.kind == kind, refs.c.name == name
            )
        ).scalar()
        return value

    def get_commit(self, repo: Repo, commit_id: str) -> Commit:
        with self.db.read() as conn:
            row = conn.execute(
                select(commits).where(commits.c.id == commit_id, commits.c.repo_id == repo.id)
            ).first()
        if row is None:
            raise RevisionNotFoundError(repo.repo_id, commit_id)
        return _commit(row)

    # -- trees -----------------------------------------------------------------------------------------
    def files(self, commit_id: str, prefix: str = "") -> list[FileEntry]:
        """Every file of a commit (under ``prefix/`` when given), sorted by path."""
        query = select(files).where(files.c.commit_id == commit_id)
        if prefix:
            query = query.where(files.c.path.startswith(prefix.rstrip("/") + "/", autoescape=True))
        with self.db.read() as conn:
            return [_entry(r) for r in conn.execute(query.order_by(files.c.path))]

    def file(self, commit_id: str, path: str) -> FileEntry:
        with self.db.read() as conn:
            row = conn.execute(
                select(files).where(files.c.commit_id == commit_id, files.c.path == path)
            ).first()
        if row is None:
            raise EntryNotFoundError(path, commit_id)
        return _entry(row)

    def files_at(self, commit_id: str, paths: Sequence[str]) -> list[FileEntry]:
        if not paths:
            return []
        with self.db.read() as conn:
            rows = conn.execute(
                select(files).where(files.c.commit_id == commit_id, files.c.path.in_(list(paths)[:1000]))
            )
            return [_entry(r) for r in rows]

    # -- writing ---------------------------------------------------------------------------------------
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
        on_tree: Callable[[Connection, str, dict[str, FileEntry]], None] | None = None,
    ) -> Commit:
        """Apply ``operations`` in order on the head of ``branch`` and move the branch, atomically.
        ``branch`` may be a pull request's ref ``refs/pr/N``, which moves the same way.

        ``parent``: the commit the caller based its work on; :class:`StaleParentError` if the branch has
        moved since. A lost compare-and-swap raises :class:`RefMovedError`; in both cases nothing changes.
        ``on_tree(conn, commit_id, tree)`` runs inside the same transaction once the new tree is known and
        the commit row is written: it may record more rows, or raise to roll the whole commit back.
        """
        if len(operations) > MAX_OPERATIONS:
            raise LimitExceededError(f"a commit may have at most {MAX_OPERATIONS} operations")
        for op in operations:
            check_path(op.path.rstrip("/") if isinstance(op, DeleteFolder) else op.path)
        created = now_us()
        kind = "pr" if is_pr_ref(branch) else "branch"
        with self.db.write() as conn:
            lock_repo(conn, repo.id)  # a squash or history rewrite waits, or has finished (storage.py)
            head = self._ref(conn, repo, kind, branch)
            if head is None:
                raise RevisionNotFoundError(repo.repo_id, branch)
            if parent is not None and parent != head:
                raise StaleParentError(branch, parent, head)
            tree = {
                r.path: r
                for r in (_entry(x) for x in conn.execute(select(files).where(files.c.commit_id == head)))
            }
            commit_id = new_commit_id(repo, head, title, author, created)
            changed = self._apply(conn, repo, tree, operations, commit_id, head)
            conn.execute(
                insert(commits).values(
                    id=commit_id,
                    repo_id=repo.id,
                    parent_id=head,
                    title=title[:1000] or "Update files",
                    message=message[:65536],
                    author=author,
                    created_at=created,
                )
            )
            rows = [
                {
                    "commit_id": commit_id,
                    "path": e.path,
                    "sha256": e.sha256,
                    "git_sha1": e.git_sha1,
                    "size": e.size,
                    "lfs": e.lfs,
                    "last_commit": commit_id if e.path in changed else e.last_commit,
                }
                for e in tree.values()
            ]
            if rows:
                conn.execute(insert(files), rows)
            if on_tree is not None:
                on_tree(conn, commit_id, tree)
            moved = conn.execute(
                update(refs)
                .where(
                    refs.c.repo_id == repo.id,
                    refs.c.kind == kind,
                    refs.c.name == branch,
                    refs.c.commit_id == head,
                )
                .values(commit_id=commit_id)
            ).rowcount
            if moved != 1:  # another writer moved the branch after we read it: roll back everything
                if parent is not None:
                    raise StaleParentError(branch, parent, self._ref(conn, repo, kind, branch) or "(deleted)")
                raise RefMovedError(branch if kind == "pr" else f"refs/heads/{branch}", head)
        return Commit(commit_id, head, title[:1000] or "Update files", message[:65536], author, created)

    def _apply(
        self,
        conn: Connection,
        repo: Repo,
        tree: dict[str, FileEntry],
        operations: Sequence[Operation],
        commit_id: str,
        head: str,
    ) -> set[str]:
        changed: set[str] = set()
        for op in operations:
            if isinstance(op, AddFile):
                blob = conn.execute(  # only objects proven through this repo (finding 1)
                    select(blobs)
                    .join(repo_objects, repo_objects.c.sha256 == blobs.c.sha256)
                    .where(repo_objects.c.repo_id == repo.id, blobs.c.sha256 == op.sha256)
                    .with_for_update(read=True)  # the garbage collector cannot take it meanwhile (gc.py)
                ).first()
                if blob is None or (op.size is not None and op.size != blob.size):
                    raise MissingBlobError(op.path, op.sha256)
                lfs = op.lfs if op.lfs is not None else (is_lfs_path(op.path) or blob.size >= LFS_THRESHOLD)
                tree[op.path] = FileEntry(op.path, op.sha256, blob.git_sha1, blob.size, lfs, commit_id)
                changed.add(op.path)
            elif isinstance(op, DeleteFile):
                if op.path not in tree:
                    raise EntryNotFoundError(op.path, head, "A file with this name doesn't exist")
                del tree[op.path]
            elif isinstance(op, DeleteFolder):
                prefix = op.path.rstrip("/") + "/"
                doomed = [p for p in tree if p.startswith(prefix)]
                if not doomed:
                    raise EntryNotFoundError(op.path, head, "A folder with this name doesn't exist")
                for p in doomed:
                    del tree[p]
        _check_clashes(tree, changed)
        return changed

    def initial_commit(self, repo: Repo, author: str, gitattributes_oid: str) -> Commit:
        created = now_us()
        commit_id = new_commit_id(repo, None, "initial commit", author, created)
        with self.db.write() as conn:
            blob = conn.execute(  # locked like any commit's blobs (gc.py)
                select(blobs).where(blobs.c.sha256 == gitattributes_oid).with_for_update(read=True)
            ).first()
            if blob is None:
                raise MissingBlobError(".gitattributes", gitattributes_oid)
            conn.execute(
                insert(commits).values(
                    id=commit_id,
                    repo_id=repo.id,
                    parent_id=None,
                    title="initial commit",
                    message="",
                    author=author,
                    created_at=created,
                )
            )
            conn.execute(
                insert(files).values(
                    commit_id=commit_id,
                    path=".gitattributes",
                    sha256=gitattributes_oid,
                    git_sha1=blob.git_sha1,
                    size=blob.size,
                    lfs=False,
                    last_commit=commit_id,
                )
            )
            conn.execute(
                insert(refs).values(repo_id=repo.id, kind="branch", name="main", commit_id=commit_id)
            )
        return Commit(commit_id, None, "initial commit", "", author, created)

    # -- history and refs ------------------------------------------------------------------------------
    def history(self, repo: Repo, commit_id: str, *, offset: int = 0, limit: int = 50) -> list[Commit]:
        """Commits reachable from ``commit_id``, newest first: ``limit`` of them after skipping ``offset``.

        The parent chain is walked in the database (a recursive query, stopped at ``offset + limit``), so a
        page costs what it shows, not the repo's whole history (training runs push thousands of commits)."""
        if limit <= 0 or offset >= _MAX_DEPTH:  # no chain is that long
            return []
        depth = min(offset + limit, _MAX_DEPTH)  # the depth column is a 32-bit INTEGER on PostgreSQL
        start = select(commits.c.id, commits.c.parent_id, literal(0, Integer).label("depth"))
        chain = start.where(commits.c.repo_id == repo.id, commits.c.id == commit_id).cte(
            "chain", recursive=True
        )
        parent = commits.alias("parent")
        chain = chain.union_all(
            select(parent.c.id, parent.c.parent_id, chain.c.depth + 1).where(
                parent.c.repo_id == repo.id, parent.c.id == chain.c.parent_id, chain.c.depth + 1 < depth
            )
        )
        query = select(commits).join(chain, commits.c.id == chain.c.id).order_by(chain.c.depth)
        with self.db.read() as conn:
            rows = conn.execute(query.offset(offset).limit(limit)).all()
        return [_commit(r) for r in rows]

    def by_ids(self, repo: Repo, ids: Sequence[str]) -> dict[str, Commit]:
        """The commits of ``repo`` among ``ids`` (e.g. the last commits of a tree's files), by id."""
        out: dict[str, Commit] = {}
        unique = sorted(set(ids))
        with self.db.read() as conn:
            for i in range(0, len(unique), 500):
                rows = conn.execute(
                    select(commits).where(commits.c.repo_id == repo.id, commits.c.id.in_(unique[i : i + 500]))
                )
                out.update((r.id, _commit(r)) for r in rows)
        return out

    def refs(self, repo: Repo) -> list[Ref]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(refs).where(refs.c.repo_id == repo.id).order_by(refs.c.kind, refs.c.name)
            )
            return [Ref(r.kind, r.name, r.commit_id) for r in rows]

    def create_ref(self, repo: Repo, kind: Literal["branch", "tag"], name: str, commit_id: str) -> Ref:
        check_ref_name(kind, name)
        with self.db.write() as conn:
            lock_repo(conn, repo.id)
            exists = conn.execute(  # resolved before this transaction: a squash may have removed it since
                select(commits.c.id).where(commits.c.id == commit_id, commits.c.repo_id == repo.id)
            ).first()
            if exists is None:
                raise RevisionNotFoundError(repo.repo_id, commit_id)
            taken = conn.execute(
                select(refs.c.kind).where(refs.c.repo_id == repo.id, refs.c.name == name)
            ).first()
            if taken is not None:
                raise AlreadyExistsError(taken.kind, name)
            conn.execute(insert(refs).values(repo_id=repo.id, kind=kind, name=name, commit_id=commit_id))
        return Ref(kind, name, commit_id)

    def delete_ref(self, repo: Repo, kind: Literal["branch", "tag"], name: str) -> None:
        with self.db.write() as conn:
            lock_repo(conn, repo.id)
            gone = conn.execute(
                delete(refs).where(and_(refs.c.repo_id == repo.id, refs.c.kind == kind, refs.c.name == name))
            ).rowcount
        if gone != 1:
            raise RevisionNotFoundError(repo.repo_id, name)


def _check_clashes(tree: dict[str, FileEntry], added: set[str]) -> None:
    """A path may not be both a file and a folder. Only added paths can create a clash (the tree was
    clean before), so the work is per added path: its folder prefixes (at most MAX_PATH_DEPTH) are looked
    up as files, and a bisect in the sorted paths tells whether it is itself a folder of some file."""
    if not added:
        return
    ordered = sorted(tree)
    for path in sorted(added):
        if path not in tree:
            continue
        cut = path.find("/")
        while cut >= 0:
            if path[:cut] in tree:
                raise AlreadyExistsError("a folder with the same name as the file", path[:cut])
            cut = path.find("/", cut + 1)
        below = path + "/"
        at = bisect.bisect_left(ordered, below)
        if at < len(ordered) and ordered[at].startswith(below):
            raise AlreadyExistsError("a folder with the same name as the file", path)


def new_commit_id(repo: Repo, parent: str | None, title: str, author: str, created: int) -> str:
    material = json.dumps([repo.id, parent, title, author, created, os.urandom(16).hex()])
    return hashlib.sha1(material.encode(), usedforsecurity=False).hexdigest()
