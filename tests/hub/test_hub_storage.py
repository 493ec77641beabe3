"""Storage management with the real client against the real hub, on both backends: squashing a branch's
history (``super_squash_history``), listing a repo's LFS objects (``list_lfs_files``) and deleting them for
good (``permanently_delete_lfs_files``), each followed by the garbage collector, which must free exactly
the bytes nothing needs any more and none that a tag, another branch, a pull request or another repo
still names."""

from __future__ import annotations

import hashlib
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, RevisionNotFoundError
from sqlalchemy import update

from cairn.meta import blobs
from cairn.registry import Registry, TokenScope
from cairn.registry.errors import RevisionNotFoundError as RegistryRevisionNotFound
from cairn.registry.gc import DEFAULT_GRACE_S

HOUR_US = 3600 * 1_000_000


def _name(stem: str) -> str:
    return f"alice/{stem}-{uuid.uuid4().hex[:8]}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blob(label: str) -> bytes:
    """Distinct content per test run (the session's hub is shared by every test module)."""
    return f"{label} {uuid.uuid4().hex} ".encode() * 64


def _age(reg: Registry, *shas: str) -> None:
    """Make blob rows two days old: the tests cannot wait out the real grace period."""
    with reg.db.write() as conn:
        conn.execute(
            update(blobs).where(blobs.c.sha256.in_(shas)).values(created_at=blobs.c.created_at - 48 * HOUR_US)
        )


def _collected(reg: Registry, ours: set[str]) -> set[str]:
    """Run the collector for real and return which of ``ours`` it deleted (other modules' garbage in the
    shared hub may go too; only our objects are judged)."""
    report = reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True)
    gone = {sha for sha in ours if sha in report.oids}
    for sha in ours:
        assert reg.store.exists(sha) == (sha not in gone), sha
    return gone


def _download(hub: LiveHub, repo: str, path: str, cache: Path, revision: str | None = None) -> bytes:
    return Path(
        hf_hub_download(repo, path, revision=revision, cache_dir=cache, endpoint=hub.url, token=hub.token)
    ).read_bytes()


def _client(hub: LiveHub, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"authorization": f"Bearer {token or hub.token}"})


