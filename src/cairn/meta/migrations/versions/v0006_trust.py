"""Trust on upload and discovery: blob inspections, quarantine overrides, per-revision trust records,
repo and namespace signature settings, the discovery index, lineage edges and likes.

Revision ID: 0006_trust
Revises: 0005_access
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_trust"
down_revision = "0005_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_inspections",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=True),
        sa.Column("scanner", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "quarantine_overrides",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("by", sa.String(96), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "revision_trust",
        sa.Column(
            "commit_id", sa.String(40), sa.ForeignKey("commits.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("safetensors", sa.Text, nullable=True),
        sa.Column("license_check", sa.Text, nullable=True),
    )
    op.create_table(
        "repo_trust",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("require_signature", sa.Boolean, nullable=False),
        sa.Column("trusted_keys", sa.Text, nullable=False),
    )
    op.create_table(
        "namespace_trust",
        sa.Column("namespace", sa.String(96), primary_key=True),
        sa.Column("require_signature", sa.Boolean, nullable=False),
        sa.Column("trusted_keys", sa.Text, nullable=False),
    )
    op.create_table(
        "repo_index",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("parameters", sa.BigInteger, nullable=True),
        sa.Column("scan_status", sa.String(16), nullable=False),
    )
    op.create_table(
        "lineage_edges",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("base_model", sa.String(200), primary_key=True),
        sa.Column("relation", sa.String(32), nullable=False),
    )
    op.create_index("ix_lineage_base", "lineage_edges", ["base_model"])
    op.create_table(
        "likes",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_lineage_base", "lineage_edges")
    for name in (
        "likes",
        "lineage_edges",
        "repo_index",
        "namespace_trust",
        "repo_trust",
        "revision_trust",
        "quarantine_overrides",
        "blob_inspections",
    ):
        op.drop_table(name)
