"""Organisations, fine-grained tokens, gated access requests and the audit log through the real
``huggingface_hub`` client and the ``cairn org|access|token`` CLI, over a live hub on each backend
(SQLite + local blobs; PostgreSQL + S3)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from hub_testing import LiveHub
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

from cairn.cli.main import main


def _api(hub: LiveHub, token: str) -> HfApi:
    return HfApi(endpoint=hub.url, token=token)


def _cli(hub: LiveHub, token: str, *argv: str) -> tuple[int, object]:
    """Run ``cairn ARGV --json`` against the hub; (exit status, parsed stdout or None)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main([*argv, "--endpoint", hub.url, "--token", token, "--json"])
    text = out.getvalue()
    return status, json.loads(text) if text.strip() else None


def _post(hub: LiveHub, token: str, path: str, body: object) -> httpx.Response:
    return httpx.post(hub.url + path, json=body, headers={"Authorization": f"Bearer {token}"})


def test_gated_repo_requests_accepted_and_rejected_with_the_hf_client(hub: LiveHub, cache_dir: Path) -> None:
    alice, bob = _api(hub, hub.token), _api(hub, hub.other_token)
    repo = "alice/acc-gated"
    alice.create_repo(repo)
    alice.upload_file(path_or_fileobj=b'{"a": 1}', path_in_repo="config.json", repo_id=repo)
    alice.update_repo_settings(repo, gated="manual")
    with pytest.raises(GatedRepoError):
        hf_hub_download(repo, "config.json", endpoint=hub.url, token=hub.other_token, cache_dir=cache_dir)
    assert bob.repo_exists(repo)  # gated: exists, files closed
    asked = _post(hub, hub.other_token, f"/api/models/{repo}/ask-access", {"fields": {"why": "eval"}})
    assert asked.status_code == 200 and asked.json() == {"status": "pending"}
    with pytest.raises(GatedRepoError, match="awaiting review"):
        hf_hub_download(repo, "config.json", endpoint=hub.url, token=hub.other_token, cache_dir=cache_dir)
    pending = list(alice.list_pending_access_requests(repo))
    assert [(r.username, r.status, r.fields) for r in pending] == [("bob", "pending", {"why": "eval"})]
    with pytest.raises(HfHubHTTPError) as denied:
        list(bob.list_pending_access_requests(repo))
    assert denied.value.response.status_code == 403
    alice.accept_access_request(repo, "bob")
    path = hf_hub_download(repo, "config.json", endpoint=hub.url, token=hub.other_token, cache_dir=cache_dir)
    assert Path(path).read_bytes() == b'{"a": 1}'
    assert [r.username for r in alice.list_accepted_access_requests(repo)] == ["bob"]
    alice.reject_access_request(repo, "bob", rejection_reason="not now")
    with pytest.raises(GatedRepoError, match="rejected"):
        bob.list_repo_tree(repo).__next__()
    assert [r.username for r in alice.list_rejected_access_requests(repo)] == ["bob"]
    # asking again does not undo a decision
    again = _post(hub, hub.other_token, f"/api/models/{repo}/ask-access", {})
    assert again.json() == {"status": "rejected"}
    alice.grant_access(repo, "bob")
    assert [e.path for e in bob.list_repo_tree(repo)] == [".gitattributes", "config.json"]
    actions = [
        e["action"]
        for e in httpx.get(
            f"{hub.url}/api/models/{repo}/audit?limit=10", headers={"Authorization": f"Bearer {hub.token}"}
        ).json()
    ]
    assert actions[:4] == ["access.grant", "access.reject", "access.accept", "access.request"]


def test_auto_gated_repo_accepts_requests_at_once(hub: LiveHub, cache_dir: Path) -> None:
    alice = _api(hub, hub.token)
    repo = "alice/acc-auto"
    alice.create_repo(repo)
    alice.upload_file(path_or_fileobj=b"w", path_in_repo="w.txt", repo_id=repo)
    alice.update_repo_settings(repo, gated="auto")
    status, data = _cli(hub, hub.other_token, "access", "request", repo, "--field", "org=lab")
    assert status == 0 and data == {"status": "accepted"}
    path = hf_hub_download(repo, "w.txt", endpoint=hub.url, token=hub.other_token, cache_dir=cache_dir)
    assert Path(path).read_bytes() == b"w"


