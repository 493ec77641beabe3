"""Tables of verified lineage (migration ``0008_fingerprints``).

- ``blob_fingerprints``: one row per weight blob (safetensors or torch zip), written when the blob is
  first stored: its architecture key (tensor names and shapes) and the fingerprint (per-tensor sha256
  and value sketch) as JSON. A revision's fingerprint is the union over its weight files.
- ``tensor_index``: tensor sha256 → the blobs holding that tensor, for tensors of at least
  :data:`INDEXED_TENSOR_BYTES`, so "which blobs share tensors with this one" is an index lookup.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from cairn.meta.schema import metadata

__all__ = ["INDEXED_TENSOR_BYTES", "blob_fingerprints", "tensor_index"]

INDEXED_TENSOR_BYTES = 1024  # tiny tensors (biases, norms at 0 or 1) are alike in unrelated models

blob_fingerprints = Table(
    "blob_fingerprints",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("arch", String(64), nullable=False),
    Column("tensors", Integer, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_blob_fingerprints_arch", "arch"),
)

tensor_index = Table(
    "tensor_index",
    metadata,
    Column("tensor_sha256", String(64), primary_key=True),
    Column("blob_sha256", String(64), primary_key=True),
    Column("nbytes", BigInteger, nullable=False),
    Index("ix_tensor_index_blob", "blob_sha256"),  # v0009_blob_refs
)
