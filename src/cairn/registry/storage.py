"""Storage management: squashing a branch's history, listing a repo's LFS objects, and permanently
deleting them (the Hub's ``super_squash_history``, ``list_lfs_files`` and ``permanently_delete_lfs_files``).

Checkpoint repos grow by a commit every N steps; these operations let their owners give space back. They
free no bytes themselves: they delete commits (and their trees) and a repo's hold on objects, and the
garbage collector (:mod:`cairn.registry.gc`) then removes every blob no remaining commit of a repo holding
it names, after its grace period, under the same row locks that make it safe while the hub serves.

**Commits no ref reaches are deleted in the transaction that moves the refs.** A squash or a history
rewrite takes the repo's row exclusively (:func:`~cairn.registry.commits.lock_repo`), moves the refs,
walks every ref (branches, tags, ``refs/pr/N``) back to its root and deletes the commits it did not reach,
with their ``files`` and trust rows. Every transaction that points a ref at a commit (a commit, a new
branch or tag, a new pull request) holds the same row in shared mode and checks that its commit still
exists, so it either finishes before the rewrite looks at the refs, or starts after it and sees the new
history: a commit racing a squash of its branch lands on top of the squashed commit, never lost. A
squashed-away commit id then answers 404 everywhere, like one that never existed.

**Permanent deletion** (admins only) names objects by sha256. With ``rewrite_history`` every commit of the
repo whose tree holds one of them is rewritten without those files (a new id, the same title, author and
date), every descendant is rewritten onto its new parent, the refs (pull requests' too) and the pull
requests' base and merge commits move to the rewritten commits, and the old ones are deleted. Without it,
the commits keep naming the files, but the repo's hold on the objects (``repo_objects``) goes: downloads
of them answer 410 (:class:`~cairn.registry.errors.FileDeletedError`), and they no longer keep the blob
alive. Uploading the same bytes to the repo again restores them. Blobs other repos hold are never
touched: the collector sees those repos' references.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, String, and_, cast, delete, func, insert, literal, select, update

from cairn.errors import CairnError, LimitExceededError, UsageError
from cairn.meta import commits, files, now_us, refs, repo_objects
from cairn.meta.schema import discussions
from cairn.meta.trust_tables import revision_trust
from cairn.registry.commits import is_pr_ref, lock_repo, new_commit_id
from cairn.registry.errors import LfsFileNotFoundError, RefMovedError, RevisionNotFoundError
from cairn.registry.models import Commit, FileEntry, Principal, Repo
from cairn.registry.repos import require
from cairn.registry.service import Registry

__all__ = [
    "MAX_LFS_DELETIONS",
    "Deletion",
    "LfsFile",
    "Squash",
    "check_shas",
    "delete_lfs_files",
    "list_lfs_files",
    "prune_unreachable",
    "super_squash",
]

MAX_LFS_DELETIONS = 1000  # per request, as the client sends them
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 500
_REF_PREFIX = {"branch": "refs/heads/", "tag": "refs/tags/", "pr": ""}


@dataclass(frozen=True)
class Squash:
    commit: Commit
    squashed: str  # the branch head it replaced
    pruned: int  # commits deleted because no ref reached them any more


@dataclass(frozen=True)
class LfsFile:
    sha256: str
    filename: str  # one path it has had in the repo's history
    pushed_at: int  # the first commit of the repo that named it (microseconds)
    size: int
    ref: str | None  # a ref whose head holds it (``refs/heads/main`` first), None if only in history


@dataclass(frozen=True)
class Deletion:
    deleted: int  # objects the repo gave up
    rewritten: int  # commits rewritten without them
    pruned: int  # old commits deleted


# -- squash -------------------------------------------------------------------------------------------
def super_squash(reg: Registry, repo: Repo, who: Principal | None, branch: str, message: str) -> Squash:
    """Point ``branch`` at one new root commit with its head's exact tree, authored by ``who`` (who
    must be able to write to the repo), and delete the commits no ref reaches any more."""
    require(who, repo.type, repo.namespace, repo.name, 2)
    assert who is not None
    if is_pr_ref(branch):
        raise UsageError(f"cannot squash {branch!r}: only branches can be squashed")
    first, _, rest = message.strip().partition("\n")
    title = first.strip()[:1000] or f"Super-squash branch '{branch}'"
    body = rest.strip()[:65536]
    created = now_us()
    with reg.db.write() as conn:
        lock_repo(conn, repo.id, exclusive=True)
        named = {
            r.kind: r.commit_id
            for r in conn.execute(
                select(refs.c.kind, refs.c.commit_id).where(refs.c.repo_id == repo.id, refs.c.name == branch)
            )
        }
        head = named.get("branch")
        if head is None:
            if named:
                kind = next(iter(named))
                raise UsageError(f"cannot squash {kind} {branch!r}: only branches can be squashed")
            raise RevisionNotFoundError(repo.repo_id, branch)
        commit_id = new_commit_id(repo, None, title, who.user.name, created)
        conn.execute(
            insert(commits).values(
                id=commit_id,
                repo_id=repo.id,
                parent_id=None,
                title=title,
                message=body,
                author=who.user.name,
                created_at=created,
            )
        )
        _copy_tree(conn, head, commit_id)
        _copy_trust(conn, head, commit_id)
        moved = conn.execute(
            update(refs)
            .where(
                refs.c.repo_id == repo.id,
                refs.c.kind == "branch",
                refs.c.name == branch,
                refs.c.commit_id == head,
            )
            .values(commit_id=commit_id)
        ).rowcount
        if moved != 1:  # cannot happen under the exclusive lock; never squash a head we did not read
            raise RefMovedError(f"refs/heads/{branch}", head)
        pruned = prune_unreachable(conn, repo.id)
    reg.repos.touch(repo, created)
    reg.audit.record(
        who.user.name,
        "repo.squash",
        repo=repo,
        target=branch,
        detail={"commit": commit_id, "squashed": head, "pruned": pruned},
    )
    return Squash(Commit(commit_id, None, title, body, who.user.name, created), head, pruned)


def _copy_tree(conn: Connection, source: str, target: str) -> None:
    """Every ``files`` row of ``source`` again under the root commit ``target`` (where each file last changed)."""
    new_id = cast(literal(target), String(40))
    conn.execute(
        insert(files).from_select(
            ["commit_id", "path", "sha256", "git_sha1", "size", "lfs", "last_commit"],
            select(
                new_id,
                files.c.path,
                files.c.sha256,
                files.c.git_sha1,
                files.c.size,
                files.c.lfs,
                new_id,
            ).where(files.c.commit_id == source),
        )
    )


def _copy_trust(conn: Connection, source: str, target: str) -> None:
    """The trust record of ``source`` for ``target``, whose tree is the same."""
    conn.execute(
        insert(revision_trust).from_select(
            ["commit_id", "signature", "safetensors", "license_check"],
            select(
                cast(literal(target), String(40)),
                revision_trust.c.signature,
                revision_trust.c.safetensors,
                revision_trust.c.license_check,
            ).where(revision_trust.c.commit_id == source),
        )
    )


# -- reachability -------------------------------------------------------------------------------------
def _reachable(parents: dict[str, str | None], heads: Iterable[str]) -> set[str]:
    live: set[str] = set()
    for head in heads:
        cursor: str | None = head
        while cursor is not None and cursor in parents and cursor not in live:
            live.add(cursor)
            cursor = parents[cursor]
    return live


def prune_unreachable(conn: Connection, repo_id: int) -> int:
    """Delete the commits of ``repo_id`` that no ref reaches, with their trees and trust records. Call
    inside a transaction that holds the repo's row exclusively (:func:`lock_repo`)."""
    parents = {
        r.id: r.parent_id
        for r in conn.execute(select(commits.c.id, commits.c.parent_id).where(commits.c.repo_id == repo_id))
    }
    heads = conn.execute(select(refs.c.commit_id).where(refs.c.repo_id == repo_id)).scalars()
    live = _reachable(parents, heads)
    dead = sorted(c for c in parents if c not in live)
    for chunk in _chunks(dead):
        conn.execute(delete(files).where(files.c.commit_id.in_(chunk)))
        conn.execute(delete(revision_trust).where(revision_trust.c.commit_id.in_(chunk)))
        conn.execute(delete(commits).where(commits.c.id.in_(chunk), commits.c.repo_id == repo_id))
    return len(dead)