def test_fine_grained_token_scope_whoami_use_and_revocation(hub: LiveHub) -> None:
    alice = _api(hub, hub.token)
    alice.create_repo("alice/acc-scoped")
    alice.create_repo("alice/acc-secret", private=True)
    made = _post(
        hub,
        hub.token,
        "/api/cairn/tokens",
        {
            "name": "ci",
            "scopes": [{"kind": "repo", "name": "alice/acc-scoped", "permission": "write"}],
            "expiresInDays": 7,
        },
    )
    assert made.status_code == 200, made.text
    scoped = _api(hub, made.json()["token"])
    who = scoped.whoami()
    token = who["auth"]["accessToken"]
    assert token["role"] == "fineGrained" and token["displayName"] == "ci" and "expiresAt" in token
    assert token["fineGrained"]["scoped"] == [
        {
            "entity": {"type": "model", "name": "alice/acc-scoped"},
            "permissions": ["repo.content.read", "repo.write"],
        }
    ]
    scoped.upload_file(path_or_fileobj=b"ok", path_in_repo="ok.txt", repo_id="alice/acc-scoped")
    with pytest.raises(RepositoryNotFoundError):
        scoped.model_info("alice/acc-secret")  # out of scope: as if it did not exist
    with pytest.raises(HfHubHTTPError) as refused:
        scoped.create_repo("alice/acc-elsewhere")
    assert refused.value.response.status_code == 403
    listed = httpx.get(f"{hub.url}/api/cairn/tokens", headers={"Authorization": f"Bearer {hub.token}"}).json()
    mine = next(t for t in listed if t["id"] == made.json()["id"])
    assert mine["lastUsedAt"] is not None and not mine["revoked"] and mine["role"] == "fineGrained"
    # a scoped token cannot mint or list tokens
    assert _post(hub, made.json()["token"], "/api/cairn/tokens", {"name": "x"}).status_code == 403
    status, revoked = _cli(hub, hub.token, "token", "revoke", str(made.json()["id"]))
    assert status == 0 and revoked["revoked"] is True
    with pytest.raises(HfHubHTTPError) as gone:
        scoped.whoami()
    assert gone.value.response.status_code == 401


def test_organisation_roles_managed_with_the_cli(hub: LiveHub) -> None:
    # a user of its own as the admin, so that other tests' users keep their list of organisations
    for name in ("acc-carol", "acc-dave"):
        hub.registry.users.create_user(name)
    carol, dave = hub.registry.users.create_token("acc-carol"), hub.registry.users.create_token("acc-dave")
    assert _cli(hub, dave, "org", "create", "acc-org") == (
        0,
        {"name": "acc-org", "members": [{"user": "acc-dave", "role": "admin"}]},
    )
    assert _cli(hub, dave, "org", "add", "acc-org", "acc-carol", "--role", "read")[0] == 0
    admin, c = _api(hub, dave), _api(hub, carol)
    admin.create_repo("acc-org/weights", private=True)
    assert c.model_info("acc-org/weights").private  # read role: sees private repos
    assert {"name": "acc-org", "roleInOrg": "read"}.items() <= c.whoami()["orgs"][0].items()
    with pytest.raises(HfHubHTTPError) as refused:
        c.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="acc-org/weights")
    assert refused.value.response.status_code == 403
    assert _cli(hub, carol, "org", "add", "acc-org", "bob")[0] == 2  # only admins manage members
    assert _cli(hub, dave, "org", "add", "acc-org", "acc-carol", "--role", "write")[0] == 0
    c.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="acc-org/weights")
    with pytest.raises(HfHubHTTPError):
        c.update_repo_settings("acc-org/weights", private=False)  # settings need admin
    status, members = _cli(hub, dave, "org", "members", "acc-org")
    assert status == 0 and [(m["user"], m["role"]) for m in members] == [
        ("acc-carol", "write"),
        ("acc-dave", "admin"),
    ]
    assert [u.username for u in admin.list_organization_members("acc-org")] == ["acc-carol", "acc-dave"]
    with pytest.raises(HfHubHTTPError) as hidden:
        list(_api(hub, hub.other_token).list_organization_members("acc-org"))
    assert hidden.value.response.status_code == 404
    assert _cli(hub, dave, "org", "remove", "acc-org", "acc-dave")[0] == 2  # the last admin stays
    assert _cli(hub, dave, "org", "add", "acc-org", "acc-dave", "--role", "read")[0] == 2
    assert _cli(hub, hub.other_token, "org", "members", "acc-org")[0] == 2  # outsiders see nothing
    assert _cli(hub, dave, "org", "remove", "acc-org", "acc-carol")[0] == 0
    with pytest.raises(RepositoryNotFoundError):
        c.model_info("acc-org/weights")
    status, page = _cli(hub, dave, "org", "audit", "acc-org", "--limit", "2")
    assert status == 0 and [e["action"] for e in page["events"]] == ["member.remove", "repo.commit"]
    status, rest = _cli(hub, dave, "org", "audit", "acc-org", "--before", str(page["next_before"]))
    assert status == 0 and rest["events"][-1]["action"] == "org.create"
    assert all(e["id"] < page["next_before"] for e in rest["events"])


