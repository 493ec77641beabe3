"""Users and access tokens. Tokens are random, shown once, and stored only as their sha256 (they carry
256 bits of entropy, so a fast hash is the right one); the server's signing secret lives here too.

A token has a role (read or write), optionally fine-grained scopes (repos or namespaces, each read or
write), optionally an expiry; it can be revoked. An expired or revoked token is exactly as invalid as an
unknown one. Use is recorded (``last_used_at``, at most once a minute; a ``token.use`` audit event at most
once an hour per token)."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from cairn.errors import NotFoundError, UsageError
from cairn.meta import Database, now_us, org_members, orgs, settings, tokens, users
from cairn.registry.audit import AuditService
from cairn.registry.errors import AlreadyExistsError, UnauthenticatedError
from cairn.registry.models import REPO_TYPES, OrgRole, Principal, TokenInfo, TokenScope, User
from cairn.registry.names import check_name

__all__ = ["TOKEN_PREFIX", "UserService"]

TOKEN_PREFIX = "cairn_"  # noqa: S105 - a prefix that makes leaked tokens greppable, not a secret
MAX_SCOPES = 100
ORG_ROLES = ("read", "write", "admin")
_USE_EVERY_US = 60_000_000
_AUDIT_USE_EVERY_US = 3_600_000_000


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _scopes_json(scopes: tuple[TokenScope, ...]) -> str:
    if not scopes:
        return ""
    return json.dumps(
        [{"kind": x.kind, "name": x.name, "permission": x.permission, "type": x.repo_type} for x in scopes]
    )


def _scopes(raw: str) -> tuple[TokenScope, ...]:
    if not raw:
        return ()
    return tuple(
        TokenScope(kind=x["kind"], name=x["name"], permission=x["permission"], repo_type=x["type"])
        for x in json.loads(raw)
    )


def check_scope(scope: TokenScope) -> TokenScope:
    """Validate one scope given by a user (names, kind, permission, repo type)."""
    if scope.kind not in {"repo", "org"}:
        raise UsageError(f"scope kind must be 'repo' or 'org', not {scope.kind!r}")
    if scope.permission not in {"read", "write"}:
        raise UsageError(f"scope permission must be 'read' or 'write', not {scope.permission!r}")
    if scope.repo_type not in REPO_TYPES:
        raise UsageError(f"unknown repo type {scope.repo_type!r}")
    if scope.kind == "org":
        check_name("namespace", scope.name)
    else:
        ns, slash, name = scope.name.partition("/")
        if not slash:
            raise UsageError(f"a repo scope must be NAMESPACE/NAME, not {scope.name[:200]!r}")
        check_name("namespace", ns)
        check_name("repo name", name)
    return scope


def _token_info(r: Any) -> TokenInfo:
    return TokenInfo(
        id=r.tid,
        name=r.tname,
        role=r.role,
        created_at=r.tcreated,
        expires_at=r.expires_at,
        revoked_at=r.revoked_at,
        last_used_at=r.last_used_at,
        scopes=_scopes(r.scopes),
    )


_TOKEN_COLS = (
    tokens.c.id.label("tid"),
    tokens.c.name.label("tname"),
    tokens.c.role,
    tokens.c.created_at.label("tcreated"),
    tokens.c.expires_at,
    tokens.c.revoked_at,
    tokens.c.last_used_at,
    tokens.c.scopes,
)


class UserService:
    def __init__(self, db: Database, audit: AuditService | None = None) -> None:
        self.db = db
        self.audit = audit or AuditService(db)

    def _name_free(self, name: str) -> None:
        with self.db.read() as conn:
            taken = (
                conn.execute(select(users.c.id).where(users.c.name == name)).first()
                or conn.execute(select(orgs.c.id).where(orgs.c.name == name)).first()
            )
        if taken is not None:
            raise AlreadyExistsError("user or organisation", name)

    def create_user(self, name: str, fullname: str = "") -> User:
        check_name("user name", name)
        self._name_free(name)
        created = now_us()
        try:
            with self.db.write() as conn:
                uid = conn.execute(
                    insert(users).values(name=name, fullname=fullname or name, created_at=created)
                ).inserted_primary_key
        except DBIntegrityError:
            raise AlreadyExistsError("user", name) from None
        assert uid is not None
        return User(id=int(uid[0]), name=name, fullname=fullname or name, created_at=created)

    def get_user(self, name: str) -> User:
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no user named {name!r}")
        return User(id=row.id, name=row.name, fullname=row.fullname, created_at=row.created_at)

    def create_token(
        self,
        user_name: str,
        *,
        role: str = "write",
        name: str = "cli",
        scopes: tuple[TokenScope, ...] = (),
        expires_at: int | None = None,
        by: str | None = None,
    ) -> str:
        """Create a token for ``user_name`` and return it in clear (the only time it exists in clear).
        With ``scopes`` the token is fine-grained: it acts only on what the scopes cover, and its role
        is the best of their permissions."""
        if role not in {"read", "write"}:
            raise UsageError(f"token role must be 'read' or 'write', not {role!r}")
        if len(scopes) > MAX_SCOPES:
            raise UsageError(f"a token may have at most {MAX_SCOPES} scopes")
        scopes = tuple(check_scope(x) for x in scopes)
        if scopes:
            role = "write" if any(x.permission == "write" for x in scopes) else "read"
        created = now_us()
        if expires_at is not None and expires_at <= created:
            raise UsageError("a token's expiry must be in the future")
        user = self.get_user(user_name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as conn:
            pk = conn.execute(
                insert(tokens).values(
                    user_id=user.id,
                    name=name[:200],
                    role=role,
                    token_hash=_hash(token),
                    created_at=created,
                    scopes=_scopes_json(scopes),
                    expires_at=expires_at,
                )
            ).inserted_primary_key
        assert pk is not None
        self.audit.record(
            by or user_name,
            "token.create",
            namespace=user_name,
            target=f"{pk[0]}:{name[:200]}",
            detail={
                "role": role,
                "scopes": json.loads(_scopes_json(scopes) or "[]"),
                "expires_at": expires_at,
            },
        )
        return token

    def token_info(self, token: str) -> TokenInfo:
        """What is stored about ``token`` (given in clear), without recording a use."""
        with self.db.read() as conn:
            row = conn.execute(select(*_TOKEN_COLS).where(tokens.c.token_hash == _hash(token))).first()
        if row is None:
            raise NotFoundError("no such token")
        return _token_info(row)

    def tokens_of(self, user_name: str) -> list[TokenInfo]:
        """Every token of ``user_name`` (revoked and expired ones too), oldest first."""
        user = self.get_user(user_name)
        with self.db.read() as conn:
            rows = conn.execute(select(*_TOKEN_COLS).where(tokens.c.user_id == user.id).order_by(tokens.c.id))
            return [_token_info(r) for r in rows]

    def revoke_token(self, user_name: str, token_id: int, *, by: str | None = None) -> TokenInfo:
        """Revoke token ``token_id`` of ``user_name`` (idempotent). Unknown ids are a NotFoundError."""
        user = self.get_user(user_name)
        when = now_us()
        with self.db.write() as conn:
            row = conn.execute(
                select(*_TOKEN_COLS).where(tokens.c.id == token_id, tokens.c.user_id == user.id)
            ).first()
            if row is None:
                raise NotFoundError(f"{user_name} has no token with id {token_id}")
            if row.revoked_at is None:
                conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=when))
        if row.revoked_at is None:
            self.audit.record(
                by or user_name, "token.revoke", namespace=user_name, target=f"{token_id}:{row.tname}"
            )
        return _token_info(row)

    def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for; :class:`UnauthenticatedError` if it is unknown."""
        if not token or len(token) > 512:
            raise UnauthenticatedError("Invalid credentials in Authorization header")
        with self.db.read() as conn:
            row = conn.execute(
                select(users, *_TOKEN_COLS)
                .join(tokens, tokens.c.user_id == users.c.id)
                .where(tokens.c.token_hash == _hash(token))
            ).first()
            roles = [] if row is None else self._roles(conn, row.id)
        when = now_us()
        if (
            row is None
            or row.revoked_at is not None
            or (row.expires_at is not None and row.expires_at <= when)
        ):
            raise UnauthenticatedError("Invalid credentials in Authorization header")
        user = User(id=row.id, name=row.name, fullname=row.fullname, created_at=row.created_at)
        token_info = _token_info(row)
        self._record_use(user.name, token_info, when)
        return Principal(user=user, token=token_info, orgs=tuple(o for o, _ in roles), org_roles=tuple(roles))

    def _record_use(self, user_name: str, token: TokenInfo, when: int) -> None:
        last = token.last_used_at
        if last is not None and when - last < _USE_EVERY_US:
            return
        with self.db.write() as conn:
            conn.execute(update(tokens).where(tokens.c.id == token.id).values(last_used_at=when))
        if last is None or when - last >= _AUDIT_USE_EVERY_US:
            self.audit.record(user_name, "token.use", namespace=user_name, target=f"{token.id}:{token.name}")

    @staticmethod
    def _roles(conn: Connection, user_id: int) -> list[tuple[str, OrgRole]]:
        rows = conn.execute(
            select(orgs.c.name, org_members.c.role)
            .join(org_members, org_members.c.org_id == orgs.c.id)
            .where(org_members.c.user_id == user_id)
            .order_by(orgs.c.name)
        )
        return [(r.name, r.role) for r in rows]

    def orgs_of(self, user_id: int) -> list[str]:
        with self.db.read() as conn:
            return [name for name, _ in self._roles(conn, user_id)]

    def create_org(
        self, name: str, members: Sequence[str], *, admins: Sequence[str] = (), by: str | None = None
    ) -> None:
        """Create organisation ``name``: ``members`` (existing users) get the write role, ``admins``
        the admin role."""
        check_name("organisation name", name)
        self._name_free(name)
        roles: dict[int, str] = {self.get_user(m).id: "write" for m in members}
        roles.update({self.get_user(m).id: "admin" for m in admins})
        try:
            with self.db.write() as conn:
                pk = conn.execute(insert(orgs).values(name=name, created_at=now_us())).inserted_primary_key
                assert pk is not None
                for uid, role in roles.items():
                    conn.execute(insert(org_members).values(org_id=pk[0], user_id=uid, role=role))
        except DBIntegrityError:
            raise AlreadyExistsError("organisation", name) from None
        self.audit.record(
            by, "org.create", namespace=name, detail={"members": list(members), "admins": list(admins)}
        )

    def add_member(self, org: str, user_name: str, role: str = "write", *, by: str | None = None) -> str:
        """Add ``user_name`` to ``org`` with ``role``, or change their role. Returns the previous role
        ("" if they were not a member)."""
        if role not in ORG_ROLES:
            raise UsageError(f"role must be one of {', '.join(ORG_ROLES)}, not {role!r}")
        user = self.get_user(user_name)
        with self.db.write() as conn:
            org_id = conn.execute(select(orgs.c.id).where(orgs.c.name == org)).scalar()
            if org_id is None:
                raise NotFoundError(f"no organisation named {org!r}")
            before = conn.execute(
                select(org_members.c.role).where(
                    org_members.c.org_id == org_id, org_members.c.user_id == user.id
                )
            ).scalar()
            if before is None:
                conn.execute(insert(org_members).values(org_id=org_id, user_id=user.id, role=role))
            elif before != role:
                conn.execute(
                    update(org_members)
                    .where(org_members.c.org_id == org_id, org_members.c.user_id == user.id)
                    .values(role=role)
                )
        if before != role:
            action = "member.add" if before is None else "member.role"
            self.audit.record(
                by, action, namespace=org, target=user_name, detail={"role": role, "was": before}
            )
        return before or ""

    def secret(self, key: str = "signing-secret") -> bytes:
        """A random server secret, created on first use and shared by every replica via the database."""
        with self.db.read() as conn:
            value = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
        if value is None:
            try:
                with self.db.write() as conn:
                    conn.execute(insert(settings).values(key=key, value=secrets.token_hex(32)))
            except DBIntegrityError:
                pass  # another process created it first; use theirs
            with self.db.read() as conn:
                value = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar_one()
        return bytes.fromhex(value)
