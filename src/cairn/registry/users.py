"""Users and access tokens. Tokens are random, shown once, and stored only as their sha256 (they carry
256 bits of entropy, so a fast hash is the right one); the server's signing secret lives here too."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from cairn.errors import NotFoundError, UsageError
from cairn.meta import Database, now_us, org_members, orgs, settings, tokens, users
from cairn.registry.errors import AlreadyExistsError, UnauthenticatedError
from cairn.registry.models import Principal, TokenInfo, User
from cairn.registry.names import check_name

__all__ = ["TOKEN_PREFIX", "UserService"]

TOKEN_PREFIX = "cairn_"  # noqa: S105 - a prefix that makes leaked tokens greppable, not a secret


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class UserService:
    def __init__(self, db: Database) -> None:
        self.db = db

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

    def create_token(self, user_name: str, *, role: str = "write", name: str = "cli") -> str:
        """Create a token for ``user_name`` and return it in clear (the only time it exists in clear)."""
        if role not in {"read", "write"}:
            raise UsageError(f"token role must be 'read' or 'write', not {role!r}")
        user = self.get_user(user_name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as conn:
            conn.execute(
                insert(tokens).values(
                    user_id=user.id, name=name[:200], role=role, token_hash=_hash(token), created_at=now_us()
                )
            )
        return token

    def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for; :class:`UnauthenticatedError` if it is unknown."""
        if not token or len(token) > 512:
            raise UnauthenticatedError("Invalid credentials in Authorization header")
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    users, tokens.c.name.label("tname"), tokens.c.role, tokens.c.created_at.label("tcreated")
                )
                .join(tokens, tokens.c.user_id == users.c.id)
                .where(tokens.c.token_hash == _hash(token))
            ).first()
        if row is None:
            raise UnauthenticatedError("Invalid credentials in Authorization header")
        user = User(id=row.id, name=row.name, fullname=row.fullname, created_at=row.created_at)
        token_info = TokenInfo(name=row.tname, role=row.role, created_at=row.tcreated)
        return Principal(user=user, token=token_info, orgs=tuple(self.orgs_of(user.id)))

    def orgs_of(self, user_id: int) -> list[str]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(orgs.c.name)
                .join(org_members, org_members.c.org_id == orgs.c.id)
                .where(org_members.c.user_id == user_id)
                .order_by(orgs.c.name)
            )
            return [r.name for r in rows]

    def create_org(self, name: str, members: list[str]) -> None:
        """Create organisation ``name`` whose ``members`` (existing users) may read and write its repos."""
        check_name("organisation name", name)
        self._name_free(name)
        ids = [self.get_user(m).id for m in members]
        try:
            with self.db.write() as conn:
                pk = conn.execute(insert(orgs).values(name=name, created_at=now_us())).inserted_primary_key
                assert pk is not None
                for uid in dict.fromkeys(ids):
                    conn.execute(insert(org_members).values(org_id=pk[0], user_id=uid, role="write"))
        except DBIntegrityError:
            raise AlreadyExistsError("organisation", name) from None

    def add_member(self, org: str, user_name: str) -> None:
        user = self.get_user(user_name)
        with self.db.write() as conn:
            org_id = conn.execute(select(orgs.c.id).where(orgs.c.name == org)).scalar()
            if org_id is None:
                raise NotFoundError(f"no organisation named {org!r}")
            known = conn.execute(
                select(org_members.c.user_id).where(
                    org_members.c.org_id == org_id, org_members.c.user_id == user.id
                )
            ).first()
            if known is None:
                conn.execute(insert(org_members).values(org_id=org_id, user_id=user.id, role="write"))

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
