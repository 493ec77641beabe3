"""Initial schema: settings, users, tokens, repos, commits, files, refs, blobs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(96), nullable=False, unique=True),
        sa.Column("fullname", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "repos",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("namespace", sa.String(96), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("private", sa.Boolean, nullable=False),
        sa.Column("gated", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_modified", sa.BigInteger, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("card_data", sa.Text, nullable=False),
        sa.Column("pipeline_tag", sa.String(64), nullable=True),
        sa.Column("library_name", sa.String(64), nullable=True),
        sa.Column("downloads", sa.BigInteger, nullable=False),
        sa.Column("likes", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("type", "namespace", "name", name="uq_repos_type_ns_name"),
    )
    op.create_table(
        "commits",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("parent_id", sa.String(40), nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("author", sa.String(96), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_commits_repo", "commits", ["repo_id"])
    op.create_table(
        "files",
        sa.Column(
            "commit_id", sa.String(40), sa.ForeignKey("commits.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("git_sha1", sa.String(40), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("lfs", sa.Boolean, nullable=False),
        sa.Column("last_commit", sa.String(40), nullable=False),
    )
    op.create_table(
        "refs",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("commit_id", sa.String(40), nullable=False),
    )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("git_sha1", sa.String(40), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("blobs", "refs", "files", "commits", "repos", "tokens", "users", "settings"):
        op.drop_table(name)
