"""Pull requests under hostile timing and trees (registry level, real SQLite): a push racing a merge,
file-vs-folder clashes, the remembered conflict list, scoped tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from registry_testing import make_user

from cairn.registry import AddFile, Registry
from cairn.registry.pulls import commit_to_pull_request, merge_pull_request, open_pull_request


def test_push_between_merge_read_and_merge_commit_is_not_lost(reg: Registry) -> None:
    """The merge reads the PR head's tree, then writes the merge commit; its transaction checks the
    PR's status but not that ``refs/pr/N`` still points where it was read. A commit the author pushes in
    between lands on the PR ref, the PR is marked merged (final), and that change is in neither main nor
    any open PR: silently lost. The interleaving is forced at the first step of the merge commit."""
    alice, bob = make_user(reg, "alice"), make_user(reg, "bob")
    repo = reg.repos.create(alice, "model", "alice", "race-pr", private=False)
    pr = open_pull_request(reg, repo, bob, "bob's files", None)
    first = reg.ingest_bytes(b"first", repo_id=repo.id)
    commit_to_pull_request(reg, repo, bob, pr, [AddFile("first.txt", first.sha256)], title="first")
    late = reg.ingest_bytes(b"late", repo_id=repo.id)

    real_prepare = reg.trust.prepare
    pushed: list[str] = []

    def prepare(operations: Sequence[Any]) -> Any:
        if not pushed and any(getattr(op, "path", "") == "first.txt" for op in operations):
            pushed.append("late")  # the merge is about to commit: bob pushes once more, first
            commit_to_pull_request(
                reg,
                repo,
                bob,
                reg.discussions.get(repo, pr.num),
                [AddFile("late.txt", late.sha256)],
                title="late",
            )
        return real_prepare(operations)

    reg.trust.prepare = prepare  # type: ignore[method-assign]
    try:
        merge_pull_request(reg, repo, alice, reg.discussions.get(repo, pr.num))
    except Exception:  # refusing the merge (the PR moved) is a correct outcome too
        assert reg.discussions.get(repo, pr.num).status == "open"
        return
    finally:
        reg.trust.prepare = real_prepare  # type: ignore[method-assign]
    assert pushed == ["late"]
    on_main = {e.path for e in reg.commits.files(reg.commits.branch_head(repo, "main"))}
    on_pr = {e.path for e in reg.commits.files(reg.commits.resolve(repo, "refs/pr/1")[0])}
    assert "late.txt" in on_pr
    assert "late.txt" in on_main, "PR marked merged but its last commit never reached main"


def test_file_against_folder_is_reported_as_a_merge_conflict(reg: Registry) -> None:
    """The PR adds file ``x`` while main added ``x/y``: the path-by-path three-way merge sees no conflict
    (``filesWithConflicts`` is empty, the UI says mergeable) yet the merge then fails with a generic
    AlreadyExistsError from the tree builder instead of a MergeConflictError naming ``x``."""
    from cairn.registry.pulls import MergeConflictError, conflicting_files

    alice, bob = make_user(reg, "alice"), make_user(reg, "bob")
    repo = reg.repos.create(alice, "model", "alice", "file-folder", private=False)
    pr = open_pull_request(reg, repo, bob, "file x", None)
    as_file = reg.ingest_bytes(b"file", repo_id=repo.id)
    commit_to_pull_request(reg, repo, bob, pr, [AddFile("x", as_file.sha256)], title="x")
    inner = reg.ingest_bytes(b"dir", repo_id=repo.id)
    reg.commit(repo, "main", [AddFile("x/y", inner.sha256)], title="x/y", author="alice")
    assert conflicting_files(reg, repo, reg.discussions.get(repo, pr.num)) == ["x"]
    with pytest.raises(MergeConflictError):
        merge_pull_request(reg, repo, alice, reg.discussions.get(repo, pr.num))


def test_three_way_reports_a_file_where_the_other_side_has_a_folder() -> None:
    from cairn.registry.models import FileEntry
    from cairn.registry.pulls import three_way

    def entry(path: str, sha: str) -> FileEntry:
        return FileEntry(path, sha * 64, sha * 40, 1, False, "0" * 40)

    base = {"keep": entry("keep", "a")}
    ours = {**base, "a/b/c": entry("a/b/c", "b")}  # the target made a folder a/b ...
    theirs = {**base, "a/b": entry("a/b", "c"), "other": entry("other", "d")}  # ... the PR a file a/b
    _, conflicts = three_way(base, ours, theirs)
    assert conflicts == ["a/b"]
    _, none = three_way(base, ours, {**base, "a/bc": entry("a/bc", "c")})  # a sibling, not a clash
    assert none == []


def test_conflict_list_follows_both_heads(reg: Registry) -> None:
    """The conflict list is remembered per (base, target head, PR head): a new commit on either side
    gives a fresh answer."""
    from cairn.registry.pulls import conflicting_files

    alice, bob = make_user(reg, "alice"), make_user(reg, "bob")
    repo = reg.repos.create(alice, "model", "alice", "cached", private=False)
    pr = open_pull_request(reg, repo, bob, "edit a", None)
    one, two, three = (reg.ingest_bytes(x, repo_id=repo.id) for x in (b"1", b"2", b"3"))
    commit_to_pull_request(reg, repo, bob, pr, [AddFile("a.txt", one.sha256)], title="a")
    assert conflicting_files(reg, repo, reg.discussions.get(repo, pr.num)) == []
    reg.commit(repo, "main", [AddFile("a.txt", two.sha256)], title="a on main", author="alice")
    assert conflicting_files(reg, repo, reg.discussions.get(repo, pr.num)) == ["a.txt"]
    d = reg.discussions.get(repo, pr.num)
    commit_to_pull_request(reg, repo, bob, d, [AddFile("a.txt", two.sha256)], title="agree")
    assert conflicting_files(reg, repo, reg.discussions.get(repo, pr.num)) == []
    reg.commit(repo, "main", [AddFile("a.txt", three.sha256)], title="again", author="alice")
    assert conflicting_files(reg, repo, reg.discussions.get(repo, pr.num)) == ["a.txt"]


def test_scoped_token_acts_only_where_a_write_scope_covers(reg: Registry) -> None:
    from cairn.errors import PermissionDeniedError
    from cairn.registry.models import TokenScope
    from cairn.registry.pulls import acting_user

    alice = make_user(reg, "alice")
    reg.users.create_user("bob")
    repo = reg.repos.create(alice, "model", "alice", "scoped", private=False)
    elsewhere = reg.users.authenticate(
        reg.users.create_token("bob", scopes=(TokenScope("repo", "bob/other", "write"),))
    )
    reading = reg.users.authenticate(
        reg.users.create_token("bob", scopes=(TokenScope("repo", "alice/scoped", "read"),))
    )
    covering = reg.users.authenticate(
        reg.users.create_token("bob", scopes=(TokenScope("repo", "alice/scoped", "write"),))
    )
    for token in (elsewhere, reading):
        with pytest.raises(PermissionDeniedError):
            open_pull_request(reg, repo, token, "not from here", None)
    assert acting_user(covering, repo) is covering
    assert open_pull_request(reg, repo, covering, "from a covering scope", None).num == 1
