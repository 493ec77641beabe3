"""Organisations as their members manage them: create one (the creator becomes its admin), list its
members, add a member or change a role, remove a member. Roles: ``read`` (sees private repos, reads gated
files), ``write`` (pushes), ``admin`` (settings, members, gating decisions, audit log).

Every call takes the acting :class:`Principal` and checks both the member's role and the token: managing
members needs an admin role and a write token that covers the organisation. An organisation always keeps
at least one admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select

from cairn.errors import NotFoundError, PermissionDeniedError, UsageError
from cairn.meta import Database, org_members, orgs, users
from cairn.registry.audit import AuditService
from cairn.registry.errors import UnauthenticatedError
from cairn.registry.models import Principal
from cairn.registry.users import UserService

__all__ = ["LastAdminError", "Member", "OrgNotFoundError", "OrgService"]


class OrgNotFoundError(NotFoundError):
    code = "org_not_found"

    def __init__(self, org: str) -> None:
        super().__init__(f"Organization not found: {org}")
        self.org = org


class LastAdminError(UsageError):
    """Removing or demoting the last admin would leave an organisation nobody can manage."""

    code = "last_admin"

    def __init__(self, org: str, user: str) -> None:
        super().__init__(f"{user} is the last admin of {org}: make someone else admin first")
        self.org = org
        self.user = user


@dataclass(frozen=True)
class Member:
    user: str
    fullname: str
    role: str


class OrgService:
    def __init__(self, db: Database, users_: UserService, audit: AuditService) -> None:
        self.db = db
        self.users = users_
        self.audit = audit

    def _org_id(self, org: str) -> int:
        with self.db.read() as conn:
            org_id = conn.execute(select(orgs.c.id).where(orgs.c.name == org)).scalar()
        if org_id is None:
            raise OrgNotFoundError(org)
        return int(org_id)

    def require(self, who: Principal | None, org: str, level: int) -> None:
        """Raise unless ``who`` has ``level`` (1 read, 3 admin) in ``org``. Outsiders get
        :class:`OrgNotFoundError`, as for an organisation that does not exist."""
        if who is None:
            raise UnauthenticatedError("You must be authenticated to do this")
        self._org_id(org)
        if who.role_in(org) is None:
            raise OrgNotFoundError(org)
        if who.level("model", org, None) < level:
            raise PermissionDeniedError(f"you need the admin role in {org} and a write token for it")

    def create(self, who: Principal | None, name: str) -> None:
        """Create organisation ``name`` with ``who`` as its admin (needs an account-wide write token)."""
        if who is None:
            raise UnauthenticatedError("You must be authenticated to do this")
        if who.token.scopes or not who.can_write:
            raise PermissionDeniedError("creating an organisation needs an account-wide write token")
        self.users.create_org(name, [], admins=[who.user.name], by=who.user.name)

    def members(self, who: Principal | None, org: str) -> list[Member]:
        self.require(who, org, 1)
        with self.db.read() as conn:
            rows = conn.execute(
                select(users.c.name, users.c.fullname, org_members.c.role)
                .join(org_members, org_members.c.user_id == users.c.id)
                .where(org_members.c.org_id == self._org_id(org))
                .order_by(users.c.name)
            )
            return [Member(r.name, r.fullname, r.role) for r in rows]

    def _admins(self, org_id: int) -> int:
        with self.db.read() as conn:
            count = conn.execute(
                select(func.count())
                .select_from(org_members)
                .where(org_members.c.org_id == org_id, org_members.c.role == "admin")
            ).scalar()
        return int(count or 0)

    def _role(self, org_id: int, user_id: int) -> str | None:
        with self.db.read() as conn:
            role = conn.execute(
                select(org_members.c.role).where(
                    org_members.c.org_id == org_id, org_members.c.user_id == user_id
                )
            ).scalar()
        return None if role is None else str(role)

    def set_member(self, who: Principal | None, org: str, user: str, role: str) -> str:
        """Add ``user`` with ``role`` or change their role; returns the previous role ("" if none)."""
        self.require(who, org, 3)
        assert who is not None
        org_id = self._org_id(org)
        target = self.users.get_user(user)
        if role != "admin" and self._role(org_id, target.id) == "admin" and self._admins(org_id) <= 1:
            raise LastAdminError(org, user)
        return self.users.add_member(org, user, role, by=who.user.name)

    def remove_member(self, who: Principal | None, org: str, user: str) -> None:
        self.require(who, org, 3)
        assert who is not None
        org_id = self._org_id(org)
        target = self.users.get_user(user)
        role = self._role(org_id, target.id)
        if role is None:
            raise NotFoundError(f"{user} is not a member of {org}")
        if role == "admin" and self._admins(org_id) <= 1:
            raise LastAdminError(org, user)
        with self.db.write() as conn:
            conn.execute(
                delete(org_members).where(org_members.c.org_id == org_id, org_members.c.user_id == target.id)
            )
        self.audit.record(who.user.name, "member.remove", namespace=org, target=user, detail={"was": role})
