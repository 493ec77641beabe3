"""Indexes for questions asked by blob: which files name a blob (garbage collection, which repos hold a
scanned file) and which tensor-index rows belong to a blob (dropped with it).

Revision ID: 0009_blob_refs
Revises: 0008_fingerprints
"""

from __future__ import annotations

from alembic import op

revision = "0009_blob_refs"
down_revision = "0008_fingerprints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_files_sha256", "files", ["sha256"])
    op.create_index("ix_tensor_index_blob", "tensor_index", ["blob_sha256"])


def downgrade() -> None:
    op.drop_index("ix_tensor_index_blob", table_name="tensor_index")
    op.drop_index("ix_files_sha256", table_name="files")
