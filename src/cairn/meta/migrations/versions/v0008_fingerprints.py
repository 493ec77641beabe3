"""Verified lineage: weight fingerprints per blob and an index of tensor hashes.

Blobs stored before this migration have no fingerprint; they get one when a commit adds them again
(the lineage API says "not fingerprinted" until then).

Revision ID: 0008_fingerprints
Revises: 0007_repo_objects
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_fingerprints"
down_revision = "0007_repo_objects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_fingerprints",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("arch", sa.String(64), nullable=False),
        sa.Column("tensors", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_blob_fingerprints_arch", "blob_fingerprints", ["arch"])
    op.create_table(
        "tensor_index",
        sa.Column("tensor_sha256", sa.String(64), primary_key=True),
        sa.Column("blob_sha256", sa.String(64), primary_key=True),
        sa.Column("nbytes", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tensor_index")
    op.drop_index("ix_blob_fingerprints_arch", "blob_fingerprints")
    op.drop_table("blob_fingerprints")
