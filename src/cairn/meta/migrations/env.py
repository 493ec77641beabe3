"""Alembic environment: runs migrations on the connection of the :class:`~cairn.meta.db.Database` given
in ``config.attributes["database"]``."""

from __future__ import annotations

from alembic import context

from cairn.meta.schema import metadata

db = context.config.attributes["database"]
with db.engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=db.is_sqlite)
    with context.begin_transaction():
        context.run_migrations()