def _chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for at in range(0, len(items), _CHUNK):
        yield list(items[at : at + _CHUNK])


# -- listing ------------------------------------------------------------------------------------------
def list_lfs_files(
    reg: Registry, repo: Repo, who: Principal | None, *, offset: int = 0, limit: int = 100
) -> list[LfsFile]:
    """The LFS objects the repo holds and its history names, newest first (writers only)."""
    require(who, repo.type, repo.namespace, repo.name, 2)
    pushed = func.min(commits.c.created_at).label("pushed")
    query = (
        select(files.c.sha256, func.min(files.c.path).label("filename"), pushed, func.max(files.c.size))
        .select_from(
            files.join(commits, commits.c.id == files.c.commit_id).join(
                repo_objects,
                and_(repo_objects.c.repo_id == commits.c.repo_id, repo_objects.c.sha256 == files.c.sha256),
            )
        )
        .where(commits.c.repo_id == repo.id, files.c.lfs.is_(True))
        .group_by(files.c.sha256)
        .order_by(pushed.desc(), files.c.sha256)
        .offset(offset)
        .limit(limit)
    )
    with reg.db.read() as conn:
        rows = conn.execute(query).all()
        shas = [r[0] for r in rows]
        at_refs = conn.execute(
            select(files.c.sha256, refs.c.kind, refs.c.name)
            .select_from(refs.join(files, files.c.commit_id == refs.c.commit_id))
            .where(refs.c.repo_id == repo.id, files.c.sha256.in_(shas))
        ).all()
    best: dict[str, tuple[tuple[int, int, str], str]] = {}
    for sha, kind, name in at_refs:
        rank = ({"branch": 0, "tag": 1}.get(kind, 2), 0 if name == "main" else 1, name)
        if sha not in best or rank < best[sha][0]:
            best[sha] = (rank, _REF_PREFIX.get(kind, "") + name)
    return [
        LfsFile(sha, filename, int(when), int(size), best[sha][1] if sha in best else None)
        for sha, filename, when, size in rows
    ]


