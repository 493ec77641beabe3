"""Pull requests and discussions under hostile use (from the review of the feature): out-of-scope
fine-grained tokens, erasing others' comments, amplified reads, oversized ids, NUL and bidi input, a
push racing a merge; over every backend pair."""

from __future__ import annotations

import httpx
import pytest
from hub_testing import LiveHub
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from cairn.registry import AddFile
from cairn.registry.models import TokenScope
from cairn.registry.pulls import commit_to_pull_request, merge_pull_request, open_pull_request


def _api(hub: LiveHub, token: str | None = None) -> HfApi:
    return HfApi(endpoint=hub.url, token=token or hub.token)


def _seed(hub: LiveHub, repo: str) -> HfApi:
    alice = _api(hub)
    alice.create_repo(repo)
    alice.upload_file(path_or_fileobj=b"v1\n", path_in_repo="README.md", repo_id=repo)
    return alice


def test_scoped_token_for_another_repo_cannot_open_pr(hub: LiveHub) -> None:
    """docs/access.md: a fine-grained token acts on what its scopes cover, 'nothing elsewhere'. A token
    bob scoped (write) to his own repo must not open PRs, comment or upload on alice's repo."""
    _seed(hub, "alice/rv-scoped")
    scoped = hub.registry.users.create_token("bob", scopes=(TokenScope("repo", "bob/elsewhere", "write"),))
    api = _api(hub, scoped)
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(
            path_or_fileobj=b"sneaky\n",
            path_in_repo="x.txt",
            repo_id="alice/rv-scoped",
            create_pr=True,
        )
    assert err.value.response is not None and err.value.response.status_code == 403


def test_scoped_token_for_another_repo_cannot_comment(hub: LiveHub) -> None:
    alice = _seed(hub, "alice/rv-scoped-c")
    alice.create_discussion("alice/rv-scoped-c", "A question")
    scoped = hub.registry.users.create_token("bob", scopes=(TokenScope("repo", "bob/elsewhere", "write"),))
    with pytest.raises(HfHubHTTPError) as err:
        _api(hub, scoped).comment_discussion("alice/rv-scoped-c", 1, "spam from an out-of-scope token")
    assert err.value.response is not None and err.value.response.status_code == 403


def test_scoped_token_for_another_repo_cannot_upload_lfs_without_ref(hub: LiveHub) -> None:
    """The LFS batch with no ``ref`` (the create_pr path) accepts any write-role token that can see the
    repo, so an out-of-scope token can put blobs into alice's repo's storage."""
    _seed(hub, "alice/rv-scoped-lfs")
    scoped = hub.registry.users.create_token("bob", scopes=(TokenScope("repo", "bob/elsewhere", "write"),))
    r = httpx.post(
        f"{hub.url}/alice/rv-scoped-lfs.git/info/lfs/objects/batch",
        headers={"Authorization": f"Bearer {scoped}", "Accept": "application/vnd.git-lfs+json"},
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": "a" * 64, "size": 10}]},
    )
    assert r.status_code == 403, r.text


def test_discussion_author_cannot_erase_the_owners_comments(hub: LiveHub) -> None:
    """Hiding erases every version of a comment for good. A stranger who opened a thread can hide (erase)
    the repo owner's reply in it; on the Hub only the comment's author and the repo's writers may."""
    alice = _seed(hub, "alice/rv-hide")
    bob = _api(hub, hub.other_token)
    bob.create_discussion("alice/rv-hide", "Is this license OK?")
    reply = alice.comment_discussion("alice/rv-hide", 1, "No: this model is research-only.")
    with pytest.raises(HfHubHTTPError) as err:
        bob.hide_discussion_comment("alice/rv-hide", 1, reply.id)
    assert err.value.response is not None and err.value.response.status_code == 403
    details = alice.get_discussion_details("alice/rv-hide", 1)
    kept = [e for e in details.events if e.id == reply.id]
    assert kept and not kept[0].hidden  # type: ignore[attr-defined]


def test_discussion_author_filter_with_nul_is_a_clean_error(hub: LiveHub) -> None:
    """``?author=`` goes straight into the SQL filter; a NUL byte (which PostgreSQL text refuses) must be
    a 4xx, never a 500."""
    _seed(hub, "alice/rv-nul")
    r = httpx.get(f"{hub.url}/api/models/alice/rv-nul/discussions", params={"author": "a\x00b"})
    assert r.status_code < 500, r.text
    r = httpx.get(f"{hub.url}/alice/rv-nul/discussions/1", params={"x": "y"})
    assert r.status_code < 500, r.text


