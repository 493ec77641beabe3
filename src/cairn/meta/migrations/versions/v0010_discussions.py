"""Discussions and pull requests (one number sequence per repo) and their events.

A pull request's changes live on the ref ``refs/pr/N`` (a ``refs`` row of kind ``pr``), so no table is
needed for them; these tables hold the conversation and the PR's status, merge base and merge commit.

Revision ID: 0010_discussions
Revises: 0009_blob_refs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_discussions"
down_revision = "0009_blob_refs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "discussions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("num", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("author", sa.String(96), nullable=False),
        sa.Column("is_pull_request", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("target_branch", sa.String(256), nullable=True),
        sa.Column("base_commit", sa.String(40), nullable=True),
        sa.Column("merge_commit", sa.String(40), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("repo_id", "num", name="uq_discussions_repo_num"),
    )
    op.create_table(
        "discussion_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "discussion_id",
            sa.Integer,
            sa.ForeignKey("discussions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("author", sa.String(96), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_discussion_events_discussion", "discussion_events", ["discussion_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_discussion_events_discussion", "discussion_events")
    op.drop_table("discussion_events")
    op.drop_table("discussions")
