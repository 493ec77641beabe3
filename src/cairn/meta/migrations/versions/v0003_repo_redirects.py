"""Old names of moved repos, so that their URLs keep working (same-origin redirects).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repo_redirects",
        sa.Column("type", sa.String(16), primary_key=True),
        sa.Column("namespace", sa.String(96), primary_key=True),
        sa.Column("name", sa.String(96), primary_key=True),
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("repo_redirects")