# -- permanent deletion -------------------------------------------------------------------------------
def check_shas(values: object) -> list[str]:
    """A list of distinct sha256 object ids, or a :class:`UsageError` / :class:`LimitExceededError`."""
    if not isinstance(values, list):
        raise UsageError("'deletions.sha' must be a list of sha256 object ids")
    if len(values) > MAX_LFS_DELETIONS:
        raise LimitExceededError(f"at most {MAX_LFS_DELETIONS} objects per request, not {len(values)}")
    for value in values:
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            raise UsageError(f"not a sha256 object id: {str(value)[:80]!r}")
    return sorted(set(values))


def delete_lfs_files(
    reg: Registry, repo: Repo, who: Principal | None, shas: list[str], *, rewrite_history: bool
) -> Deletion:
    """Permanently delete LFS objects ``shas`` from ``repo`` (admins only; all or nothing: one id that
    names no LFS file of the repo's history refuses the whole request)."""
    require(who, repo.type, repo.namespace, repo.name, 3)
    assert who is not None
    doomed = check_shas(shas)
    if not doomed:
        return Deletion(0, 0, 0)
    main_before = main_after = None
    with reg.db.write() as conn:
        lock_repo(conn, repo.id, exclusive=True)
        named: set[str] = set()
        for chunk in _chunks(doomed):
            named.update(
                conn.execute(
                    select(files.c.sha256)
                    .distinct()
                    .join(commits, commits.c.id == files.c.commit_id)
                    .where(commits.c.repo_id == repo.id, files.c.lfs.is_(True), files.c.sha256.in_(chunk))
                ).scalars()
            )
        missing = [s for s in doomed if s not in named]
        if missing:
            raise LfsFileNotFoundError(repo.repo_id, missing)
        rewritten = pruned = 0
        if rewrite_history:
            main_before = _main(conn, repo.id)
            rewritten = len(_rewrite_without(reg, conn, repo, set(doomed)))
            pruned = prune_unreachable(conn, repo.id)
            main_after = _main(conn, repo.id)
        for chunk in _chunks(doomed):
            conn.execute(
                delete(repo_objects).where(
                    repo_objects.c.repo_id == repo.id, repo_objects.c.sha256.in_(chunk)
                )
            )
    if main_after is not None and main_after != main_before:
        reg.refresh_card(repo, main_after)
    reg.repos.touch(repo, now_us())
    reg.audit.record(
        who.user.name,
        "repo.lfs_delete",
        repo=repo,
        detail={"objects": len(doomed), "rewriteHistory": rewrite_history, "rewritten": rewritten},
    )
    return Deletion(len(doomed), rewritten, pruned)


def _main(conn: Connection, repo_id: int) -> str | None:
    head: str | None = conn.execute(
        select(refs.c.commit_id).where(
            refs.c.repo_id == repo_id, refs.c.kind == "branch", refs.c.name == "main"
        )
    ).scalar()
    return head


