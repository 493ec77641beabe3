"""The audit log: who did what, when, to which repo or organisation. Append-only rows in
``audit_events``; read back newest first, per repo or per namespace (organisation), with keyset paging
(``before`` an event id) so that new events never shift a page.

Actions are dotted names: ``repo.create``, ``repo.delete``, ``repo.settings``, ``repo.move``,
``repo.commit``, ``ref.create``, ``ref.delete``, ``access.request``, ``access.accept``, ``access.reject``,
``access.pending``, ``access.grant``, ``org.create``, ``member.add``, ``member.role``, ``member.remove``,
``token.create``, ``token.use``, ``token.revoke``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select

from cairn.errors import UsageError
from cairn.meta import Database, audit_events, now_us
from cairn.registry.models import Repo

__all__ = ["MAX_PAGE", "AuditEvent", "AuditService"]

MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: int
    actor: str | None
    action: str
    namespace: str | None
    repo: str | None
    target: str | None
    detail: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "namespace": self.namespace,
            "repo": self.repo,
            "target": self.target,
            "detail": self.detail,
        }


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        actor: str | None,
        action: str,
        *,
        repo: Repo | None = None,
        namespace: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one event. ``repo`` implies its namespace."""
        with self.db.write() as conn:
            conn.execute(
                insert(audit_events).values(
                    at=now_us(),
                    actor=actor,
                    action=action,
                    namespace=repo.namespace if repo is not None else namespace,
                    repo_id=None if repo is None else repo.id,
                    repo=None if repo is None else f"{repo.type}:{repo.repo_id}",
                    target=None if target is None else target[:256],
                    detail=json.dumps(detail or {}, default=str),
                )
            )

    def query(
        self,
        *,
        repo: Repo | None = None,
        namespace: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Events of ``repo`` (by id, so renames keep their history) or of ``namespace``, newest first."""
        if (repo is None) == (namespace is None):
            raise UsageError("query the audit log of exactly one repo or one namespace")
        if limit < 1 or limit > MAX_PAGE:
            raise UsageError(f"limit must be between 1 and {MAX_PAGE}")
        query = select(audit_events)
        if repo is not None:
            # SQLite may hand a deleted repo's id to a new one: its history starts at its creation
            query = query.where(audit_events.c.repo_id == repo.id, audit_events.c.at >= repo.created_at)
        else:
            query = query.where(audit_events.c.namespace == namespace)
        if before is not None:
            query = query.where(audit_events.c.id < before)
        query = query.order_by(audit_events.c.id.desc()).limit(limit)
        with self.db.read() as conn:
            rows = list(conn.execute(query))
        return [
            AuditEvent(
                id=r.id,
                at=r.at,
                actor=r.actor,
                action=r.action,
                namespace=r.namespace,
                repo=r.repo,
                target=r.target,
                detail=json.loads(r.detail),
            )
            for r in rows
        ]
