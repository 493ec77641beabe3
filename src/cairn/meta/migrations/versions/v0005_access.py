"""Access control, part two: fine-grained token columns (scopes, expiry, revocation, last use), the
status of gated-repo access requests on ``repo_access``, and the audit log.

Revision ID: 0005_access
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_access"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("scopes", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("expires_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.BigInteger, nullable=True))
    with op.batch_alter_table("repo_access") as batch:
        # rows written before this revision are operator grants: accepted
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="accepted"))
        batch.add_column(sa.Column("fields", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("decided_by", sa.String(96), nullable=True))
        batch.add_column(sa.Column("decided_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("reason", sa.Text, nullable=True))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(96), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(96), nullable=True),
        sa.Column("repo_id", sa.Integer, nullable=True),
        sa.Column("repo", sa.String(220), nullable=True),
        sa.Column("target", sa.String(256), nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_audit_repo", "audit_events", ["repo_id", "id"])
    op.create_index("ix_audit_namespace", "audit_events", ["namespace", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_namespace", "audit_events")
    op.drop_index("ix_audit_repo", "audit_events")
    op.drop_table("audit_events")
    with op.batch_alter_table("repo_access") as batch:
        for name in ("reason", "decided_at", "decided_by", "fields", "status"):
            batch.drop_column(name)
    with op.batch_alter_table("tokens") as batch:
        for name in ("last_used_at", "revoked_at", "expires_at", "scopes"):
            batch.drop_column(name)
