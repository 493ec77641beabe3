"""Tables of the trust-on-upload and discovery features (migration ``0006_trust``).

- ``blob_inspections``: one row per blob sha256, written once when the blob is first inspected: the scan
  verdict (``safe`` / ``unsafe`` / ``error`` / ``skipped``), the worst severity, the scan report as JSON,
  and for safetensors files the parameter counts by dtype. Per-file results of a revision are the join of
  ``files`` with this table on sha256, so a blob is scanned once however many commits name it.
- ``quarantine_overrides``: an admin's decision to release a quarantined blob in one repo.
- ``revision_trust``: per commit, the verified signer (or why there is none), the safetensors totals and
  the license check of the model card.
- ``repo_trust``: per repo, whether commits must carry a valid signature and which public keys count.
- ``namespace_trust``: the same for every repo of a user or organisation namespace (set by the operator).
- ``repo_index``: per repo, the discovery facts of ``main`` (total parameters, scan status).
- ``lineage_edges``: child repo -> ``base_model`` with its relation, from the model card.
- ``likes``: who likes which repo.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from cairn.meta.schema import metadata

__all__ = [
    "blob_inspections",
    "likes",
    "lineage_edges",
    "namespace_trust",
    "quarantine_overrides",
    "repo_index",
    "repo_trust",
    "revision_trust",
]

blob_inspections = Table(
    "blob_inspections",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=True),
    Column("report", Text, nullable=False),
    Column("parameters", Text, nullable=True),
    Column("scanner", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

quarantine_overrides = Table(
    "quarantine_overrides",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("by", String(96), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

revision_trust = Table(
    "revision_trust",
    metadata,
    Column("commit_id", String(40), ForeignKey("commits.id", ondelete="CASCADE"), primary_key=True),
    Column("signature", Text, nullable=False),
    Column("safetensors", Text, nullable=True),
    Column("license_check", Text, nullable=True),
)

repo_trust = Table(
    "repo_trust",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("require_signature", Boolean, nullable=False),
    Column("trusted_keys", Text, nullable=False),
)

namespace_trust = Table(
    "namespace_trust",
    metadata,
    Column("namespace", String(96), primary_key=True),
    Column("require_signature", Boolean, nullable=False),
    Column("trusted_keys", Text, nullable=False),
)

repo_index = Table(
    "repo_index",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("parameters", BigInteger, nullable=True),
    Column("scan_status", String(16), nullable=False),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("base_model", String(200), primary_key=True),
    Column("relation", String(32), nullable=False),
    Index("ix_lineage_base", "base_model"),
)

likes = Table(
    "likes",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)
