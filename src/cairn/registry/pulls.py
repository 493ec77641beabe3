"""Pull requests: opening one (with its ref ``refs/pr/N``), committing to it, and merging it.

Every commit here is an ordinary :meth:`Registry.commit`, so PR commits and merge commits pass the same
trust hooks (scan, signature, license check) as any other commit; the PR's own rows (commit event, merged
status) are written inside that commit's transaction, so a PR is never marked merged without its merge
commit, nor merged twice.

Merging is a file-level three-way merge of the PR's head onto the target's current head against the PR's
base (the target's head when the PR was opened): a path changed on one side only takes that side; a
path changed on both sides to different contents is a conflict, and so is a file on one side where the
other has a folder. If the target moves while the merge commit is written, the compare-and-swap fails,
and if ``refs/pr/N`` moved (the author pushed meanwhile) the merge transaction sees it on the locked ref
row; either way the merge is recomputed, so no concurrent commit to the target or the PR is lost.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import Connection

from cairn.errors import ConflictError, PermissionDeniedError, UsageError
from cairn.registry.discussions import (
    Discussion,
    DiscussionStateError,
    Event,
    PullRequestMovedError,
    may_moderate,
)
from cairn.registry.errors import RevisionNotFoundError, StaleParentError
from cairn.registry.models import AddFile, Commit, DeleteFile, FileEntry, Operation, Principal, Repo
from cairn.registry.service import Registry

__all__ = [
    "MergeConflictError",
    "acting_user",
    "check_push",
    "commit_to_pull_request",
    "conflicting_files",
    "may_change",
    "may_hide",
    "merge_pull_request",
    "open_pull_request",
    "set_status",
    "three_way",
]

MERGE_ATTEMPTS = 5
CONFLICT_CACHE_SIZE = 512


class MergeConflictError(ConflictError):
    """Both the PR and the target changed these paths to different contents since the PR's base."""

    code = "merge_conflict"

    def __init__(self, num: int, files: Sequence[str]) -> None:
        shown = ", ".join(files[:20]) + (" ..." if len(files) > 20 else "")
        super().__init__(f"pull request #{num} conflicts with its target on: {shown}")
        self.num = num
        self.files = tuple(files)


def acting_user(who: Principal | None, repo: Repo) -> Principal:
    """The caller, whose token must allow writing to ``repo`` (discussions are writes, even by readers).

    A plain write token qualifies everywhere; a fine-grained token only on the repos a write scope
    covers, so a token scoped to one repo opens, comments on and uploads to nothing elsewhere."""
    if who is None:
        from cairn.registry.errors import UnauthenticatedError

        raise UnauthenticatedError("You must be authenticated to do this: send a write token")
    if who.token_level(repo.type, repo.namespace, repo.name) < 2:
        if who.token.scopes:
            raise PermissionDeniedError(f"this token has no write scope covering {repo.repo_id}")
        raise PermissionDeniedError("this token is read-only")
    return who


def _writer(who: Principal, repo: Repo) -> bool:
    return who.level(repo.type, repo.namespace, repo.name) >= 2


def open_pull_request(
    reg: Registry,
    repo: Repo,
    who: Principal | None,
    title: str,
    description: str | None,
    *,
    target: str = "main",
    base: str | None = None,
) -> Discussion:
    """A draft PR into branch ``target``, its ref at ``base`` (default: the target's head). Anyone who
    may read the repo's files may open one."""
    user = acting_user(who, repo)
    reg.repos.check_content_access(repo, user)
    commit, kind = reg.commits.resolve(repo, target)
    if kind != "branch":
        raise UsageError(f"a pull request targets a branch, not {kind} {target!r}")
    if base is not None:
        base = reg.commits.get_commit(repo, base).id
    d = reg.discussions.create(
        repo,
        user.user.name,
        title,
        description,
        pull_request=True,
        target_branch=target,
        base_commit=base or commit,
    )
    reg.audit.record(user.user.name, "pr.open", repo=repo, target=d.ref, detail={"into": target})
    return d


