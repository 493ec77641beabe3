"""Reproductions from the hostile review of the pull-request / discussions merge. Each test asserts the
behaviour the docs promise; they FAIL on the reviewed code where a bug was found."""

from __future__ import annotations

import httpx
import pytest
from hub_testing import LiveHub
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from cairn.registry.models import TokenScope


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
