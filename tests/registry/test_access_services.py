"""The access services without HTTP: the 0005_access migration keeps existing grants, token expiry and
revocation, scope validation, organisation roles and the last-admin rule, and the audit log's query
limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text, update

from cairn.errors import NotFoundError, PermissionDeniedError, UsageError
from cairn.meta import Database, now_us, repo_access, tokens
from cairn.meta.migrate import _config, migrate
from cairn.registry import Registry, UnauthenticatedError
from cairn.registry.models import TokenScope
from cairn.registry.orgs import LastAdminError, OrgNotFoundError


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    registry = Registry.open(f"sqlite:///{tmp_path / 'hub.db'}", str(tmp_path / "blobs"))
    registry.users.create_user("ada")
    registry.users.create_user("bob")
    yield registry
    registry.close()


def test_upgrade_keeps_grants_made_before_it(tmp_path: Path) -> None:
    from alembic import command

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(_config(db), "0004")
    with db.write() as conn:  # rows as version 0004 wrote them (no status column yet)
        conn.execute(text("INSERT INTO users (id, name, fullname, created_at) VALUES (1, 'ada', 'ada', 1)"))
        conn.execute(
            text(
                "INSERT INTO repos (id, type, namespace, name, private, gated, created_at, last_modified, "
                "tags, card_data, downloads, likes) VALUES (1, 'model', 'ada', 'm', false, 'manual', 1, 1, "
                "'[]', '{}', 0, 0)"
            )
        )
        conn.execute(text("INSERT INTO repo_access (repo_id, user_id, created_at) VALUES (1, 1, 1)"))
    migrate(db)
    with db.read() as conn:
        assert conn.execute(repo_access.select()).one().status == "accepted"
    db.dispose()


def test_expired_and_revoked_tokens_are_unknown(reg: Registry) -> None:
    token = reg.users.create_token("ada", name="t", expires_at=now_us() + 10**9)
    assert reg.users.authenticate(token).user.name == "ada"
    with reg.db.write() as conn:
        conn.execute(update(tokens).where(tokens.c.name == "t").values(expires_at=now_us() - 1))
    with pytest.raises(UnauthenticatedError):
        reg.users.authenticate(token)
    other = reg.users.create_token("ada", name="u")
    info = reg.users.tokens_of("ada")[-1]
    reg.users.revoke_token("ada", info.id)
    reg.users.revoke_token("ada", info.id)  # idempotent
    with pytest.raises(UnauthenticatedError):
        reg.users.authenticate(other)
    with pytest.raises(NotFoundError):
        reg.users.revoke_token("bob", info.id)  # not bob's token
    with pytest.raises(UsageError):
        reg.users.create_token("ada", expires_at=now_us() - 1)


@pytest.mark.parametrize(
    "scope",
    [
        TokenScope("repo", "no-slash", "read"),
        TokenScope("repo", "a/b/c", "read"),
        TokenScope("org", "../x", "read"),
        TokenScope("team", "x", "read"),  # type: ignore[arg-type]
        TokenScope("org", "x", "admin"),  # type: ignore[arg-type]
        TokenScope("repo", "a/b", "read", repo_type="blob"),
    ],
)
def test_bad_scopes_are_refused(reg: Registry, scope: TokenScope) -> None:
    with pytest.raises(UsageError):
        reg.users.create_token("ada", scopes=(scope,))
    assert reg.users.tokens_of("ada") == []


def test_scoped_token_role_is_the_best_scope(reg: Registry) -> None:
    token = reg.users.create_token("ada", role="write", scopes=(TokenScope("org", "ada", "read"),))
    who = reg.users.authenticate(token)
    assert who.token.role == "read" and who.level("model", "ada", "x") == 1
    assert who.level("model", "bob", "x") == 0


def test_org_roles_and_the_last_admin(reg: Registry) -> None:
    ada = reg.users.authenticate(reg.users.create_token("ada"))
    reg.orgs.create(ada, "acme")
    ada = reg.users.authenticate(reg.users.create_token("ada"))  # roles are read at authentication
    assert ada.role_in("acme") == "admin"
    assert reg.orgs.set_member(ada, "acme", "bob", "read") == ""
    assert reg.orgs.set_member(ada, "acme", "bob", "write") == "read"
    with pytest.raises(LastAdminError):
        reg.orgs.set_member(ada, "acme", "ada", "write")
    with pytest.raises(LastAdminError):
        reg.orgs.remove_member(ada, "acme", "ada")
    with pytest.raises(UsageError):
        reg.orgs.set_member(ada, "acme", "bob", "owner")
    bob = reg.users.authenticate(reg.users.create_token("bob"))
    with pytest.raises(PermissionDeniedError):
        reg.orgs.remove_member(bob, "acme", "ada")
    reg.orgs.remove_member(ada, "acme", "bob")
    bob = reg.users.authenticate(reg.users.create_token("bob"))
    with pytest.raises(OrgNotFoundError):
        reg.orgs.members(bob, "acme")  # no longer a member: the organisation is not there for him
    with pytest.raises(OrgNotFoundError):
        reg.orgs.members(ada, "nope")
    read_only = reg.users.authenticate(reg.users.create_token("ada", role="read"))
    with pytest.raises(PermissionDeniedError):
        reg.orgs.create(read_only, "other")
    actions = [e.action for e in reg.audit.query(namespace="acme")]
    assert actions == ["member.remove", "member.role", "member.add", "org.create"]


def test_audit_query_limits(reg: Registry) -> None:
    with pytest.raises(UsageError):
        reg.audit.query()
    with pytest.raises(UsageError):
        reg.audit.query(namespace="ada", limit=0)
    with pytest.raises(UsageError):
        reg.audit.query(namespace="ada", limit=10**6)


def test_a_new_repo_does_not_inherit_a_deleted_ones_history(reg: Registry) -> None:
    ada = reg.users.authenticate(reg.users.create_token("ada"))
    old = reg.repos.create(ada, "model", "ada", "a", private=False)
    reg.repos.update_settings(ada, old, gated="manual")
    reg.repos.delete(ada, "model", "ada", "a")
    new = reg.repos.create(ada, "model", "ada", "b", private=False)
    assert [e.action for e in reg.audit.query(repo=new)] == ["repo.create"]
    assert [e.action for e in reg.audit.query(namespace="ada")][:4] == [
        "repo.create",
        "repo.delete",
        "repo.settings",
        "repo.create",
    ]