def test_access_cli_lists_and_decides(hub: LiveHub) -> None:
    alice = _api(hub, hub.token)
    repo = "alice/acc-cli"
    alice.create_repo(repo)
    alice.update_repo_settings(repo, gated="manual")
    assert _cli(hub, hub.other_token, "access", "request", repo)[1] == {"status": "pending"}
    status, listed = _cli(hub, hub.token, "access", "list", repo)
    assert status == 0 and [r["user"]["user"] for r in listed] == ["bob"]
    assert _cli(hub, hub.other_token, "access", "accept", repo, "bob")[0] == 2
    assert _cli(hub, hub.token, "access", "reject", repo, "bob", "--reason", "no")[0] == 0
    status, rejected = _cli(hub, hub.token, "access", "list", repo, "--status", "rejected")
    assert rejected[0]["rejectionReason"] == "no" and rejected[0]["decidedBy"] == "alice"
    assert _cli(hub, hub.token, "access", "accept", repo, "nobody-here")[0] == 2
    status, audit = _cli(hub, hub.token, "access", "audit", repo)
    assert [e["action"] for e in audit["events"]][:2] == ["access.reject", "access.request"]
    assert _cli(hub, hub.other_token, "access", "audit", repo)[0] == 2


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/cairn/orgs", {"name": "../etc"}),
        ("/api/cairn/orgs", {"name": 5}),
        ("/api/cairn/orgs", ["not", "an", "object"]),
        ("/api/cairn/tokens", {"name": "t", "role": "root"}),
        ("/api/cairn/tokens", {"name": "t", "expiresInDays": True}),
        ("/api/cairn/tokens", {"name": "t", "expiresInDays": -1}),
        ("/api/cairn/tokens", {"name": "t", "expiresInDays": 10**9}),
        ("/api/cairn/tokens", {"name": "t", "scopes": "everything"}),
        ("/api/cairn/tokens", {"name": "t", "scopes": [{"kind": "repo", "name": "no-slash"}]}),
        ("/api/cairn/tokens", {"name": "t", "scopes": [{"kind": "galaxy", "name": "x"}]}),
        (
            "/api/cairn/tokens",
            {"name": "t", "scopes": [{"kind": "org", "name": "a b", "permission": "read"}]},
        ),
        ("/api/cairn/tokens", {"name": "t", "scopes": [{"kind": "org", "name": "alice"}] * 101}),
        ("/api/models/alice/acc-hostile/ask-access", {"fields": "x" * 10}),
        ("/api/models/alice/acc-hostile/ask-access", {"fields": {"big": "x" * 20000}}),
        ("/api/models/alice/acc-hostile/user-access-request/handle", {"user": "bob", "status": "maybe"}),
        (
            "/api/models/alice/acc-hostile/user-access-request/handle",
            {"user": "bob", "status": "pending", "rejectionReason": "x"},
        ),
        ("/api/models/alice/acc-hostile/user-access-request/bogus", {}),
    ],
)
def test_hostile_input_is_a_clean_400_and_changes_nothing(hub: LiveHub, path: str, body: object) -> None:
    api = _api(hub, hub.token)
    if not api.repo_exists("alice/acc-hostile"):
        api.create_repo("alice/acc-hostile")
        api.update_repo_settings("alice/acc-hostile", gated="manual")
    before = len(hub.registry.users.tokens_of("alice"))
    target = hub.other_token if "ask-access" in path else hub.token
    got = _post(hub, target, path, body)
    assert got.status_code == 400, got.text
    assert set(got.json()) == {"error", "code"}
    assert len(hub.registry.users.tokens_of("alice")) == before
    assert list(api.list_pending_access_requests("alice/acc-hostile")) == []