# -- super-squash -------------------------------------------------------------------------------------
def test_squash_keeps_the_tree_and_gc_frees_only_what_the_squashed_commits_held(
    hub: LiveHub, cache_dir: Path
) -> None:
    reg, api = hub.registry, HfApi(endpoint=hub.url, token=hub.token)
    repo, other = _name("squash"), _name("squash-other")
    data = {k: _blob(k) for k in ("A", "B", "C", "D", "E", "K", "S", "F", "P")}
    sha = {k: _sha(v) for k, v in data.items()}
    api.create_repo(repo)
    api.create_repo(other)
    api.upload_file(path_or_fileobj=data["S"], path_in_repo="s.bin", repo_id=other)

    def put(*ops: CommitOperationAdd | CommitOperationDelete, revision: str = "main") -> str:
        return api.create_commit(repo, list(ops), commit_message="step", revision=revision).oid

    put(CommitOperationAdd("ckpt.bin", data["A"]), CommitOperationAdd("keep.bin", data["K"]))
    c2 = put(CommitOperationAdd("ckpt.bin", data["B"]))
    api.create_tag(repo, tag="v-b", revision=c2)
    api.create_branch(repo, branch="side", revision=c2)
    put(CommitOperationAdd("side.bin", data["F"]), revision="side")
    api.create_commit(  # a pull request based on c2: its ref keeps c2's history
        repo, [CommitOperationAdd("pr.bin", data["P"])], commit_message="pr", create_pr=True, parent_commit=c2
    )
    c3 = put(CommitOperationAdd("ckpt.bin", data["C"]))
    c4 = put(CommitOperationAdd("ckpt.bin", data["D"]), CommitOperationAdd("s.bin", data["S"]))
    put(CommitOperationAdd("ckpt.bin", data["E"]), CommitOperationDelete("s.bin"))
    before = {f: _download(hub, repo, f, cache_dir) for f in api.list_repo_files(repo)}
    side_history = [c.commit_id for c in api.list_repo_commits(repo, revision="side")]

    api.super_squash_history(repo, branch="main", commit_message="Squash the checkpoints\n\nkeep the last")

    history = api.list_repo_commits(repo)
    assert len(history) == 1
    assert history[0].title == "Squash the checkpoints" and history[0].authors == ["alice"]
    assert sorted(api.list_repo_files(repo)) == sorted(before)
    fresh = tmp = cache_dir / "after"
    for path, content in before.items():
        assert _download(hub, repo, path, fresh) == content
    # the tag, the other branch and the pull request keep their history
    assert api.list_repo_refs(repo).tags[0].target_commit == c2
    assert _download(hub, repo, "ckpt.bin", tmp, revision="v-b") == data["B"]
    assert [c.commit_id for c in api.list_repo_commits(repo, revision="side")] == side_history
    assert _download(hub, repo, "pr.bin", tmp, revision="refs/pr/1") == data["P"]
    # squashed-away commits are gone, cleanly
    with _client(hub) as c:
        for old in (c3, c4):
            r = c.get(f"/{repo}/resolve/{old}/ckpt.bin")
            assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound", r.text
            assert c.get(f"/{repo}/commit/{old}").status_code == 404
            assert c.get(f"/api/models/{repo}/revision/{old}").status_code == 404
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_commits(repo, revision=c3)

    _age(reg, *sha.values())
    assert _collected(reg, set(sha.values())) == {sha["C"], sha["D"]}
    # and the repo goes on: a new commit lands on the squashed root
    api.upload_file(path_or_fileobj=b"after the squash", path_in_repo="next.txt", repo_id=repo)
    assert len(api.list_repo_commits(repo)) == 2
    assert _download(hub, repo, "ckpt.bin", cache_dir / "last") == data["E"]


def test_squash_of_a_branch_with_a_slash_leaves_other_branches_alone(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = _name("squash-slash")
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"one", path_in_repo="one.txt", repo_id=repo)
    api.create_branch(repo, branch="dev/x")
    for n in range(3):
        api.upload_file(
            path_or_fileobj=str(n).encode(), path_in_repo=f"d{n}.txt", repo_id=repo, revision="dev/x"
        )
    main_history = [c.commit_id for c in api.list_repo_commits(repo)]
    api.super_squash_history(repo, branch="dev/x")
    squashed = api.list_repo_commits(repo, revision="dev/x")
    assert len(squashed) == 1 and squashed[0].title == "Super-squash branch 'dev/x' using huggingface_hub"
    assert sorted(api.list_repo_files(repo, revision="dev/x")) == [
        ".gitattributes",
        "d0.txt",
        "d1.txt",
        "d2.txt",
        "one.txt",
    ]
    assert [c.commit_id for c in api.list_repo_commits(repo)] == main_history


