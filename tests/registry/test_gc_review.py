"""Hostile review of ``cairn admin gc`` (:mod:`cairn.registry.gc`) on a real SQLite registry: what may it
delete that something still needs? Tests marked ``xfail(strict=True)`` reproduce an open bug (a fix
flips them); the others pin down what the review found right."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_testing import make_user
from sqlalchemy import update

from cairn.meta import blobs
from cairn.registry import AddFile, DeleteFile, Registry
from cairn.registry.gc import DEFAULT_GRACE_S
from cairn.registry.pulls import commit_to_pull_request, open_pull_request
from cairn.registry.trust import QuarantinedFileError, TrustPolicy

HOUR_US = 3600 * 1_000_000


def _age_all(reg: Registry, hours: int = 48) -> None:
    """Every blob row ``hours`` older: the tests cannot wait out a real grace period."""
    with reg.db.write() as conn:
        conn.execute(update(blobs).values(created_at=blobs.c.created_at - hours * HOUR_US))


def _gc(reg: Registry) -> list[str]:
    return reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True).oids


def test_a_fresh_upload_of_old_orphaned_bytes_is_kept_for_its_commit(reg: Registry) -> None:
    """The grace period is what keeps an upload waiting for its commit safe (gc.py's docstring). But
    ``ingest_blob`` on bytes whose row already exists only grants the repo and keeps the row's old
    ``created_at``: bytes once uploaded to a since-deleted repo (or never committed) and uploaded again a
    moment ago look 48 h old and unreferenced, so the next gc deletes them between the new upload and
    its commit. The client saw its upload succeed and then gets MissingBlobError; the same happens to
    anyone re-uploading a popular file (a shared tokenizer, a base model's weights) after the last repo
    holding it went away."""
    alice = make_user(reg, "alice")
    gone = reg.repos.create(alice, "model", "alice", "gone", private=False)
    data = b"weights once uploaded to a repo that was deleted" * 20
    first = reg.ingest_bytes(data, repo_id=gone.id)
    reg.commit(gone, "main", [AddFile("w.bin", first.sha256)], title="add", author="alice")
    reg.repos.delete(alice, "model", "alice", "gone")
    _age_all(reg)

    fresh = reg.repos.create(alice, "model", "alice", "fresh", private=False)
    again = reg.ingest_bytes(data, repo_id=fresh.id)  # uploaded just now; the commit follows
    assert again.sha256 not in _gc(reg)
    reg.commit(fresh, "main", [AddFile("w.bin", again.sha256)], title="add", author="alice")
    assert b"".join(reg.iter_blob(again.sha256)) == data


def test_repo_creation_racing_gc_on_the_gitattributes_blob(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every repo starts with the same ``.gitattributes`` blob. When the last repo holding it is gone
    and its row is old, ``create`` ingests it (finding the old row: nothing refreshed), and
    ``initial_commit`` then reads the row with a plain ``.one()``: no ``FOR SHARE``, no re-check. A gc
    that runs between the two (forced here by running it at that point) deletes the row and the object,
    and repo creation dies with SQLAlchemy's ``NoResultFound`` (a 500, not a typed error) or, on a
    backend where the read races the other way, commits a file whose bytes are gone."""
    alice = make_user(reg, "alice")
    reg.repos.create(alice, "model", "alice", "first", private=False)
    reg.repos.delete(alice, "model", "alice", "first")
    _age_all(reg)

    real = reg.commits.initial_commit

    def gc_then_commit(*args: object, **kwargs: object) -> object:
        _gc(reg)  # the collector's turn comes between the ingest and the initial commit
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reg.commits, "initial_commit", gc_then_commit)
    repo = reg.repos.create(alice, "model", "alice", "second", private=False)
    head, _ = reg.commits.resolve(repo, "main")
    (entry,) = reg.commits.files(head)
    assert reg.store.exists(entry.sha256)


def test_blobs_only_a_pull_request_holds_are_kept(reg: Registry) -> None:
    """A file committed only to a PR ref (never merged) is named by the PR's commit: gc keeps it."""
    alice, bob = make_user(reg, "alice"), make_user(reg, "bob")
    repo = reg.repos.create(alice, "model", "alice", "pr", private=False)
    pr = open_pull_request(reg, repo, bob, "bob's file", None)
    blob = reg.ingest_bytes(b"only on refs/pr/1" * 30, repo_id=repo.id)
    commit_to_pull_request(reg, repo, bob, pr, [AddFile("pr.bin", blob.sha256)], title="add")
    _age_all(reg)
    assert blob.sha256 not in _gc(reg)
    assert reg.store.exists(blob.sha256)


def test_blobs_of_tags_deleted_branches_and_history_are_kept(reg: Registry) -> None:
    """Bytes named only by a tag's commit, by a deleted branch's commits, or by history behind ``main``
    stay: commits are never deleted while their repo lives."""
    alice = make_user(reg, "alice")
    repo = reg.repos.create(alice, "model", "alice", "hist", private=False)
    tagged = reg.ingest_bytes(b"tagged then removed" * 30, repo_id=repo.id)
    branch_only = reg.ingest_bytes(b"on a branch that was deleted" * 30, repo_id=repo.id)
    c1 = reg.commit(repo, "main", [AddFile("t.bin", tagged.sha256)], title="t", author="alice")
    reg.commits.create_ref(repo, "tag", "v1", c1.id)
    reg.commit(repo, "main", [DeleteFile("t.bin")], title="rm", author="alice")
    reg.commits.create_ref(repo, "branch", "dev", c1.id)
    reg.commit(repo, "dev", [AddFile("b.bin", branch_only.sha256)], title="b", author="alice")
    reg.commits.delete_ref(repo, "branch", "dev")
    _age_all(reg)
    collected = _gc(reg)
    assert tagged.sha256 not in collected and branch_only.sha256 not in collected
    assert reg.store.exists(tagged.sha256) and reg.store.exists(branch_only.sha256)


def test_quarantined_blobs_keep_their_bytes_scan_and_release(tmp_path: Path) -> None:
    """A quarantined file is still named by its commit: gc keeps its bytes, its scan result (so it
    stays quarantined) and an admin's release of it."""
    reg = Registry.open(
        f"sqlite:///{tmp_path / 'q.db'}", str(tmp_path / "qblobs"), trust=TrustPolicy(on_unsafe="quarantine")
    )
    try:
        alice = make_user(reg, "alice")
        repo = reg.repos.create(alice, "model", "alice", "q", private=False)
        other = reg.repos.create(alice, "model", "alice", "q2", private=False)
        evil = reg.ingest_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.", repo_id=repo.id)
        reg.ingest_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.", repo_id=other.id)
        c = reg.commit(repo, "main", [AddFile("evil.pkl", evil.sha256)], title="e", author="alice")
        reg.commit(other, "main", [AddFile("evil.pkl", evil.sha256)], title="e", author="alice")
        reg.trust.release(repo, evil.sha256, by="admin")
        _age_all(reg)
        assert evil.sha256 not in _gc(reg)
        (entry,) = [e for e in reg.commits.files(c.id) if e.path == "evil.pkl"]
        assert reg.trust.file_status([entry])["evil.pkl"][0] != "safe"
        reg.trust.check_download(repo, entry)  # still released here
        with pytest.raises(QuarantinedFileError):
            reg.trust.check_download(other, entry)  # and still quarantined elsewhere
        assert reg.store.exists(evil.sha256)
    finally:
        reg.close()
