"""The tables. Times are integer microseconds since the epoch (UTC) so both databases agree exactly.

A commit's tree is stored in full (one ``files`` row per path per commit): commits are immutable, and a
tree is read far more often than written. Rows refer to content by sha256; the bytes live in the blob store.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "audit_events",
    "blobs",
    "commits",
    "discussion_events",
    "discussions",
    "files",
    "metadata",
    "org_members",
    "orgs",
    "refs",
    "repo_access",
    "repo_objects",
    "repo_redirects",
    "repos",
    "settings",
    "tokens",
    "users",
]

metadata = MetaData()

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(96), nullable=False, unique=True),
    Column("fullname", String(200), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    # v0005_access: fine-grained scopes (JSON list, "" = the whole account), expiry, revocation, last use
    Column("scopes", Text, nullable=False, default="", server_default=""),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
)

repos = Table(
    "repos",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type", String(16), nullable=False),
    Column("namespace", String(96), nullable=False),
    Column("name", String(96), nullable=False),
    Column("private", Boolean, nullable=False, default=False),
    Column("gated", String(16), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("last_modified", BigInteger, nullable=False),
    Column("tags", Text, nullable=False, default="[]"),
    Column("card_data", Text, nullable=False, default="{}"),
    Column("pipeline_tag", String(64), nullable=True),
    Column("library_name", String(64), nullable=True),
    Column("downloads", BigInteger, nullable=False, default=0),
    Column("likes", BigInteger, nullable=False, default=0),
    UniqueConstraint("type", "namespace", "name", name="uq_repos_type_ns_name"),
)

commits = Table(
    "commits",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("parent_id", String(40), nullable=True),
    Column("title", Text, nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("author", String(96), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_commits_repo", "repo_id"),
)

files = Table(
    "files",
    metadata,
    Column("commit_id", String(40), ForeignKey("commits.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("git_sha1", String(40), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("lfs", Boolean, nullable=False),
    Column("last_commit", String(40), nullable=False),
    Index("ix_files_sha256", "sha256"),  # v0009_blob_refs
)

refs = Table(
    "refs",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("commit_id", String(40), nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("git_sha1", String(40), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

repo_access = Table(
    "repo_access",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    # v0005_access: a row is an access request; only "accepted" ones open a gated repo's files
    Column("status", String(16), nullable=False, default="accepted", server_default="accepted"),
    Column("fields", Text, nullable=False, default="{}", server_default="{}"),
    Column("decided_by", String(96), nullable=True),
    Column("decided_at", BigInteger, nullable=True),
    Column("reason", Text, nullable=True),
)

repo_redirects = Table(
    "repo_redirects",
    metadata,
    Column("type", String(16), primary_key=True),
    Column("namespace", String(96), primary_key=True),
    Column("name", String(96), primary_key=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
)

orgs = Table(
    "orgs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(96), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

org_members = Table(
    "org_members",
    metadata,
    Column("org_id", Integer, ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False),
)

# Which blob objects a repo may reference: a row is added only when the bytes were uploaded (and hashed)
# through that repo, so a commit cannot name another repo's blob by its (public) sha256.
repo_objects = Table(
    "repo_objects",
    metadata,
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(96), nullable=True),
    Column("action", String(64), nullable=False),
    Column("namespace", String(96), nullable=True),
    Column("repo_id", Integer, nullable=True),  # no foreign key: events outlive a deleted repo
    Column("repo", String(220), nullable=True),
    Column("target", String(256), nullable=True),
    Column("detail", Text, nullable=False, default="{}", server_default="{}"),
    Index("ix_audit_repo", "repo_id", "id"),
    Index("ix_audit_namespace", "namespace", "id"),
)

# v0010_discussions: discussions and pull requests share one number sequence per repo. A pull request's
# changes live on the ref ``refs/pr/N`` (``refs`` row of kind "pr"); ``base_commit`` is the target's head
# when it was opened (the merge base), ``merge_commit`` the commit its merge made on the target.
discussions = Table(
    "discussions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repo_id", Integer, ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    Column("num", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("author", String(96), nullable=False),
    Column("is_pull_request", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("target_branch", String(256), nullable=True),
    Column("base_commit", String(40), nullable=True),
    Column("merge_commit", String(40), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("repo_id", "num", name="uq_discussions_repo_num"),
)

# One row per event of a discussion: kind comment | status-change | title-change | commit. ``data`` is
# JSON (a comment's edit history, a status, a title change, a commit's id and title).
discussion_events = Table(
    "discussion_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("discussion_id", Integer, ForeignKey("discussions.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("author", String(96), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("hidden", Boolean, nullable=False, default=False),
    Column("data", Text, nullable=False, default="{}"),
    Index("ix_discussion_events_discussion", "discussion_id", "id"),
)