def test_squash_refusals(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = _name("squash-refused")
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    api.create_tag(repo, tag="v1")
    head = api.model_info(repo).sha
    with pytest.raises(BadRequestError):
        api.super_squash_history(repo, branch="v1")
    with pytest.raises(RevisionNotFoundError):
        api.super_squash_history(repo, branch="no-such-branch")
    with pytest.raises(HfHubHTTPError) as denied:  # bob may read alice's public repo, not rewrite it
        HfApi(endpoint=hub.url, token=hub.other_token).super_squash_history(repo)
    assert denied.value.response.status_code == 403
    with _client(hub) as c:
        r = c.post(f"/api/models/{repo}/super-squash/main", json={"message": 42})
        assert r.status_code == 400 and r.json()["code"]
        r = c.post(f"/api/models/{repo}/super-squash/refs%2Fpr%2F1", json={})
        assert r.status_code == 400
    assert api.model_info(repo).sha == head and len(api.list_repo_commits(repo)) == 2


def test_a_squash_racing_commits_loses_neither(hub: LiveHub) -> None:
    """Commits and squashes take the repo's row (shared / exclusive): each commit lands either before a
    squash (which then keeps its file) or on top of it; none is refused or lost."""
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = _name("squash-race")
    api.create_repo(repo)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def commits() -> None:
        try:
            start.wait(10)
            for n in range(12):
                api.upload_file(path_or_fileobj=f"step {n}".encode(), path_in_repo=f"s{n}.txt", repo_id=repo)
        except BaseException as err:  # reported below
            errors.append(err)

    def squashes() -> None:
        try:
            start.wait(10)
            for _ in range(6):
                api.super_squash_history(repo)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=commits), threading.Thread(target=squashes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    files = set(api.list_repo_files(repo))
    assert {f"s{n}.txt" for n in range(12)} <= files
    assert len(api.list_repo_commits(repo)) <= 13


# -- LFS files ----------------------------------------------------------------------------------------
def test_list_and_permanently_delete_lfs_files_rewrites_every_ref(hub: LiveHub, cache_dir: Path) -> None:
    reg, api = hub.registry, HfApi(endpoint=hub.url, token=hub.token)
    repo, other = _name("lfs"), _name("lfs-other")
    data = {k: _blob(k) for k in ("A", "W", "A2", "X", "Q")}
    sha = {k: _sha(v) for k, v in data.items()}
    api.create_repo(repo)
    api.create_repo(other)
    api.upload_file(path_or_fileobj=data["A"], path_in_repo="copy.bin", repo_id=other)
    c1 = api.create_commit(
        repo,
        [CommitOperationAdd("a.bin", data["A"]), CommitOperationAdd("w.bin", data["W"])],
        commit_message="first",
    ).oid
    api.create_tag(repo, tag="t1", revision=c1)
    api.create_commit(
        repo,
        [CommitOperationAdd("a.bin", data["A2"]), CommitOperationAdd("x/secret.bin", data["X"])],
        commit_message="second",
    )
    api.create_commit(  # a PR that carries X (and A2) along and adds Q
        repo, [CommitOperationAdd("q.bin", data["Q"])], commit_message="pr", create_pr=True
    )
    api.create_commit(repo, [CommitOperationDelete("x/")], commit_message="drop the secret")

    listed = {f.file_oid: f for f in api.list_lfs_files(repo)}  # page size 3: paginated
    assert set(listed) == set(sha.values())
    assert listed[sha["X"]].filename == "x/secret.bin" and listed[sha["X"]].size == len(data["X"])
    assert listed[sha["X"]].ref == "refs/pr/1"  # no longer on main, still at the PR's head
    assert listed[sha["W"]].ref == "refs/heads/main" and listed[sha["A"]].ref == "refs/tags/t1"
    assert listed[sha["A"]].oid == sha["A"] and listed[sha["A"]].pushed_at is not None

    with pytest.raises(HfHubHTTPError) as denied:  # readers may not list, nor delete
        list(HfApi(endpoint=hub.url, token=hub.other_token).list_lfs_files(repo))
    assert denied.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as denied:
        HfApi(endpoint=hub.url, token=hub.other_token).permanently_delete_lfs_files(repo, [listed[sha["X"]]])
    assert denied.value.response.status_code == 403
    old_ids = {c.commit_id for c in api.list_repo_commits(repo)}

    api.permanently_delete_lfs_files(repo, [listed[sha["X"]], listed[sha["A"]]])

    assert set(f.file_oid for f in api.list_lfs_files(repo)) == {sha["W"], sha["A2"], sha["Q"]}
    new_history = api.list_repo_commits(repo)
    assert [c.title for c in new_history] == ["drop the secret", "second", "first", "initial commit"]
    assert not old_ids & {c.commit_id for c in new_history[:-1]}  # rewritten, except the initial commit
    for c in new_history:
        tree = set(api.list_repo_files(repo, revision=c.commit_id))
        assert "x/secret.bin" not in tree
        assert ("a.bin" in tree) == (c.title in {"second", "drop the secret"})
    tag = api.list_repo_refs(repo).tags[0]
    assert tag.target_commit == new_history[2].commit_id
    assert sorted(api.list_repo_files(repo, revision="t1")) == [".gitattributes", "w.bin"]
    pr_files = set(api.list_repo_files(repo, revision="refs/pr/1"))
    assert "q.bin" in pr_files and "x/secret.bin" not in pr_files
    with _client(hub) as c:
        r = c.get(f"/{repo}/resolve/{c1}/a.bin")
        assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound"
    # the pull request still merges (its base moved with the rewrite)
    api.merge_pull_request(repo, 1)
    assert _download(hub, repo, "q.bin", cache_dir) == data["Q"]

    _age(reg, *sha.values())
    assert _collected(reg, set(sha.values())) == {sha["X"]}  # A: the other repo still holds it
    assert _download(hub, other, "copy.bin", cache_dir) == data["A"]


def test_delete_without_rewrite_keeps_history_and_downloads_say_deleted(
    hub: LiveHub, cache_dir: Path
) -> None:
    reg, api = hub.registry, HfApi(endpoint=hub.url, token=hub.token)
    repo = _name("lfs-keep")
    data = _blob("U")
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=data, path_in_repo="u.bin", repo_id=repo)
    api.upload_file(path_or_fileobj=b"readme", path_in_repo="README.md", repo_id=repo)
    history = [c.commit_id for c in api.list_repo_commits(repo)]
    (entry,) = list(api.list_lfs_files(repo))
    api.permanently_delete_lfs_files(repo, [entry], rewrite_history=False)

    assert [c.commit_id for c in api.list_repo_commits(repo)] == history
    assert "u.bin" in api.list_repo_files(repo) and list(api.list_lfs_files(repo)) == []
    with _client(hub) as c:
        r = c.get(f"/{repo}/resolve/main/u.bin")
        assert r.status_code == 410 and "permanently deleted" in r.json()["error"]
        assert r.json()["code"] == "file_deleted"
        r = c.get(f"/{repo}/resolve/{history[1]}/u.bin")
        assert r.status_code == 410
    with pytest.raises(HfHubHTTPError) as gone:
        _download(hub, repo, "u.bin", cache_dir)
    assert gone.value.response.status_code == 410
    _age(reg, _sha(data))
    assert _collected(reg, {_sha(data)}) == {_sha(data)}
    # the same bytes uploaded again through the repo make the old commits whole again
    api.upload_file(path_or_fileobj=data, path_in_repo="again.bin", repo_id=repo)
    assert _download(hub, repo, "u.bin", cache_dir / "again", revision=history[1]) == data