def check_push(reg: Registry, repo: Repo, who: Principal | None, d: Discussion) -> Principal:
    """The PR's author and the repo's writers may push to ``refs/pr/N`` while it is open or draft."""
    user = acting_user(who, repo)
    reg.repos.check_content_access(repo, user)
    if not d.is_pull_request:
        raise UsageError(f"#{d.num} is a discussion, not a pull request")
    if user.user.name != d.author and not _writer(user, repo):
        raise PermissionDeniedError(f"only the author of #{d.num} and the repo's writers may push to it")
    if d.status not in {"open", "draft"}:
        raise DiscussionStateError(d.num, d.status, "push to this pull request")
    return user


def commit_to_pull_request(
    reg: Registry,
    repo: Repo,
    who: Principal | None,
    d: Discussion,
    operations: Sequence[Operation],
    *,
    title: str,
    message: str = "",
    parent: str | None = None,
) -> Commit:
    user = check_push(reg, repo, who, d)

    def then(conn: Connection, commit_id: str) -> None:
        reg.discussions.record_commit(conn, d, user.user.name, commit_id, title or "Update files")

    return reg.commit(
        repo,
        d.ref,
        operations,
        title=title,
        message=message,
        author=user.user.name,
        parent=parent,
        then=then,
    )


def three_way(
    base: dict[str, FileEntry], ours: dict[str, FileEntry], theirs: dict[str, FileEntry]
) -> tuple[list[Operation], list[str]]:
    """(operations that turn ``ours`` into the merge, conflicting paths). Contents compare by sha256.

    Besides paths both sides changed differently, a file one side added where the other added a folder
    (``x`` against ``x/y``) is a conflict on the file's path: no tree can hold both."""

    def key(e: FileEntry | None) -> str | None:
        return None if e is None else e.sha256

    ops: list[Operation] = []
    conflicts: list[str] = []
    merged = set(ours)
    for path in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = key(base.get(path)), key(ours.get(path)), key(theirs.get(path))
        if t in (b, o):
            continue  # the PR did not change it, or both sides agree
        if o != b:
            conflicts.append(path)
            continue
        entry = theirs.get(path)
        if entry is None:
            ops.append(DeleteFile(path))
            merged.discard(path)
        else:
            ops.append(AddFile(path, entry.sha256, size=entry.size, lfs=entry.lfs))
            merged.add(path)
    clashes = {
        folder
        for path in merged
        for folder in _folders(path)
        if folder in merged  # a file where the merged tree needs a folder
    }
    conflicts = sorted(set(conflicts) | clashes)
    return ops, conflicts


