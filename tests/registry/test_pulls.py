"""Pull requests in the registry on real SQLite: the three-way merge as a pure function, a merge racing
commits to its target (none may be lost), and the status machine."""

from __future__ import annotations

import threading

import pytest
from registry_testing import make_user

from cairn.registry import AddFile, Registry
from cairn.registry.discussions import DiscussionStateError
from cairn.registry.models import FileEntry
from cairn.registry.pulls import (
    MergeConflictError,
    commit_to_pull_request,
    merge_pull_request,
    open_pull_request,
    three_way,
)


def _f(path: str, sha: str) -> FileEntry:
    return FileEntry(path, sha * 64, "0" * 40, 1, False, "c" * 40)


def test_three_way_takes_each_side_and_reports_conflicts() -> None:
    base = {p: _f(p, "0") for p in ("same", "ours", "theirs", "both", "agree", "deleted", "del-conflict")}
    ours = {**base, "ours": _f("ours", "1"), "both": _f("both", "1"), "agree": _f("agree", "2")}
    ours["del-conflict"] = _f("del-conflict", "3")
    theirs = {**base, "theirs": _f("theirs", "4"), "both": _f("both", "5"), "agree": _f("agree", "2")}
    theirs["new"] = _f("new", "6")
    del theirs["deleted"], theirs["del-conflict"]
    ops, conflicts = three_way(base, ours, theirs)
    assert conflicts == ["both", "del-conflict"]
    assert sorted((type(o).__name__, o.path) for o in ops) == [
        ("AddFile", "new"),
        ("AddFile", "theirs"),
        ("DeleteFile", "deleted"),
    ]


def test_merge_racing_commits_to_the_target_loses_nothing(reg: Registry) -> None:
    alice, bob = make_user(reg, "alice"), make_user(reg, "bob")
    repo = reg.repos.create(alice, "model", "alice", "race", private=False)
    pr = open_pull_request(reg, repo, bob, "bob's file", None)
    blob = reg.ingest_bytes(b"from bob", repo_id=repo.id)
    commit_to_pull_request(
        reg, repo, bob, reg.discussions.get(repo, pr.num), [AddFile("bob.txt", blob.sha256)], title="bob"
    )
    stop = threading.Event()
    landed: list[str] = []

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 200:
            data = reg.ingest_bytes(f"alice {i}".encode(), repo_id=repo.id)
            try:
                reg.commit(repo, "main", [AddFile(f"a{i}.txt", data.sha256)], title=f"a{i}", author="alice")
                landed.append(f"a{i}.txt")
            except Exception:  # a lost compare-and-swap against the merge: that commit did not land
                pass
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(landed) < 3 and thread.is_alive():
            threading.Event().wait(0.01)
        merged = merge_pull_request(reg, repo, alice, reg.discussions.get(repo, pr.num))
    finally:
        stop.set()
        thread.join()
    final = {e.path for e in reg.commits.files(reg.commits.branch_head(repo, "main"))}
    assert "bob.txt" in final and set(landed) <= final
    assert reg.discussions.get(repo, pr.num).merge_commit == merged.id
    history = [c.id for c in reg.commits.history(repo, reg.commits.branch_head(repo, "main"), limit=1000)]
    assert merged.id in history


def test_status_machine(reg: Registry) -> None:
    alice, bob = make_user(reg, "alice"), make_user(reg, "bob")
    repo = reg.repos.create(alice, "model", "alice", "states", private=False)
    pr = open_pull_request(reg, repo, bob, "draft first", None)
    assert pr.status == "draft" and reg.commits.resolve(repo, "refs/pr/1") == (pr.base_commit, "pr")
    blob = reg.ingest_bytes(b"x", repo_id=repo.id)
    commit_to_pull_request(reg, repo, bob, pr, [AddFile("x.txt", blob.sha256)], title="x")
    assert reg.discussions.get(repo, pr.num).status == "open"
    # a conflicting change on main blocks the merge and changes nothing
    other = reg.ingest_bytes(b"y", repo_id=repo.id)
    reg.commit(repo, "main", [AddFile("x.txt", other.sha256)], title="main x", author="alice")
    with pytest.raises(MergeConflictError) as err:
        merge_pull_request(reg, repo, alice, reg.discussions.get(repo, pr.num))
    assert err.value.files == ("x.txt",)
    reg.discussions.set_status(reg.discussions.get(repo, pr.num), "bob", "closed")
    with pytest.raises(DiscussionStateError):
        merge_pull_request(reg, repo, alice, reg.discussions.get(repo, pr.num))
    with pytest.raises(DiscussionStateError):
        commit_to_pull_request(reg, repo, bob, reg.discussions.get(repo, pr.num), [], title="late")
    # reopened after a commit: open, not draft
    event = reg.discussions.set_status(reg.discussions.get(repo, pr.num), "bob", "open")
    assert event.data == {"status": "open"}
    # deleting the repo removes its discussions, their events and PR refs
    reg.repos.delete(alice, "model", "alice", "states")
    from sqlalchemy import func, select

    from cairn.meta.schema import discussion_events, discussions, refs

    with reg.db.read() as conn:
        for table in (discussions, discussion_events, refs):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
