"""Gated repos, the Hugging Face way: a user asks for access (with optional form fields); a repo gated
``auto`` accepts at once, one gated ``manual`` keeps the request pending until someone with the admin
permission on the repo accepts or rejects it (or sets it back to pending). Accepted requests open the
repo's files to that user; every decision is in the audit log.

Requests are rows of ``repo_access`` (one per user and repo) with a ``status``; operator grants
(``cairn admin grant-access``) are accepted rows too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update

from cairn.errors import NotFoundError, UsageError
from cairn.meta import Database, now_us, repo_access, users
from cairn.registry.audit import AuditService
from cairn.registry.errors import UnauthenticatedError
from cairn.registry.models import Principal, Repo
from cairn.registry.repos import RepoService, require

__all__ = ["MAX_FIELDS_BYTES", "STATUSES", "AccessRequest", "AccessService", "NotGatedError"]

STATUSES = ("pending", "accepted", "rejected")
MAX_FIELDS_BYTES = 16 * 1024


class NotGatedError(UsageError):
    code = "not_gated"

    def __init__(self, repo_id: str) -> None:
        super().__init__(f"{repo_id} is not a gated repo")
        self.repo_id = repo_id


@dataclass(frozen=True)
class AccessRequest:
    user: str
    fullname: str
    status: str
    created_at: int
    decided_by: str | None
    decided_at: int | None
    reason: str | None
    fields: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class AccessService:
    def __init__(self, db: Database, repos_: RepoService, audit: AuditService) -> None:
        self.db = db
        self.repos = repos_
        self.audit = audit

    def request(self, who: Principal | None, repo: Repo, fields: dict[str, Any] | None = None) -> str:
        """Ask for access to gated ``repo`` for ``who``; returns the request's status. Asking again
        after a decision does not undo it (a rejected user stays rejected)."""
        if who is None:
            raise UnauthenticatedError("You must be authenticated to request access")
        if not repo.gated:
            raise NotGatedError(repo.repo_id)
        fields = dict(fields or {})
        encoded = json.dumps(fields, default=str)
        if len(encoded) > MAX_FIELDS_BYTES:
            raise UsageError(f"the access request form is larger than {MAX_FIELDS_BYTES} bytes")
        status = "accepted" if repo.gated == "auto" else "pending"
        when = now_us()
        with self.db.write() as conn:
            current = conn.execute(
                select(repo_access.c.status).where(
                    repo_access.c.repo_id == repo.id, repo_access.c.user_id == who.user.id
                )
            ).scalar()
            if current is not None:
                return str(current)
            conn.execute(
                insert(repo_access).values(
                    repo_id=repo.id,
                    user_id=who.user.id,
                    created_at=when,
                    status=status,
                    fields=encoded,
                    decided_by="auto" if status == "accepted" else None,
                    decided_at=when if status == "accepted" else None,
                )
            )
        self.audit.record(
            who.user.name, "access.request", repo=repo, target=who.user.name, detail={"status": status}
        )
        return status

    def list(self, who: Principal | None, repo: Repo, status: str) -> list[AccessRequest]:
        """Requests of ``repo`` with ``status``, oldest first (needs admin on the repo)."""
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}")
        require(who, repo.type, repo.namespace, repo.name, 3)
        with self.db.read() as conn:
            rows = conn.execute(
                select(repo_access, users.c.name, users.c.fullname)
                .join(users, users.c.id == repo_access.c.user_id)
                .where(repo_access.c.repo_id == repo.id, repo_access.c.status == status)
                .order_by(repo_access.c.created_at, users.c.name)
            )
            return [
                AccessRequest(
                    user=r.name,
                    fullname=r.fullname,
                    status=r.status,
                    created_at=r.created_at,
                    decided_by=r.decided_by,
                    decided_at=r.decided_at,
                    reason=r.reason,
                    fields=json.loads(r.fields or "{}"),
                )
                for r in rows
            ]

    def decide(
        self, who: Principal | None, repo: Repo, user: str, status: str, reason: str | None = None
    ) -> None:
        """Set the request of ``user`` to ``status`` (accept, reject, or back to pending)."""
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}")
        if reason is not None and status != "rejected":
            raise UsageError("a reason can only be given when rejecting a request")
        require(who, repo.type, repo.namespace, repo.name, 3)
        assert who is not None
        if not repo.gated:
            raise NotGatedError(repo.repo_id)
        when = now_us()
        with self.db.write() as conn:
            uid = conn.execute(select(users.c.id).where(users.c.name == user)).scalar()
            if uid is None:
                raise NotFoundError(f"no user named {user!r}")
            done = conn.execute(
                update(repo_access)
                .where(repo_access.c.repo_id == repo.id, repo_access.c.user_id == uid)
                .values(status=status, decided_by=who.user.name, decided_at=when, reason=reason)
            ).rowcount
        if not done:
            raise NotFoundError(f"{user} has not requested access to {repo.repo_id}")
        action = {"accepted": "access.accept", "rejected": "access.reject", "pending": "access.pending"}[
            status
        ]
        self.audit.record(
            who.user.name, action, repo=repo, target=user, detail={"reason": reason} if reason else None
        )

    def grant(self, who: Principal | None, repo: Repo, user: str) -> None:
        """Give ``user`` access without a request (needs admin on the repo)."""
        require(who, repo.type, repo.namespace, repo.name, 3)
        assert who is not None
        if not repo.gated:
            raise NotGatedError(repo.repo_id)
        self.repos.grant_access(repo, user, by=who.user.name)