def _rewrite_without(reg: Registry, conn: Connection, repo: Repo, doomed: set[str]) -> dict[str, str]:
    """Rewrite every reachable commit whose tree names a ``doomed`` object, and its descendants, without
    those files; move the refs and the pull requests' commits. Returns old id -> new id."""
    rows = {r.id: r for r in conn.execute(select(commits).where(commits.c.repo_id == repo.id))}
    parents = {cid: r.parent_id for cid, r in rows.items()}
    heads = conn.execute(
        select(refs.c.kind, refs.c.name, refs.c.commit_id).where(refs.c.repo_id == repo.id)
    ).all()
    live = _reachable(parents, (h.commit_id for h in heads))
    affected: set[str] = set()
    for chunk in _chunks(sorted(doomed)):
        affected.update(
            conn.execute(
                select(files.c.commit_id)
                .distinct()
                .join(commits, commits.c.id == files.c.commit_id)
                .where(commits.c.repo_id == repo.id, files.c.sha256.in_(chunk))
            ).scalars()
        )
    mapping: dict[str, str] = {}
    for cid in _parents_first(parents, live):
        row = rows[cid]
        if cid not in affected and row.parent_id not in mapping:
            continue
        parent = mapping.get(row.parent_id, row.parent_id) if row.parent_id else None
        new = new_commit_id(repo, parent, row.title, row.author, row.created_at)
        mapping[cid] = new
        conn.execute(
            insert(commits).values(
                id=new,
                repo_id=repo.id,
                parent_id=parent,
                title=row.title,
                message=row.message,
                author=row.author,
                created_at=row.created_at,
            )
        )
        tree = _write_tree(conn, cid, new, doomed, mapping)
        if cid not in affected:
            _copy_trust(conn, cid, new)  # the same tree
            continue
        try:  # recomputed: the signature or the parameter count may change without the deleted files
            reg.trust.record(conn, repo, new, tree, {}, enforce=False)
        except CairnError:  # a blob the record reads is gone (given up earlier): keep the old record
            _copy_trust(conn, cid, new)
    for h in heads:
        if h.commit_id in mapping:
            conn.execute(
                update(refs)
                .where(
                    refs.c.repo_id == repo.id,
                    refs.c.kind == h.kind,
                    refs.c.name == h.name,
                    refs.c.commit_id == h.commit_id,
                )
                .values(commit_id=mapping[h.commit_id])
            )
    for d in conn.execute(
        select(discussions.c.id, discussions.c.base_commit, discussions.c.merge_commit).where(
            discussions.c.repo_id == repo.id
        )
    ).all():
        values = {
            column: mapping[old]
            for column, old in (("base_commit", d.base_commit), ("merge_commit", d.merge_commit))
            if old in mapping
        }
        if values:
            conn.execute(update(discussions).where(discussions.c.id == d.id).values(**values))
    return mapping


def _parents_first(parents: dict[str, str | None], live: set[str]) -> list[str]:
    """The ``live`` commits ordered so that each comes after its parent."""
    depth: dict[str, int] = {}
    for start in live:
        chain: list[str] = []
        cursor: str | None = start
        while cursor is not None and cursor in live and cursor not in depth:
            chain.append(cursor)
            cursor = parents[cursor]
        base = depth[cursor] if cursor is not None and cursor in depth else -1
        for cid in reversed(chain):
            base += 1
            depth[cid] = base
    return sorted(live, key=lambda c: (depth[c], c))


def _write_tree(
    conn: Connection, source: str, target: str, doomed: set[str], mapping: dict[str, str]
) -> dict[str, FileEntry]:
    """The tree of ``source`` without the ``doomed`` objects, written under ``target``, each file's last
    commit mapped to its rewritten id."""
    tree: dict[str, FileEntry] = {}
    for r in conn.execute(select(files).where(files.c.commit_id == source)):
        if r.sha256 not in doomed:
            last = mapping.get(r.last_commit, r.last_commit)
            tree[r.path] = FileEntry(r.path, r.sha256, r.git_sha1, r.size, bool(r.lfs), last)
    values: list[dict[str, Any]] = [
        {
            "commit_id": target,
            "path": e.path,
            "sha256": e.sha256,
            "git_sha1": e.git_sha1,
            "size": e.size,
            "lfs": e.lfs,
            "last_commit": e.last_commit,
        }
        for e in tree.values()
    ]
    if values:
        conn.execute(insert(files), values)
    return tree
