"""Discussions and pull requests with the real ``huggingface_hub`` client, over every backend pair: the
contributor flow (a non-writer opens a PR, pushes to ``refs/pr/N``, the owner merges), three-way merges
and conflicts, permissions, listing filters and hostile input."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError


def _api(hub: LiveHub, token: str | None = None) -> HfApi:
    return HfApi(endpoint=hub.url, token=token or hub.token)


def _text(api: HfApi, repo: str, path: str, revision: str = "main") -> str:
    """A fresh download (own cache: the session's cache would answer for another backend's repo)."""
    with tempfile.TemporaryDirectory() as cache:
        got = api.hf_hub_download(repo, path, revision=revision, cache_dir=cache)
        return Path(got).read_text(encoding="utf-8")


def _status(err: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert err.value.response is not None
    return err.value.response.status_code


def test_contributor_flow(hub: LiveHub, tmp_path: object) -> None:
    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-flow")
    alice.upload_file(path_or_fileobj=b"v1\n", path_in_repo="README.md", repo_id="alice/pr-flow")
    with pytest.raises(HfHubHTTPError) as err:  # bob cannot write alice's repo ...
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/pr-flow")
    assert _status(err) == 403
    # ... but may open a pull request with his change (a small file and an LFS one)
    info = bob.upload_file(
        path_or_fileobj=b"bob's notes\n",
        path_in_repo="notes.txt",
        repo_id="alice/pr-flow",
        commit_message="Add notes",
        create_pr=True,
    )
    assert info.pr_url is not None and info.pr_url.endswith("/alice/pr-flow/discussions/1")
    assert info.pr_revision == "refs/pr/1" and info.pr_num == 1
    weights = bytes(range(256)) * 64
    bob.upload_file(
        path_or_fileobj=weights,
        path_in_repo="extra.safetensors.bin",
        repo_id="alice/pr-flow",
        revision="refs/pr/1",
        commit_message="Add weights",
    )
    # main is untouched; the PR ref serves its files through every read route
    assert alice.list_repo_files("alice/pr-flow") == [".gitattributes", "README.md"]
    files = set(alice.list_repo_files("alice/pr-flow", revision="refs/pr/1"))
    assert {"notes.txt", "extra.safetensors.bin", "README.md"} <= files
    assert _text(alice, "alice/pr-flow", "notes.txt", "refs/pr/1") == "bob's notes\n"
    pr_info = alice.model_info("alice/pr-flow", revision="refs/pr/1")
    assert (
        pr_info.sha
        == alice.list_repo_refs("alice/pr-flow", include_pull_requests=True).pull_requests[0].target_commit
    )
    assert [p.path for p in alice.get_paths_info("alice/pr-flow", ["notes.txt"], revision="refs/pr/1")] == [
        "notes.txt"
    ]
    refs = alice.list_repo_refs("alice/pr-flow", include_pull_requests=True)
    assert [r.name for r in refs.pull_requests or []] == ["refs/pr/1"]
    assert [r.ref for r in refs.pull_requests or []] == ["refs/pr/1"]
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []
    # the discussion records bob's commits; alice comments, edits her comment and merges
    details = alice.get_discussion_details("alice/pr-flow", 1)
    assert details.is_pull_request and details.status == "open" and details.author == "bob"
    assert details.target_branch == "refs/heads/main" and details.conflicting_files == []
    assert [e.summary for e in details.events if e.type == "commit"] == ["Add notes", "Add weights"]
    comment = alice.comment_discussion("alice/pr-flow", 1, "Thanks! **Looks good**")
    assert comment.content == "Thanks! **Looks good**" and "<strong>" in comment.rendered
    edited = alice.edit_discussion_comment("alice/pr-flow", 1, comment.id, "Thanks, merging")
    assert edited.edited and edited.content == "Thanks, merging" and edited.number_of_edits == 2
    with pytest.raises(HfHubHTTPError) as err:  # only writers merge
        bob.merge_pull_request("alice/pr-flow", 1)
    assert _status(err) == 403
    alice.merge_pull_request("alice/pr-flow", 1, comment="merged")
    details = alice.get_discussion_details("alice/pr-flow", 1)
    assert details.status == "merged" and details.merge_commit_oid == alice.model_info("alice/pr-flow").sha
    assert _text(alice, "alice/pr-flow", "notes.txt") == "bob's notes\n"
    with tempfile.TemporaryDirectory() as cache:
        got = hf_hub_download(
            "alice/pr-flow", "extra.safetensors.bin", endpoint=hub.url, token=hub.token, cache_dir=cache
        )
        with open(got, "rb") as f:
            assert f.read() == weights
    audit = httpx.get(
        f"{hub.url}/api/models/alice/pr-flow/audit?limit=1000",
        headers={"authorization": f"Bearer {hub.token}"},
    )
    actions = [(e["actor"], e["action"], e["target"]) for e in audit.json()]
    assert ("bob", "pr.open", "refs/pr/1") in actions and ("alice", "pr.merge", "refs/pr/1") in actions
    assert ("bob", "repo.commit", "refs/pr/1") in actions
    # a merged PR takes no more pushes and cannot be merged or reopened again
    with pytest.raises(HfHubHTTPError) as err:
        bob.upload_file(
            path_or_fileobj=b"late", path_in_repo="late.txt", repo_id="alice/pr-flow", revision="refs/pr/1"
        )
    assert _status(err) == 409
    with pytest.raises(HfHubHTTPError) as err:
        alice.merge_pull_request("alice/pr-flow", 1)
    assert _status(err) == 409
    with pytest.raises(HfHubHTTPError) as err:
        bob.change_discussion_status("alice/pr-flow", 1, "open")
    assert _status(err) == 409


def test_merge_is_three_way_and_conflicts_are_listed(hub: LiveHub) -> None:
    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-merge")
    alice.create_commit(
        "alice/pr-merge",
        [CommitOperationAdd(p, p.encode()) for p in ("a.txt", "b.txt", "c.txt", "gone.txt")],
        commit_message="base",
    )
    pr = bob.create_commit(
        "alice/pr-merge",
        [
            CommitOperationAdd("a.txt", b"bob a"),
            CommitOperationAdd("new.txt", b"bob new"),
            CommitOperationDelete("gone.txt"),
        ],
        commit_message="bob's change",
        create_pr=True,
    )
    # main moves meanwhile, on other paths: the merge keeps both sides
    alice.upload_file(path_or_fileobj=b"alice b", path_in_repo="b.txt", repo_id="alice/pr-merge")
    alice.merge_pull_request("alice/pr-merge", pr.pr_num)
    files = alice.list_repo_files("alice/pr-merge")
    assert "gone.txt" not in files and "new.txt" in files
    assert _text(alice, "alice/pr-merge", "a.txt") == "bob a"
    assert _text(alice, "alice/pr-merge", "b.txt") == "alice b"
    # a second PR that changes what main also changed conflicts
    pr2 = bob.create_commit(
        "alice/pr-merge", [CommitOperationAdd("c.txt", b"bob c")], commit_message="c", create_pr=True
    )
    alice.upload_file(path_or_fileobj=b"alice c", path_in_repo="c.txt", repo_id="alice/pr-merge")
    details = alice.get_discussion_details("alice/pr-merge", pr2.pr_num)
    assert details.conflicting_files == ["c.txt"]
    head = alice.model_info("alice/pr-merge").sha
    with pytest.raises(HfHubHTTPError) as err:
        alice.merge_pull_request("alice/pr-merge", pr2.pr_num, comment="merging")
    assert _status(err) == 409 and "c.txt" in str(err.value)
    assert not [
        e for e in alice.get_discussion_details("alice/pr-merge", pr2.pr_num).events if e.type == "comment"
    ]
    assert alice.model_info("alice/pr-merge").sha == head  # nothing moved
    assert alice.get_discussion_details("alice/pr-merge", pr2.pr_num).status == "open"
    # the author fixes it on the PR branch by agreeing with main: no more conflict
    bob.upload_file(
        path_or_fileobj=b"alice c", path_in_repo="c.txt", repo_id="alice/pr-merge", revision=pr2.pr_revision
    )
    assert alice.get_discussion_details("alice/pr-merge", pr2.pr_num).conflicting_files == []
    alice.merge_pull_request("alice/pr-merge", pr2.pr_num)


def test_discussions_listing_filters_and_status(hub: LiveHub) -> None:
    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-list")
    d1 = bob.create_discussion("alice/pr-list", "A question", description="How was it trained?")
    assert not d1.is_pull_request and d1.status == "open" and d1.num == 1
    assert d1.events[0].content == "How was it trained?"
    d2 = alice.create_pull_request("alice/pr-list", "Draft change")
    assert d2.is_pull_request and d2.status == "draft" and d2.num == 2
    d3 = bob.create_discussion("alice/pr-list", "Closed soon")
    bob.change_discussion_status("alice/pr-list", d3.num, "closed", comment="never mind")

    def nums(**kw: str) -> list[int]:
        return [d.num for d in alice.get_repo_discussions("alice/pr-list", **kw)]  # type: ignore[arg-type]

    assert nums() == [3, 2, 1]
    assert nums(discussion_type="pull_request") == [2]
    assert nums(discussion_type="discussion") == [3, 1]
    assert nums(discussion_status="open") == [2, 1]
    assert nums(discussion_status="closed") == [3]
    assert nums(author="bob") == [3, 1]
    assert nums(author="bob", discussion_status="open") == [1]
    renamed = bob.rename_discussion("alice/pr-list", 1, "A better question")
    assert (renamed.old_title, renamed.new_title) == ("A question", "A better question")
    with pytest.raises(HfHubHTTPError) as err:  # bob may not rename alice's PR
        bob.rename_discussion("alice/pr-list", 2, "mine now")
    assert _status(err) == 403
    # the repo owner may close anyone's discussion; reopening a PR without commits keeps it a draft
    alice.change_discussion_status("alice/pr-list", 1, "closed")
    alice.change_discussion_status("alice/pr-list", 2, "closed")
    assert alice.change_discussion_status("alice/pr-list", 2, "open").new_status == "draft"
    details = alice.get_discussion_details("alice/pr-list", 1)
    assert [e.type for e in details.events] == ["comment", "title-change", "status-change"]
    # hiding a comment erases it
    c = bob.comment_discussion("alice/pr-list", 1, "oops, a secret")
    with pytest.warns(UserWarning):
        hidden = alice.hide_discussion_comment("alice/pr-list", 1, c.id)
    assert hidden.hidden and "secret" not in str(
        alice.get_discussion_details("alice/pr-list", 1).events[-1]._event
    )
    with pytest.raises(HfHubHTTPError) as err:  # only a comment's author edits it
        alice.edit_discussion_comment("alice/pr-list", 1, details.events[0].id, "rewritten")
    assert _status(err) == 403
    assert len(list(alice.get_repo_discussions("alice/pr-list"))) == 3


def test_private_repo_discussions_are_invisible(hub: LiveHub) -> None:
    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-private", private=True)
    alice.create_discussion("alice/pr-private", "internal")
    with pytest.raises(RepositoryNotFoundError):
        list(bob.get_repo_discussions("alice/pr-private"))
    with pytest.raises(RepositoryNotFoundError):
        bob.get_discussion_details("alice/pr-private", 1)
    with pytest.raises(RepositoryNotFoundError):
        bob.create_discussion("alice/pr-private", "let me in")
    with pytest.raises(RepositoryNotFoundError):
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/pr-private", create_pr=True)
    with pytest.raises(RepositoryNotFoundError):
        bob.comment_discussion("alice/pr-private", 1, "hi")


def test_pr_push_permissions(hub: LiveHub) -> None:
    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-perm")
    pr = alice.create_commit(
        "alice/pr-perm", [CommitOperationAdd("a.txt", b"a")], commit_message="alice's pr", create_pr=True
    )
    with pytest.raises(HfHubHTTPError) as err:  # bob is neither the PR's author nor a writer
        bob.upload_file(
            path_or_fileobj=b"b", path_in_repo="b.txt", repo_id="alice/pr-perm", revision=pr.pr_revision
        )
    assert _status(err) == 403
    bobs = bob.create_commit(
        "alice/pr-perm", [CommitOperationAdd("b.txt", b"b")], commit_message="bob's pr", create_pr=True
    )
    assert bobs.pr_num == pr.pr_num + 1
    # the repo's writers may push to anyone's PR
    alice.upload_file(
        path_or_fileobj=b"fix", path_in_repo="fix.txt", repo_id="alice/pr-perm", revision=bobs.pr_revision
    )
    with pytest.raises(HfHubHTTPError) as err:
        bob.change_discussion_status("alice/pr-perm", pr.pr_num, "closed")
    assert _status(err) == 403
    bob.change_discussion_status("alice/pr-perm", bobs.pr_num, "closed")
    with pytest.raises(HfHubHTTPError) as err:  # a closed PR takes no pushes and cannot be merged
        bob.upload_file(
            path_or_fileobj=b"c", path_in_repo="c.txt", repo_id="alice/pr-perm", revision=bobs.pr_revision
        )
    assert _status(err) == 409
    with pytest.raises(HfHubHTTPError) as err:
        alice.merge_pull_request("alice/pr-perm", bobs.pr_num)
    assert _status(err) == 409


def test_hostile_input(hub: LiveHub) -> None:
    alice = _api(hub)
    alice.create_repo("alice/pr-hostile")
    base = f"{hub.url}/api/models/alice/pr-hostile/discussions"
    auth = {"authorization": f"Bearer {hub.token}"}

    def post(path: str, body: object) -> httpx.Response:
        return httpx.post(base + path, json=body, headers=auth)

    for title in ("x" * 201, "ab", "", 7, "bad\ntitle"):
        r = post("", {"title": title, "description": "d"})
        assert r.status_code in {400, 413} and r.json()["code"] in {"usage", "limit_exceeded"}, title
    assert post("", {"title": "fine", "description": "y" * 70_000}).status_code == 413
    assert post("", {"title": "fine", "description": "ok"}).status_code == 200
    assert post("/1/comment", {"comment": "z" * 70_000}).status_code == 413
    assert post("/1/comment", {"comment": "   "}).status_code == 400
    assert post("/1/comment", {"comment": ["list"]}).status_code == 400
    for bad in ("0", "-1", "abc", "1e3", "99999999999", "٣"):
        r = httpx.get(f"{base}/{bad}", headers=auth)
        assert r.status_code == 400, bad
        assert "error" in r.json()
    r = httpx.get(f"{base}/42", headers=auth)
    assert r.status_code == 404 and r.json()["code"] == "discussion_not_found"
    assert post("/1/merge", None).status_code == 400  # a discussion is not a pull request
    assert post("/1/comment/zz/edit", {"content": "x"}).status_code == 404
    assert post("/1/comment/" + "0" * 24 + "/edit", {"content": "x"}).status_code == 404
    assert post("/1/status", {"status": "merged"}).status_code == 400
    assert post("/1/frobnicate", {}).status_code == 404
    assert httpx.get(f"{base}?type=weird", headers=auth).status_code == 400
    # commits to bad PR refs: refs/pr/0, non-numeric, a PR that does not exist
    for rev in ("refs%2Fpr%2F0", "refs%2Fpr%2Fx", "refs%2Fpr%2F77"):
        body = b'{"key": "header", "value": {"summary": "s"}}\n'
        r = httpx.post(f"{hub.url}/api/models/alice/pr-hostile/commit/{rev}", content=body, headers=auth)
        assert r.status_code == 404 and r.headers["x-error-code"] == "RevisionNotFound", rev
    # a commit summary that is no valid title still opens a PR (one line, at most 200 characters)
    long = alice.create_commit(
        "alice/pr-hostile",
        [CommitOperationAdd("t.txt", b"t")],
        commit_message="x" * 300,
        commit_description="line\n" * 20_000,
        create_pr=True,
    )
    assert alice.get_discussion_details("alice/pr-hostile", long.pr_num).title == "x" * 200
    tiny = alice.create_commit(
        "alice/pr-hostile", [CommitOperationAdd("u.txt", b"u")], commit_message="a\nb", create_pr=True
    )
    assert alice.get_discussion_details("alice/pr-hostile", tiny.pr_num).title == "a b"
    # anonymous callers read but do not write
    assert httpx.get(base).status_code == 200
    assert httpx.post(base, json={"title": "anon", "description": "x"}).status_code == 401


def test_create_pr_from_parent_commit_and_failed_first_commit(hub: LiveHub) -> None:
    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-parent")
    first = alice.upload_file(path_or_fileobj=b"1", path_in_repo="v.txt", repo_id="alice/pr-parent")
    alice.upload_file(path_or_fileobj=b"2", path_in_repo="v.txt", repo_id="alice/pr-parent")
    pr = bob.create_commit(
        "alice/pr-parent",
        [CommitOperationAdd("w.txt", b"w")],
        commit_message="from an old parent",
        create_pr=True,
        parent_commit=first.oid,
    )
    assert _text(alice, "alice/pr-parent", "v.txt", pr.pr_revision) == "1"
    # v.txt did not change in the PR: merging keeps main's newer version
    alice.merge_pull_request("alice/pr-parent", pr.pr_num)
    assert _text(alice, "alice/pr-parent", "v.txt") == "2"
    # a PR whose first commit is refused leaves no PR behind
    before = len(list(alice.get_repo_discussions("alice/pr-parent")))
    with pytest.raises(HfHubHTTPError):
        bob.create_commit(
            "alice/pr-parent", [CommitOperationDelete("missing.txt")], commit_message="bad", create_pr=True
        )
    assert len(list(alice.get_repo_discussions("alice/pr-parent"))) == before


def test_upload_folder_create_pr_with_lfs(hub: LiveHub, tmp_path: object) -> None:
    folder = Path(str(tmp_path)) / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 4096)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-folder")
    info = bob.upload_folder(repo_id="alice/pr-folder", folder_path=folder, create_pr=True)
    assert info.pr_revision is not None
    assert "model.safetensors" in alice.list_repo_files("alice/pr-folder", revision=info.pr_revision)
    alice.merge_pull_request("alice/pr-folder", info.pr_num)
    assert "model.safetensors" in alice.list_repo_files("alice/pr-folder")


def test_gated_repo_content_rules_apply_to_pull_requests(hub: LiveHub) -> None:
    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-gated")
    alice.upload_file(path_or_fileobj=b"secret", path_in_repo="w.txt", repo_id="alice/pr-gated")
    alice.update_repo_settings("alice/pr-gated", gated="manual")
    # the conversation is public metadata, the files are not
    d = bob.create_discussion("alice/pr-gated", "May I have access?")
    assert [x.num for x in alice.get_repo_discussions("alice/pr-gated")] == [d.num]
    with pytest.raises(HfHubHTTPError) as err:
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/pr-gated", create_pr=True)
    assert _status(err) == 403 and err.value.response.headers.get("x-error-code") == "GatedRepo"
    pr = alice.upload_file(
        path_or_fileobj=b"y", path_in_repo="y.txt", repo_id="alice/pr-gated", create_pr=True
    )
    with pytest.raises(HfHubHTTPError) as err:  # the PR's files are the repo's files
        _text(bob, "alice/pr-gated", "y.txt", pr.pr_revision)
    assert _status(err) == 403
    alice.grant_access("alice/pr-gated", "bob")
    assert _text(bob, "alice/pr-gated", "y.txt", pr.pr_revision) == "y"


def test_web_pages_list_and_show_discussions(hub: LiveHub) -> None:
    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-web")
    bob.create_discussion(
        "alice/pr-web", "<script>alert(1)</script> title", description="**bold** <b>raw</b>"
    )
    pr = bob.upload_file(path_or_fileobj=b"z", path_in_repo="z.txt", repo_id="alice/pr-web", create_pr=True)
    page = httpx.get(f"{hub.url}/alice/pr-web/discussions")
    assert page.status_code == 200
    assert "&lt;script&gt;" in page.text and "<script>alert" not in page.text
    assert f'href="/alice/pr-web/discussions/{pr.pr_num}"' in page.text
    only_prs = httpx.get(f"{hub.url}/alice/pr-web/discussions?type=pull_request&status=open").text
    assert "alert(1)" not in only_prs and "Upload z.txt" in only_prs
    thread = httpx.get(f"{hub.url}/alice/pr-web/discussions/1").text
    assert "<strong>bold</strong>" in thread and "<b>raw</b>" not in thread
    pr_page = httpx.get(f"{hub.url}/alice/pr-web/discussions/{pr.pr_num}").text
    assert "refs/pr/" in pr_page and "pushed" in pr_page
    assert httpx.get(f"{hub.url}/alice/pr-web/discussions/9").status_code == 404
    assert httpx.get(f"{hub.url}/alice/pr-web/discussions/x").status_code == 400
    assert 'href="/alice/pr-web/discussions"' in httpx.get(f"{hub.url}/alice/pr-web").text
    # the tree of the PR's ref renders like a branch
    assert "z.txt" in httpx.get(f"{hub.url}/alice/pr-web/tree/refs%2Fpr%2F{pr.pr_num}").text
    # the PR page's own link works too: the ref is one path segment, as every page writes revisions
    link = f'href="/alice/pr-web/tree/refs%2Fpr%2F{pr.pr_num}"'
    assert link in pr_page and "z.txt" in httpx.get(f"{hub.url}/alice/pr-web/tree/refs/pr/{pr.pr_num}").text


def test_read_only_token_reads_but_does_not_take_part(hub: LiveHub) -> None:
    alice = _api(hub)
    alice.create_repo("alice/pr-readonly")
    alice.create_discussion("alice/pr-readonly", "hello")
    reader = _api(hub, hub.registry.users.create_token("bob", role="read"))
    assert [d.title for d in reader.get_repo_discussions("alice/pr-readonly")] == ["hello"]
    for attempt in (
        lambda: reader.create_discussion("alice/pr-readonly", "from a read token"),
        lambda: reader.comment_discussion("alice/pr-readonly", 1, "hi"),
        lambda: reader.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/pr-readonly", create_pr=True
        ),
    ):
        with pytest.raises(HfHubHTTPError) as err:
            attempt()
        assert _status(err) == 403
    assert len(list(alice.get_repo_discussions("alice/pr-readonly"))) == 1


def test_concurrent_openings_get_distinct_numbers(hub: LiveHub) -> None:
    import concurrent.futures

    alice, bob = _api(hub), _api(hub, hub.other_token)
    alice.create_repo("alice/pr-numbers")

    def open_one(i: int) -> int:
        api = alice if i % 2 else bob
        if i % 3 == 0:
            return api.create_pull_request("alice/pr-numbers", f"pr {i}").num
        return api.create_discussion("alice/pr-numbers", f"discussion {i}").num

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        nums = list(pool.map(open_one, range(24)))
    assert sorted(nums) == list(range(1, 25))
    refs = alice.list_repo_refs("alice/pr-numbers", include_pull_requests=True).pull_requests or []
    prs = [d.num for d in alice.get_repo_discussions("alice/pr-numbers", discussion_type="pull_request")]
    assert sorted(int(r.name.rsplit("/", 1)[1]) for r in refs) == sorted(prs) and len(prs) == 8
