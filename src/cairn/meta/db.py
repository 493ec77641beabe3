"""Opening the database and running transactions deliberately.

SQLite: WAL journal, ``synchronous=NORMAL``, foreign keys on, a busy timeout, and every write transaction
started with ``BEGIN IMMEDIATE`` under one process-wide lock, so writers queue in order instead of failing
half-way with "database is locked". PostgreSQL: plain READ COMMITTED; refs move only by compare-and-swap
``UPDATE ... WHERE commit_id = :expected`` so concurrent writers cannot both win.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from cairn.errors import UsageError

__all__ = ["Database", "now_us"]


def now_us() -> int:
    """Current UTC time in integer microseconds."""
    return time.time_ns() // 1000


class Database:
    """An engine plus the read/write transaction helpers the registry uses."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except Exception as err:  # sqlalchemy raises ArgumentError with a useful text
            raise UsageError(f"invalid database URL: {err}") from None
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._write_lock = threading.Lock()
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})
            _configure_sqlite(self.engine)
        else:
            if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            self.engine = create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (SQLite readers never block the writer in WAL mode)."""
        with self.engine.connect() as conn:
            yield conn
            conn.rollback()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any exception."""
        if self.is_sqlite:
            with self._write_lock, self.engine.connect() as conn:
                conn = conn.execution_options(sqlite_immediate=True)
                with conn.begin():
                    yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("sqlite_immediate"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