def test_hostile_lfs_deletions_are_refused_and_change_nothing(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo, other = _name("lfs-hostile"), _name("lfs-hostile-other")
    mine, theirs = _blob("mine"), _blob("theirs")
    api.create_repo(repo)
    api.create_repo(other)
    api.upload_file(path_or_fileobj=mine, path_in_repo="m.bin", repo_id=repo)
    api.upload_file(path_or_fileobj=theirs, path_in_repo="t.bin", repo_id=other)
    head = api.model_info(repo).sha
    url = f"/api/models/{repo}/lfs-files/batch"
    cases: list[tuple[object, int, str | None]] = [
        ({"deletions": {"sha": ["not-hex"], "rewriteHistory": True}}, 400, None),
        ({"deletions": {"sha": ["A" * 64], "rewriteHistory": True}}, 400, None),  # upper case is not an oid
        ({"deletions": {"sha": [_sha(mine)] * 10_001, "rewriteHistory": True}}, 413, None),
        ({"deletions": {"sha": _sha(mine), "rewriteHistory": True}}, 400, None),
        ({"deletions": {"sha": [_sha(mine)], "rewriteHistory": "yes"}}, 400, None),
        ({"deletions": {"sha": [7], "rewriteHistory": True}}, 400, None),
        ({"deletions": [_sha(mine)]}, 400, None),
        ([], 400, None),
        (
            {"deletions": {"sha": [_sha(mine), _sha(theirs)], "rewriteHistory": True}},
            404,
            "lfs_file_not_found",
        ),
        ({"deletions": {"sha": [_sha(theirs)], "rewriteHistory": False}}, 404, "lfs_file_not_found"),
    ]
    with _client(hub) as c:
        for body, status, code in cases:
            r = c.post(url, json=body)
            assert r.status_code == status, (body if len(str(body)) < 300 else "10,001 shas", r.text)
            assert isinstance(r.json()["error"], str)
            if code is not None:
                assert r.json()["code"] == code
        r = c.post(url, content=b"{not json")
        assert r.status_code == 400
        assert c.post(f"/api/models/{repo}/lfs-files/other", json={}).status_code == 404
    assert api.model_info(repo).sha == head
    assert [f.file_oid for f in api.list_lfs_files(repo)] == [_sha(mine)]
    assert [f.file_oid for f in api.list_lfs_files(other)] == [_sha(theirs)]


def test_token_scopes_and_roles_decide_who_may_squash_and_delete(hub: LiveHub) -> None:
    users = hub.registry.users
    repo, elsewhere = _name("scoped"), _name("scoped-else")
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=_blob("scoped"), path_in_repo="w.bin", repo_id=repo)
    read_only = users.create_token("alice", role="read", name="ro")
    scoped_else = users.create_token("alice", name="else", scopes=(TokenScope("repo", elsewhere, "write"),))
    scoped_here = users.create_token("alice", name="here", scopes=(TokenScope("repo", repo, "write"),))
    listed = list(api.list_lfs_files(repo))
    for token in (read_only, scoped_else):
        other = HfApi(endpoint=hub.url, token=token)
        for method, args in (
            (other.super_squash_history, ()),
            (lambda r: list(other.list_lfs_files(r)), ()),  # noqa: B023 (called at once)
            (other.permanently_delete_lfs_files, (listed,)),
        ):
            with pytest.raises(HfHubHTTPError) as denied:
                method(repo, *args)
            assert denied.value.response.status_code == 403
    assert len(api.list_repo_commits(repo)) == 2
    HfApi(endpoint=hub.url, token=scoped_here).super_squash_history(repo)
    assert len(api.list_repo_commits(repo)) == 1


def test_refs_are_never_written_at_a_squashed_away_commit(hub: LiveHub) -> None:
    """A branch, tag or pull request resolved before a squash and created after it is refused inside its
    own transaction (the squash may have deleted the commit in between)."""
    reg, api = hub.registry, HfApi(endpoint=hub.url, token=hub.token)
    name = _name("late-ref")
    api.create_repo(name)
    api.upload_file(path_or_fileobj=b"one", path_in_repo="one.txt", repo_id=name)
    old = api.model_info(name).sha
    api.upload_file(path_or_fileobj=b"two", path_in_repo="two.txt", repo_id=name)
    api.super_squash_history(name)
    who = reg.users.authenticate(hub.token)
    repo = reg.repos.get("model", "alice", name.split("/")[1], who)
    for kind in ("branch", "tag"):
        with pytest.raises(RegistryRevisionNotFound):
            reg.commits.create_ref(repo, kind, f"late-{kind}", old)  # type: ignore[arg-type]
    with pytest.raises(RegistryRevisionNotFound):
        reg.discussions.create(
            repo, "alice", "late PR", None, pull_request=True, target_branch="main", base_commit=old
        )
    assert {r.name for r in reg.commits.refs(repo)} == {"main"}
