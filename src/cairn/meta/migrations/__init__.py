"""Alembic migration scripts for :mod:`cairn.meta.schema` (run by :func:`cairn.meta.migrate.migrate`)."""
