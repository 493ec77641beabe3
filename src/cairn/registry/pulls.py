"""Pull requests: opening one (with its ref ``refs/pr/N``), committing to it, and merging it.

Every commit here is an ordinary :meth:`Registry.commit`, so PR commits and merge commits pass the same
trust hooks (scan, signature, license check) as any other commit; the PR's own rows (commit event, merged
status) are written inside that commit's transaction, so a PR is never marked merged without its merge
commit, nor merged twice.

Merging is a file-level three-way merge of the PR's head onto the target's current head against the PR's
base (the target's head when the PR was opened): a path changed on one side only takes that side; a
path changed on both sides to different contents is a conflict. If the target moves while the merge
commit is written, the compare-and-swap fails and the merge is recomputed on the new head, so no
concurrent commit to the target is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from cairn.errors import ConflictError, PermissionDeniedError, UsageError
from cairn.registry.discussions import Discussion, DiscussionStateError, Event, may_moderate
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
    "merge_pull_request",
    "open_pull_request",
    "set_status",
    "three_way",
]

MERGE_ATTEMPTS = 5


class MergeConflictError(ConflictError):
    """Both the PR and the target changed these paths to different contents since the PR's base."""

    code = "merge_conflict"

    def __init__(self, num: int, files: Sequence[str]) -> None:
        shown = ", ".join(files[:20]) + (" ..." if len(files) > 20 else "")
        super().__init__(f"pull request #{num} conflicts with its target on: {shown}")
        self.num = num
        self.files = tuple(files)


def acting_user(who: Principal | None) -> Principal:
    """The caller, who must hold a token that may write (discussions are writes, even by readers)."""
    if who is None:
        from cairn.registry.errors import UnauthenticatedError

        raise UnauthenticatedError("You must be authenticated to do this: send a write token")
    if not who.can_write:
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
    user = acting_user(who)
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
    user = acting_user(who)
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
    """(operations that turn ``ours`` into the merge, conflicting paths). Contents compare by sha256."""

    def key(e: FileEntry | None) -> str | None:
        return None if e is None else e.sha256

    ops: list[Operation] = []
    conflicts: list[str] = []
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
        else:
            ops.append(AddFile(path, entry.sha256, size=entry.size, lfs=entry.lfs))
    return ops, conflicts


def _trees(
    reg: Registry, repo: Repo, d: Discussion
) -> tuple[str, dict[str, FileEntry], dict[str, FileEntry], dict[str, FileEntry]]:
    if d.target_branch is None or d.base_commit is None:
        raise UsageError(f"#{d.num} is not a pull request")
    try:
        target_head = reg.commits.branch_head(repo, d.target_branch)
    except RevisionNotFoundError:
        raise DiscussionStateError(
            d.num, f"targeting the deleted branch {d.target_branch!r}", "merge"
        ) from None
    pr_head, _ = reg.commits.resolve(repo, d.ref)

    def tree(commit: str) -> dict[str, FileEntry]:
        return {e.path: e for e in reg.commits.files(commit)}

    return target_head, tree(d.base_commit), tree(target_head), tree(pr_head)


def conflicting_files(reg: Registry, repo: Repo, d: Discussion) -> list[str]:
    """The paths that would conflict if ``d`` were merged now (empty for merged or closed PRs)."""
    if not d.is_pull_request or d.status not in {"open", "draft"}:
        return []
    try:
        _, base, ours, theirs = _trees(reg, repo, d)
    except DiscussionStateError:
        return []
    return three_way(base, ours, theirs)[1]


def merge_pull_request(
    reg: Registry, repo: Repo, who: Principal | None, d: Discussion, comment: str | None = None
) -> Commit:
    """Merge ``d`` into its target as one commit; only the repo's writers may."""
    user = acting_user(who)
    if not _writer(user, repo):
        raise PermissionDeniedError(f"only the writers of {repo.repo_id} may merge pull requests")
    if not d.is_pull_request:
        raise UsageError(f"#{d.num} is a discussion, not a pull request")
    if d.status not in {"open", "draft"}:
        raise DiscussionStateError(d.num, d.status, "merge")

    def then(conn: Connection, commit_id: str) -> None:
        reg.discussions.record_merge(conn, d, user.user.name, commit_id)

    for _ in range(MERGE_ATTEMPTS):
        target_head, base, ours, theirs = _trees(reg, repo, d)
        ops, conflicts = three_way(base, ours, theirs)
        if conflicts:
            raise MergeConflictError(d.num, conflicts)
        assert d.target_branch is not None
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
        except StaleParentError:
            continue  # the target moved: merge again onto its new head
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
    raise ConflictError(f"{d.target_branch} kept moving while merging #{d.num}; retry")


def may_change(who: Principal | None, repo: Repo, d: Discussion) -> Principal:
    """Closing, reopening and renaming: the author or the repo's writers."""
    user = acting_user(who)
    if not may_moderate(user, repo, d):
        raise PermissionDeniedError(f"only the author of #{d.num} and the repo's writers may change it")
    return user


def set_status(
    reg: Registry, repo: Repo, who: Principal | None, d: Discussion, status: str, comment: str | None = None
) -> Event:
    """Close or reopen ``d`` (its author or the repo's writers), recorded in the audit log."""
    user = may_change(who, repo, d)
    event = reg.discussions.set_status(d, user.user.name, status, comment)
    reg.audit.record(user.user.name, "discussion.status", repo=repo, target=f"#{d.num}", detail=event.data)
    return event
