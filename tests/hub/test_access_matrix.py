"""The access matrix: every principal × every endpoint × a private, a public and a gated repo of an
organisation, asserting the exact status; and for a private repo, that a caller who may not see it gets
byte-for-byte the answer a missing repo gets (status, headers, body with the name swapped).

Driven with httpx (Starlette's TestClient) against the in-process app over a real SQLite database.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from cairn.hub import HubConfig, create_app
from cairn.meta import now_us, tokens
from cairn.registry import AddFile, Registry
from cairn.registry.models import TokenScope

PRINCIPALS = [
    "anonymous",
    "reader",
    "writer",
    "admin",
    "outsider",
    "expired",
    "revoked",
    "scoped_other",
    "read_only",
    "scoped_org",
]
REPOS = ["private", "public", "gated"]


@dataclass
class World:
    client: TestClient
    registry: Registry
    tokens: dict[str, str | None]

    def headers(self, who: str) -> dict[str, str]:
        token = self.tokens[who]
        return {} if token is None else {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("access")
    registry = Registry.open(f"sqlite:///{tmp / 'hub.db'}", str(tmp / "blobs"))
    users = registry.users
    for name in ("ada", "walt", "rita", "otto"):
        users.create_user(name)
    users.create_org("acme", ["walt"], admins=["ada"])
    users.add_member("acme", "rita", "read")
    admin = users.authenticate(users.create_token("ada"))
    for name, private in (("private", True), ("public", False), ("gated", False), ("other", True)):
        repo = registry.repos.create(admin, "model", "acme", name, private=private)
        info = registry.ingest_bytes(b'{"model_type": "bert"}', repo_id=repo.id)
        registry.commit(repo, "main", [AddFile("config.json", info.sha256)], title="config", author="ada")
    gated = registry.repos.get("model", "acme", "gated", admin)
    gated = registry.repos.update_settings(admin, gated, gated="manual")
    expired = users.create_token("ada", name="soon", expires_at=now_us() + 10**9)
    with registry.db.write() as conn:  # the clock cannot be moved: expire it in the database
        conn.execute(update(tokens).where(tokens.c.name == "soon").values(expires_at=now_us() - 1))
    revoked = users.create_token("ada", name="gone")
    users.revoke_token("ada", users.tokens_of("ada")[-1].id)
    world_tokens: dict[str, str | None] = {
        "anonymous": None,
        "reader": users.create_token("rita"),
        "writer": users.create_token("walt"),
        "admin": users.create_token("ada"),
        "outsider": users.create_token("otto"),
        "expired": expired,
        "revoked": revoked,
        "scoped_other": users.create_token("ada", scopes=(TokenScope("repo", "acme/other", "write"),)),
        "read_only": users.create_token("ada", role="read"),
        "scoped_org": users.create_token("ada", scopes=(TokenScope("org", "acme", "write"),)),
    }
    # a pending request, so that the owner's "handle" has something to decide
    registry.access.request(users.authenticate(world_tokens["outsider"] or ""), gated)
    app = create_app(registry, HubConfig(page_size=50))
    with TestClient(app) as client:
        yield World(client, registry, world_tokens)
    registry.close()


def _ndjson(path: str) -> bytes:
    lines = [
        {"key": "header", "value": {"summary": "matrix"}},
        {
            "key": "file",
            "value": {"path": path, "content": base64.b64encode(b"hi").decode(), "encoding": "base64"},
        },
    ]
    return b"\n".join(json.dumps(x).encode() for x in lines)


Call = tuple[str, str, dict[str, Any]]
R = "/api/models/acme"


def _endpoints(name: str, who: str) -> dict[str, list[Call]]:
    """endpoint -> the request(s) that exercise it on repo acme/``name`` (all must give one status)."""
    oid = hashlib.sha256(b"x").hexdigest()
    settings = {"private": {"private": True}, "public": {"private": False}, "gated": {"gated": "manual"}}
    return {
        "resolve_head": [("HEAD", f"/acme/{name}/resolve/main/config.json", {})],
        "resolve_get": [("GET", f"/acme/{name}/resolve/main/config.json", {})],
        "model_info": [("GET", f"{R}/{name}", {}), ("GET", f"{R}/{name}/revision/main", {})],
        "tree": [("GET", f"{R}/{name}/tree/main", {})],
        "paths_info": [("POST", f"{R}/{name}/paths-info/main", {"json": {"paths": ["config.json"]}})],
        "refs": [("GET", f"{R}/{name}/refs", {})],
        "web_repo": [("GET", f"/acme/{name}", {})],
        "web_file": [("GET", f"/acme/{name}/blob/main/config.json", {})],
        "auth_check": [("GET", f"{R}/{name}/auth-check", {})],
        "auth_check_write": [("GET", f"{R}/{name}/auth-check/write", {})],
        "discussions": [("GET", f"{R}/{name}/discussions", {})],
        "commits": [("GET", f"{R}/{name}/commits/main", {})],
        "preupload": [
            (
                "POST",
                f"{R}/{name}/preupload/main",
                {"json": {"files": [{"path": "a.txt", "size": 2, "sample": "aGk="}]}},
            )
        ],
        "lfs_batch": [
            (
                "POST",
                f"/acme/{name}.git/info/lfs/objects/batch",
                {
                    "json": {
                        "operation": "upload",
                        "transfers": ["basic"],
                        "ref": {"name": "main"},  # without a ref it is a pull request's upload
                        "objects": [{"oid": oid, "size": 1}],
                    }
                },
            )
        ],
        "commit": [("POST", f"{R}/{name}/commit/main", {"content": _ndjson(f"by-{who}.txt")})],
        "branch": [("POST", f"{R}/{name}/branch/b-{who}", {}), ("DELETE", f"{R}/{name}/branch/b-{who}", {})],
        "tag": [
            ("POST", f"{R}/{name}/tag/main", {"json": {"tag": f"t-{who}"}}),
            ("DELETE", f"{R}/{name}/tag/t-{who}", {}),
        ],
        "settings": [("PUT", f"{R}/{name}/settings", {"json": settings.get(name, {"private": True})})],
        "access_list": [
            ("GET", f"{R}/{name}/user-access-request/{status}", {})
            for status in ("pending", "accepted", "rejected")
        ],
        "access_handle": [
            (
                "POST",
                f"{R}/{name}/user-access-request/handle",
                {"json": {"user": "otto", "status": "pending"}},
            )
        ],
        "ask_access": [("POST", f"{R}/{name}/ask-access", {"json": {"fields": {"why": "research"}}})],
        "audit": [("GET", f"{R}/{name}/audit", {})],
    }


READS = {
    "resolve_head",
    "resolve_get",
    "model_info",
    "tree",
    "paths_info",
    "refs",
    "commits",
    "web_repo",
    "web_file",
    "auth_check",
    "discussions",
}
CONTENT = {"resolve_head", "resolve_get", "tree", "paths_info", "web_file"}
WRITES = {"preupload", "lfs_batch", "commit", "branch", "tag", "auth_check_write"}
ADMIN = {"settings", "access_list", "access_handle", "audit"}
MEMBERS = {"reader": 1, "read_only": 1, "writer": 2, "admin": 3, "scoped_org": 3}


def expected(who: str, repo: str, endpoint: str) -> int:
    if who in {"expired", "revoked"}:
        return 401  # an invalid token is refused everywhere, as on the Hub
    level = MEMBERS.get(who, 0)
    if repo == "private" and level == 0:
        return 401 if who == "anonymous" else 404  # indistinguishable from a missing repo
    if endpoint == "ask_access":
        if who == "anonymous":
            return 401
        return 200 if repo == "gated" else 400  # only gated repos take requests
    if endpoint in READS:
        if repo == "gated" and endpoint in CONTENT and level == 0:
            return 401 if who == "anonymous" else 403
        return 200
    if who == "anonymous":
        return 401
    needed = 2 if endpoint in WRITES else 3
    if level < needed:
        return 403
    if endpoint == "access_handle" and repo != "gated":
        return 400  # not a gated repo
    return 200


CASES = [(who, repo, endpoint) for who in PRINCIPALS for repo in REPOS for endpoint in _endpoints(repo, who)]


def _send(world: World, who: str, call: Call) -> Any:
    method, url, kwargs = call
    return world.client.request(method, url, headers=world.headers(who), **kwargs)


@pytest.mark.parametrize("who", PRINCIPALS)
def test_access_matrix(world: World, who: str) -> None:
    failures = []
    for repo in REPOS:
        for endpoint, calls in _endpoints(repo, who).items():
            want = expected(who, repo, endpoint)
            for call in calls:
                got = _send(world, who, call)
                if got.status_code != want:
                    failures.append(
                        f"{who} {repo} {endpoint} {call[0]} {call[1]}: {got.status_code} != {want} {got.text[:200]}"
                    )
                elif who in {"expired", "revoked"}:  # spec §1.7: no X-Error-Code, the fixed message
                    assert "x-error-code" not in got.headers
                    assert got.headers["x-error-message"] == "Invalid credentials in Authorization header"
                elif want in {401, 404} and endpoint != "ask_access" and repo == "private":
                    assert got.headers.get("x-error-code") == "RepoNotFound", (who, endpoint)
                elif want in {401, 403} and repo == "gated" and endpoint in CONTENT:
                    assert got.headers.get("x-error-code") == "GatedRepo", (who, endpoint)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("who", ["anonymous", "outsider", "scoped_other"])
def test_private_repo_answers_exactly_like_a_missing_one(world: World, who: str) -> None:
    # "missing" has as many letters as "private", so even Content-Length must agree
    for endpoint, calls in _endpoints("private", who).items():
        missing = _endpoints("missing", who)[endpoint]
        for hidden_call, missing_call in zip(calls, missing, strict=True):
            a, b = _send(world, who, hidden_call), _send(world, who, missing_call)
            assert a.status_code == b.status_code, endpoint
            strip = {"date"}
            ha = {k: v.replace("private", "missing") for k, v in a.headers.items() if k not in strip}
            hb = {k: v for k, v in b.headers.items() if k not in strip}
            assert ha == hb, endpoint
            assert a.content.replace(b"private", b"missing") == b.content, endpoint


def test_list_models_shows_private_repos_only_to_those_who_may_read_them(world: World) -> None:
    for who in PRINCIPALS:
        got = world.client.get("/api/models", params={"author": "acme"}, headers=world.headers(who))
        if who in {"expired", "revoked"}:
            assert got.status_code == 401
            continue
        assert got.status_code == 200
        ids = {m["id"] for m in got.json()}
        assert {"acme/public", "acme/gated"} <= ids
        assert ("acme/private" in ids) == (who in MEMBERS), who
        assert ("acme/other" in ids) == (who in MEMBERS or who == "scoped_other"), who


def _fresh(world: World, name: str, private: bool) -> None:
    admin = world.registry.users.authenticate(world.tokens["admin"] or "")
    world.registry.repos.create(admin, "model", "acme", name, private=private)


@pytest.mark.parametrize("who", PRINCIPALS)
def test_delete_repo_needs_admin(world: World, who: str) -> None:
    for private in (True, False):
        name = f"doomed-{who.replace('_', '-')}-{int(private)}"
        _fresh(world, name, private)
        got = world.client.request(
            "DELETE",
            "/api/repos/delete",
            headers=world.headers(who),
            json={"name": name, "organization": "acme"},
        )
        level = MEMBERS.get(who, 0)
        if who in {"expired", "revoked", "anonymous"}:
            want = 401
        elif level == 0:
            want = 404 if private else 403
        else:
            want = 200 if level == 3 else 403
        assert got.status_code == want, (who, private, got.text)
        exists = world.client.get(f"{R}/{name}", headers=world.headers("admin")).status_code == 200
        assert exists == (want != 200)


def test_audit_log_records_who_did_what(world: World) -> None:
    events = world.client.get(f"{R}/public/audit?limit=1000", headers=world.headers("admin")).json()
    actions = {(e["actor"], e["action"]) for e in events}
    assert ("walt", "repo.commit") in actions
    assert ("walt", "ref.create") in actions and ("walt", "ref.delete") in actions
    assert ("ada", "repo.create") in actions
    assert all(e["repo"] == "model:acme/public" for e in events)
    org = world.client.get("/api/cairn/orgs/acme/audit?limit=1000", headers=world.headers("admin")).json()
    assert {"org.create", "member.add", "access.request", "repo.delete"} <= {e["action"] for e in org}
    assert [e["id"] for e in org] == sorted((e["id"] for e in org), reverse=True)


def test_audit_log_pages_by_event_id(world: World) -> None:
    first = world.client.get("/api/cairn/orgs/acme/audit?limit=2", headers=world.headers("admin"))
    assert first.status_code == 200 and len(first.json()) == 2
    link = first.headers["link"]
    assert 'rel="next"' in link
    url = link[1 : link.index(">")].replace("http://testserver", "")
    second = world.client.get(url, headers=world.headers("admin")).json()
    assert second and second[0]["id"] < first.json()[-1]["id"]
    for bad in ("limit=0", "limit=x", "cursor=%%%", "before=-1"):
        got = world.client.get(f"/api/cairn/orgs/acme/audit?{bad}", headers=world.headers("admin"))
        assert got.status_code in {200, 400}
        if got.status_code == 400:
            assert set(got.json()) == {"error", "code"}


def test_org_audit_is_for_org_admins_only(world: World) -> None:
    for who, want in (
        ("admin", 200),
        ("writer", 403),
        ("reader", 403),
        ("outsider", 404),
        ("anonymous", 401),
    ):
        got = world.client.get("/api/cairn/orgs/acme/audit", headers=world.headers(who))
        assert got.status_code == want, who
    got = world.client.get("/api/cairn/orgs/nosuchorg/audit", headers=world.headers("outsider"))
    assert got.status_code == 404


@pytest.mark.parametrize(
    ("who", "private", "want"),
    [
        ("anonymous", False, 401),
        ("outsider", True, 404),
        ("outsider", False, 403),
        ("reader", True, 403),
        ("writer", False, 403),
        ("read_only", False, 403),
        ("scoped_other", False, 403),
        ("revoked", False, 401),
        ("admin", True, 200),
        ("scoped_org", False, 200),
    ],
)
def test_move_repo_needs_admin_and_keeps_its_audit_trail(
    world: World, who: str, private: bool, want: int
) -> None:
    name = f"mv-{who.replace('_', '-')}-{int(private)}"
    _fresh(world, name, private)
    body = {"fromRepo": f"acme/{name}", "toRepo": f"acme/{name}-new"}
    got = world.client.post("/api/repos/move", headers=world.headers(who), json=body)
    assert got.status_code == want, got.text
    final = f"{name}-new" if want == 200 else name
    events = world.client.get(f"{R}/{final}/audit", headers=world.headers("admin")).json()
    assert [e["action"] for e in events] == (["repo.move", "repo.create"] if want == 200 else ["repo.create"])