def _folders(path: str) -> list[str]:
    """Every folder ``path`` lies in: ``a/b/c`` → ``a``, ``a/b`` (paths have at most 64 segments)."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _heads(reg: Registry, repo: Repo, d: Discussion) -> tuple[str, str, str]:
    """(base, target head, PR head) of the pull request ``d``."""
    if d.target_branch is None or d.base_commit is None:
        raise UsageError(f"#{d.num} is not a pull request")
    try:
        target_head = reg.commits.branch_head(repo, d.target_branch)
    except RevisionNotFoundError:
        raise DiscussionStateError(
            d.num, f"targeting the deleted branch {d.target_branch!r}", "merge"
        ) from None
    pr_head, _ = reg.commits.resolve(repo, d.ref)
    return d.base_commit, target_head, pr_head


def _merge_of(reg: Registry, base: str, target_head: str, pr_head: str) -> tuple[list[Operation], list[str]]:
    def tree(commit: str) -> dict[str, FileEntry]:
        return {e.path: e for e in reg.commits.files(commit)}

    return three_way(tree(base), tree(target_head), tree(pr_head))


_conflicts_lock = threading.Lock()
_conflicts: OrderedDict[tuple[int, str, str, str], list[str]] = OrderedDict()


def conflicting_files(reg: Registry, repo: Repo, d: Discussion) -> list[str]:
    """The paths that would conflict if ``d`` were merged now (empty for merged or closed PRs).

    Every view of an open PR asks this, and the answer needs three whole trees; commits are immutable,
    so it is remembered per (base, target head, PR head) and recomputed only once either head moves."""
    if not d.is_pull_request or d.status not in {"open", "draft"}:
        return []
    try:
        heads = _heads(reg, repo, d)
    except DiscussionStateError:
        return []
    key = (repo.id, *heads)
    with _conflicts_lock:
        known = _conflicts.get(key)
        if known is not None:
            _conflicts.move_to_end(key)
            return list(known)
    found = _merge_of(reg, *heads)[1]
    with _conflicts_lock:
        _conflicts[key] = found
        while len(_conflicts) > CONFLICT_CACHE_SIZE:
            _conflicts.popitem(last=False)
    return list(found)


def merge_pull_request(
    reg: Registry, repo: Repo, who: Principal | None, d: Discussion, comment: str | None = None
) -> Commit:
    """Merge ``d`` into its target as one commit; only the repo's writers may.

    The merge commit's transaction checks (and locks) ``refs/pr/N`` against the PR head the merge was
    computed from: a push landing in between makes the merge start over, so it is never lost."""
    user = acting_user(who, repo)
    if not _writer(user, repo):
        raise PermissionDeniedError(f"only the writers of {repo.repo_id} may merge pull requests")
    if not d.is_pull_request:
        raise UsageError(f"#{d.num} is a discussion, not a pull request")
    if d.status not in {"open", "draft"}:
        raise DiscussionStateError(d.num, d.status, "merge")

    for _ in range(MERGE_ATTEMPTS):
        base, target_head, pr_head = _heads(reg, repo, d)
        ops, conflicts = _merge_of(reg, base, target_head, pr_head)
        if conflicts:
            raise MergeConflictError(d.num, conflicts)
        assert d.target_branch is not None

        def then(conn: Connection, commit_id: str, pr_head: str = pr_head) -> None:
            reg.discussions.record_merge(conn, d, user.user.name, commit_id, pr_head)

        try:
            done = reg.commit(
                repo,
                d.target_branch,
                ops,
                title=f"Merge pull request #{d.num}: {d.title}",
                message=f"Merged {d.ref} by {d.author}",
                author=user.user.name,
                parent=target_head,
                then=then,
            )
        except (StaleParentError, PullRequestMovedError):
            continue  # the target or the PR moved: merge again from their new heads
        if comment:  # only once merged: a refused merge leaves the thread as it was
            reg.discussions.comment(d, user.user.name, comment)
        reg.audit.record(
            user.user.name,
            "pr.merge",
            repo=repo,
            target=d.ref,
            detail={"commit": done.id, "into": d.target_branch},
        )
        return done
    raise ConflictError(f"{d.target_branch} or {d.ref} kept moving while merging #{d.num}; retry")


def may_change(who: Principal | None, repo: Repo, d: Discussion) -> Principal:
    """Closing, reopening and renaming: the author or the repo's writers."""
    user = acting_user(who, repo)
    if not may_moderate(user, repo, d):
        raise PermissionDeniedError(f"only the author of #{d.num} and the repo's writers may change it")
    return user


def may_hide(who: Principal | None, repo: Repo, comment_author: str) -> Principal:
    """Hiding erases every version of a comment for good: its own author and the repo's writers may; the
    thread's author may not erase anybody else's words (the owner's reply included)."""
    user = acting_user(who, repo)
    if user.user.name != comment_author and not _writer(user, repo):
        raise PermissionDeniedError("only a comment's author and the repo's writers may hide it")
    return user


def set_status(
    reg: Registry, repo: Repo, who: Principal | None, d: Discussion, status: str, comment: str | None = None
) -> Event:
    """Close or reopen ``d`` (its author or the repo's writers), recorded in the audit log."""
    user = may_change(who, repo, d)
    event = reg.discussions.set_status(d, user.user.name, status, comment)
    reg.audit.record(user.user.name, "discussion.status", repo=repo, target=f"#{d.num}", detail=event.data)
    return event