def test_one_comment_cannot_amplify_every_anonymous_read(hub: LiveHub) -> None:
    """Any write-token holder may edit their comment 100 times at 64 KiB each; every anonymous GET of the
    thread (and every web page view) then returns (and builds in memory) every version of every comment,
    with no pagination of events. Here one comment makes one anonymous GET answer > 6 MB."""
    alice = _seed(hub, "alice/rv-amp")
    bob = _api(hub, hub.other_token)
    bob.create_discussion("alice/rv-amp", "Amplify")
    event = bob.comment_discussion("alice/rv-amp", 1, "x")
    for i in range(99):  # the 100th version is the last one allowed
        bob.edit_discussion_comment("alice/rv-amp", 1, event.id, f"{i:03d}" + "y" * 65_000)
    r = httpx.get(f"{hub.url}/api/models/alice/rv-amp/discussions/1", timeout=60)
    assert r.status_code == 200
    assert len(r.content) < 1_000_000, f"one thread GET is {len(r.content)} bytes"
    assert alice is not None


def test_oversized_event_id_is_a_clean_error(hub: LiveHub) -> None:
    """Event ids are 24 hex digits on the wire (up to 2**96), parsed straight into the SQL filter: SQLite
    integers are 64-bit, so a large id must answer 404, not 500."""
    _seed(hub, "alice/rv-evid")
    bob = _api(hub, hub.other_token)
    bob.create_discussion("alice/rv-evid", "Event ids")
    r = httpx.post(
        f"{hub.url}/api/models/alice/rv-evid/discussions/1/comment/{'f' * 24}/edit",
        headers={"Authorization": f"Bearer {hub.other_token}"},
        json={"content": "edited"},
    )
    assert r.status_code == 404, r.text


