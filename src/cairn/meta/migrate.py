"""Bringing a database to the current schema with Alembic, from inside the program (no alembic.ini)."""

from __future__ import annotations

from pathlib import Path

from cairn.meta.db import Database

__all__ = ["current_revision", "migrate"]

_SCRIPTS = Path(__file__).parent / "migrations"


def _config(db: Database) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["database"] = db
    return cfg


def migrate(db: Database) -> None:
    """Upgrade ``db`` to the newest migration (idempotent; serialised with other writers on SQLite)."""
    from alembic import command
    from alembic.config import Config

    cfg = _config(db)
    assert isinstance(cfg, Config)
    if db.is_sqlite:
        with db._write_lock:
            command.upgrade(cfg, "head")
    else:
        command.upgrade(cfg, "head")


def current_revision(db: Database) -> str | None:
    """The Alembic revision the database is at, or ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        rev: str | None = MigrationContext.configure(conn).get_current_revision()
        return rev
