"""The registry's domain services on real SQLite and a real blob directory."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cairn.errors import ConflictError, PermissionDeniedError
from cairn.meta.migrate import current_revision
from cairn.registry import (
    AddFile,
    AlreadyExistsError,
    DeleteFile,
    DeleteFolder,
    EntryNotFoundError,
    InvalidNameError,
    InvalidPathError,
    MissingBlobError,
    Principal,
    Registry,
    RepoNotFoundError,
    RevisionNotFoundError,
    StaleParentError,
    UnauthenticatedError,
)
from cairn.store import BlobNotFoundError


def _alice(reg: Registry) -> Principal:
    reg.users.create_user("alice")
    return reg.users.authenticate(reg.users.create_token("alice"))


def test_migrations_reach_head_and_are_idempotent(reg: Registry) -> None:
    from cairn.meta.migrate import migrate

    assert current_revision(reg.db) == "0010_discussions"
    migrate(reg.db)
    assert current_revision(reg.db) == "0010_discussions"


def test_tokens_are_hashed_and_authenticate(reg: Registry) -> None:
    who = _alice(reg)
    assert who.user.name == "alice" and who.can_write
    read = reg.users.create_token("alice", role="read")
    assert not reg.users.authenticate(read).can_write
    with pytest.raises(UnauthenticatedError):
        reg.users.authenticate("cairn_wrong")
    dump = (Path(reg.db.engine.url.database or "")).read_bytes()
    assert read.encode() not in dump
    with pytest.raises(AlreadyExistsError):
        reg.users.create_user("alice")
    with pytest.raises(InvalidNameError):
        reg.users.create_user("../etc")


def test_repo_lifecycle_commits_and_revisions(reg: Registry) -> None:
    who = _alice(reg)
    repo = reg.repos.create(who, "model", "alice", "m1", private=False)
    head0, kind = reg.commits.resolve(repo, "main")
    assert kind == "branch" and len(head0) == 40
    assert [e.path for e in reg.commits.files(head0)] == [".gitattributes"]
    a = reg.ingest_bytes(b"hello", repo_id=repo.id)
    w = reg.ingest_bytes(b"\0" * 100, repo_id=repo.id)
    c1 = reg.commit(
        repo,
        "main",
        [AddFile("a.txt", a.sha256), AddFile("sub dir/w.safetensors", w.sha256)],
        title="add",
        author="alice",
    )
    assert c1.parent_id == head0
    entries = {e.path: e for e in reg.commits.files(c1.id)}
    assert not entries["a.txt"].lfs and entries["a.txt"].etag == a.git_sha1
    assert entries["sub dir/w.safetensors"].lfs and entries["sub dir/w.safetensors"].etag == w.sha256
    reg.commits.create_ref(repo, "tag", "v1", c1.id)
    c2 = reg.commit(repo, "main", [DeleteFile("a.txt"), DeleteFolder("sub dir/")], title="rm", author="alice")
    assert [e.path for e in reg.commits.files(c2.id)] == [".gitattributes"]
    assert reg.commits.resolve(repo, "v1") == (c1.id, "tag")
    assert reg.commits.resolve(repo, c1.id[:7]) == (c1.id, "commit")
    assert reg.commits.resolve(repo, c1.id) == (c1.id, "commit")
    with pytest.raises(RevisionNotFoundError):
        reg.commits.resolve(repo, "nope")
    assert [c.id for c in reg.commits.history(repo, c2.id)] == [c2.id, c1.id, head0]
    with pytest.raises(EntryNotFoundError) as err:
        reg.commits.file(c2.id, "a.txt")
    assert err.value.commit == c2.id


def test_bad_operations_change_nothing(reg: Registry) -> None:
    who = _alice(reg)
    repo = reg.repos.create(who, "model", "alice", "m2", private=False)
    head = reg.commits.branch_head(repo, "main")
    good = reg.ingest_bytes(b"x", repo_id=repo.id)
    for path in (
        "../etc/passwd",
        "/abs",
        "a\0b",
        "a//b",
        "a/./b",
        "a\\b",
        ".git/config",
        "",
        "a\x85b",
        "a\x9bb",
    ):
        with pytest.raises(InvalidPathError):
            reg.commit(repo, "main", [AddFile(path, good.sha256)], title="t", author="alice")
    with pytest.raises(MissingBlobError):
        reg.commit(
            repo,
            "main",
            [AddFile("ok.txt", good.sha256), AddFile("m.bin", "0" * 64)],
            title="t",
            author="alice",
        )
    with pytest.raises(EntryNotFoundError):
        reg.commit(
            repo, "main", [AddFile("ok.txt", good.sha256), DeleteFile("missing")], title="t", author="alice"
        )
    with pytest.raises(AlreadyExistsError):
        reg.commit(
            repo, "main", [AddFile("d", good.sha256), AddFile("d/e", good.sha256)], title="t", author="alice"
        )
    assert reg.commits.branch_head(repo, "main") == head
    assert len(reg.commits.history(repo, head)) == 1


def test_stale_parent_and_concurrent_commits(reg: Registry) -> None:
    who = _alice(reg)
    repo = reg.repos.create(who, "model", "alice", "race", private=False)
    base = reg.commits.branch_head(repo, "main")
    blobs = [reg.ingest_bytes(f"v{i}".encode(), repo_id=repo.id) for i in range(8)]
    results: list[object] = []

    def one(i: int) -> None:
        try:
            results.append(
                reg.commit(
                    repo,
                    "main",
                    [AddFile(f"f{i}", blobs[i].sha256)],
                    title=f"c{i}",
                    author="alice",
                    parent=base,
                )
            )
        except ConflictError as err:
            results.append(err)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if not isinstance(r, ConflictError)]
    assert len(wins) == 1
    assert all(isinstance(r, StaleParentError) for r in results if r not in wins)
    head = reg.commits.branch_head(repo, "main")
    assert len(reg.commits.history(repo, head)) == 2


def test_private_repos_are_invisible_and_writes_need_the_owner(reg: Registry) -> None:
    alice = _alice(reg)
    reg.users.create_user("bob")
    bob = reg.users.authenticate(reg.users.create_token("bob"))
    reg.repos.create(alice, "model", "alice", "secret", private=True)
    reg.repos.create(alice, "model", "alice", "open-bert", private=False)
    for who in (None, bob):
        with pytest.raises(RepoNotFoundError):
            reg.repos.get("model", "alice", "secret", who)
    assert reg.repos.get("model", "alice", "secret", alice).private
    with pytest.raises(PermissionDeniedError):
        reg.repos.get("model", "alice", "open-bert", bob, write=True)
    with pytest.raises(UnauthenticatedError):
        reg.repos.create(None, "model", "alice", "x", private=False)
    with pytest.raises(AlreadyExistsError):
        reg.repos.create(alice, "model", "alice", "secret", private=False)
    assert [r.name for r in reg.repos.list("model", None)] == ["open-bert"]
    assert {r.name for r in reg.repos.list("model", alice)} == {"open-bert", "secret"}
    assert [r.name for r in reg.repos.list("model", alice, search="BERT")] == ["open-bert"]
    assert reg.repos.list("model", alice, search="%") == []


def test_card_tags_are_derived_on_main(reg: Registry) -> None:
    who = _alice(reg)
    repo = reg.repos.create(who, "model", "alice", "carded", private=False)
    readme = reg.ingest_bytes(b"---\nlicense: mit\ntags: [tiny]\n---\n# hi\n", repo_id=repo.id)
    config = reg.ingest_bytes(b'{"model_type": "bert"}', repo_id=repo.id)
    reg.commit(
        repo,
        "main",
        [AddFile("README.md", readme.sha256), AddFile("config.json", config.sha256)],
        title="c",
        author="alice",
    )
    again = reg.repos.get("model", "alice", "carded", None)
    assert {"transformers", "bert", "tiny", "license:mit"} <= set(again.tags)
    assert [r.name for r in reg.repos.list("model", None, tags=["license:mit", "bert"])] == ["carded"]


def test_blob_store_reports_missing_blobs(reg: Registry) -> None:
    with pytest.raises(BlobNotFoundError):
        reg.store.size("f" * 64)
    info = reg.ingest_bytes(b"0123456789")
    assert b"".join(reg.iter_blob(info.sha256, 2, 5)) == b"234"


def test_history_pages_walk_only_the_chain_of_the_start_commit(reg: Registry) -> None:
    """History is the parent chain from one commit, newest first, paged by offset and limit; a sibling
    branch's commits and another repo's are never in it."""
    who = _alice(reg)
    repo = reg.repos.create(who, "model", "alice", "hist", private=False)
    other = reg.repos.create(who, "model", "alice", "hist-other", private=False)
    blob = reg.ingest_bytes(b"x", repo_id=repo.id)
    reg.ingest_bytes(b"x", repo_id=other.id)
    chain = [reg.commits.branch_head(repo, "main")]
    for i in range(30):
        chain.append(
            reg.commit(repo, "main", [AddFile(f"f{i}", blob.sha256)], title=f"c{i}", author="alice").id
        )
    reg.commits.create_ref(repo, "branch", "side", chain[10])
    side = reg.commit(repo, "side", [AddFile("side", blob.sha256)], title="side", author="alice").id
    reg.commit(other, "main", [AddFile("o", blob.sha256)], title="other", author="alice")
    newest_first = chain[::-1]
    assert [c.id for c in reg.commits.history(repo, chain[-1], limit=1000)] == newest_first
    assert [c.id for c in reg.commits.history(repo, chain[-1], offset=5, limit=7)] == newest_first[5:12]
    assert [c.id for c in reg.commits.history(repo, chain[-1], offset=29, limit=7)] == newest_first[29:]
    assert reg.commits.history(repo, chain[-1], offset=31, limit=7) == []
    assert reg.commits.history(repo, chain[-1], limit=0) == []
    assert [c.id for c in reg.commits.history(repo, side, limit=3)] == [side, chain[10], chain[9]]
    assert reg.commits.history(other, chain[-1]) == []  # a commit id of another repo starts nothing
    found = reg.commits.by_ids(repo, [chain[3], side, "f" * 40, chain[3]])
    assert set(found) == {chain[3], side} and found[side].title == "side"