def _status(err: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    assert err.value.response is not None
    return err.value.response.status_code


def test_scoped_token_reaches_no_pr_route_outside_its_scope(hub: LiveHub) -> None:
    """bob opens a PR on alice's repo with his plain token; a token scoped to his other repo may then
    neither push to it, close or rename it, nor verify uploads there, while a token whose write scope
    covers alice's repo may do all of that without making bob a writer."""
    alice = _seed(hub, "alice/rv-scoped-pr")
    bob = _api(hub, hub.other_token)
    bob.upload_file(
        path_or_fileobj=b"mine\n", path_in_repo="b.txt", repo_id="alice/rv-scoped-pr", create_pr=True
    )
    elsewhere = _api(
        hub,
        hub.registry.users.create_token("bob", scopes=(TokenScope("repo", "bob/elsewhere", "write"),)),
    )
    with pytest.raises(HfHubHTTPError) as err:
        elsewhere.upload_file(
            path_or_fileobj=b"more\n",
            path_in_repo="c.txt",
            repo_id="alice/rv-scoped-pr",
            revision="refs/pr/1",
        )
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err:
        elsewhere.change_discussion_status("alice/rv-scoped-pr", 1, "closed")
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err:
        elsewhere.rename_discussion("alice/rv-scoped-pr", 1, "Renamed from elsewhere")
    assert _status(err) == 403
    r = httpx.post(
        f"{hub.url}/api/lfs-verify/models/alice/rv-scoped-pr",
        headers={"Authorization": f"Bearer {elsewhere.token}"},
        json={"oid": "a" * 64, "size": 10},
    )
    assert r.status_code == 403, r.text
    covering = _api(
        hub,
        hub.registry.users.create_token("bob", scopes=(TokenScope("repo", "alice/rv-scoped-pr", "write"),)),
    )
    covering.upload_file(
        path_or_fileobj=b"more\n", path_in_repo="c.txt", repo_id="alice/rv-scoped-pr", revision="refs/pr/1"
    )
    covering.comment_discussion("alice/rv-scoped-pr", 1, "pushed c.txt")
    with pytest.raises(HfHubHTTPError) as err:  # the scope is write, bob is still no writer of alice's
        covering.merge_pull_request("alice/rv-scoped-pr", 1)
    assert _status(err) == 403
    assert set(alice.list_repo_files("alice/rv-scoped-pr", revision="refs/pr/1")) >= {"b.txt", "c.txt"}


def test_writers_hide_any_comment_authors_their_own(hub: LiveHub) -> None:
    alice = _seed(hub, "alice/rv-hide-ok")
    bob = _api(hub, hub.other_token)
    alice.create_discussion("alice/rv-hide-ok", "Owner's thread")
    spam = bob.comment_discussion("alice/rv-hide-ok", 1, "spam")
    regret = bob.comment_discussion("alice/rv-hide-ok", 1, "said too much")
    with pytest.warns(UserWarning):
        assert alice.hide_discussion_comment("alice/rv-hide-ok", 1, spam.id).hidden
    with pytest.warns(UserWarning):
        assert bob.hide_discussion_comment("alice/rv-hide-ok", 1, regret.id).hidden
    hidden = {e.id for e in alice.get_discussion_details("alice/rv-hide-ok", 1).events if e.hidden}  # type: ignore[attr-defined]
    assert hidden == {spam.id, regret.id}


def test_thread_events_come_in_pages(hub: LiveHub) -> None:
    from cairn.hub.discussions import EVENTS_PAGE

    _seed(hub, "alice/rv-pages")
    bob = _api(hub, hub.other_token)
    bob.create_discussion("alice/rv-pages", "Long thread")
    repo = hub.registry.repos.get("model", "alice", "rv-pages", None)
    d = hub.registry.discussions.get(repo, 1)
    opening = hub.registry.discussions.count_events(d)  # the client sends a description
    for i in range(EVENTS_PAGE + 5):
        hub.registry.discussions.comment(d, "bob", f"comment {i}")
    url = f"{hub.url}/api/models/alice/rv-pages/discussions/1"
    first, second = httpx.get(url).json(), httpx.get(url, params={"p": 1}).json()
    assert first["numEvents"] == second["numEvents"] == opening + EVENTS_PAGE + 5
    assert len(first["events"]) == EVENTS_PAGE and len(second["events"]) == opening + 5
    assert second["events"][-1]["data"]["latest"]["raw"] == f"comment {EVENTS_PAGE + 4}"
    page = httpx.get(f"{hub.url}/alice/rv-pages/discussions/1", params={"p": 1})
    assert page.status_code == 200 and f"comment {EVENTS_PAGE + 4}" in page.text
    assert "comment 0<" not in page.text


def test_edited_comment_keeps_its_version_count_not_its_old_texts(hub: LiveHub) -> None:
    _seed(hub, "alice/rv-edits")
    bob = _api(hub, hub.other_token)
    bob.create_discussion("alice/rv-edits", "Edits")
    event = bob.comment_discussion("alice/rv-edits", 1, "first words")
    bob.edit_discussion_comment("alice/rv-edits", 1, event.id, "second words")
    comment = next(e for e in bob.get_discussion_details("alice/rv-edits", 1).events if e.id == event.id)
    assert comment.content == "second words" and comment.number_of_edits == 2  # type: ignore[attr-defined]
    raw = httpx.get(f"{hub.url}/api/models/alice/rv-edits/discussions/1").text
    assert "first words" not in raw


def test_titles_with_controls_or_bidi_overrides_are_refused(hub: LiveHub) -> None:
    """A right-to-left override can make ``evil\u202etxt.exe`` read as ``evilexe.txt``; titles refuse
    it with the other bidi embeddings/isolates and every C0, DEL and C1 control. A blank title is a bad
    request (400) too, not an oversized one."""
    _seed(hub, "alice/rv-title")
    bob = _api(hub, hub.other_token)
    for title in [
        "evil\u202etxt.exe",
        "isolate\u2066me\u2069",
        "del\x7fete",
        "c1\x85control",
        "tab\there",
        "  ",
    ]:
        with pytest.raises(HfHubHTTPError) as err:
            bob.create_discussion("alice/rv-title", title)
        assert _status(err) == 400, title
    bob.create_discussion("alice/rv-title", "Plain title, accents é and emoji 🙂 fine")
    assert [d.title for d in bob.get_repo_discussions("alice/rv-title")] == [
        "Plain title, accents é and emoji 🙂 fine"
    ]


def test_push_racing_a_merge_is_never_lost(hub: LiveHub) -> None:
    """On both databases: a push to ``refs/pr/N`` that lands after the merge read the PR's head makes
    the merge start over from the new head (see tests/registry/test_pulls_hostile.py for the details)."""
    reg = hub.registry
    _seed(hub, "alice/rv-race")
    alice, bob = reg.users.authenticate(hub.token), reg.users.authenticate(hub.other_token)
    repo = reg.repos.get("model", "alice", "rv-race", None)
    pr = open_pull_request(reg, repo, bob, "Racing", None)
    first = reg.ingest_bytes(b"first", repo_id=repo.id)
    commit_to_pull_request(reg, repo, bob, pr, [AddFile("first.txt", first.sha256)], title="first")
    late = reg.ingest_bytes(b"late", repo_id=repo.id)
    real_prepare = reg.trust.prepare
    pushed: list[str] = []

    def prepare(operations):  # type: ignore[no-untyped-def]
        if not pushed and any(getattr(op, "path", "") == "first.txt" for op in operations):
            pushed.append("late")
            d = reg.discussions.get(repo, pr.num)
            commit_to_pull_request(reg, repo, bob, d, [AddFile("late.txt", late.sha256)], title="late")
        return real_prepare(operations)

    reg.trust.prepare = prepare  # type: ignore[method-assign]
    try:
        merged = merge_pull_request(reg, repo, alice, reg.discussions.get(repo, pr.num))
    finally:
        reg.trust.prepare = real_prepare  # type: ignore[method-assign]
    assert pushed == ["late"]
    assert {e.path for e in reg.commits.files(merged.id)} >= {"first.txt", "late.txt"}
    assert reg.discussions.get(repo, pr.num).merge_commit == merged.id
