"""Per-repo record of the blob objects a repo may reference (security review finding 1).

The blob store is shared by all repos; without this table a commit could name any stored sha256 and so
read another repo's (gated or private) file. Backfilled from every tree each repo already has.

Revision ID: 0007_repo_objects
Revises: 0006_trust
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_repo_objects"
down_revision = "0006_trust"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repo_objects",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
    )
    op.execute(
        "INSERT INTO repo_objects (repo_id, sha256) "
        "SELECT DISTINCT c.repo_id, f.sha256 FROM files f JOIN commits c ON c.id = f.commit_id"
    )


def downgrade() -> None:
    op.drop_table("repo_objects")
