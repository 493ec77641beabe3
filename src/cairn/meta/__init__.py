"""Metadata storage: one SQLAlchemy schema for SQLite and PostgreSQL, its Alembic migrations, and the
connection handling (SQLite in WAL mode with one writer at a time, ``BEGIN IMMEDIATE`` for writes).

The registry is the only user: it opens a :class:`Database` from a URL, runs :func:`migrate`, and issues
typed SQLAlchemy Core statements over the tables in :mod:`cairn.meta.schema`.
"""

from __future__ import annotations

from cairn.meta.db import Database, now_us
from cairn.meta.schema import (
    audit_events,
    blobs,
    commits,
    files,
    metadata,
    org_members,
    orgs,
    refs,
    repo_access,
    repo_objects,
    repo_redirects,
    repos,
    settings,
    tokens,
    users,
)

__all__ = [
    "Database",
    "audit_events",
    "blobs",
    "commits",
    "files",
    "metadata",
    "now_us",
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
