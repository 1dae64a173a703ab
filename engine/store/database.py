"""Connections and transactions (SQLAlchemy Core), on SQLite or PostgreSQL.

Core, not the ORM, on the hot path: one SELECT, one versioned UPDATE and one
INSERT per transition. SQLite runs in WAL with a busy timeout and takes its
write lock up front (`BEGIN IMMEDIATE`) so two writers queue instead of
failing half-way; PostgreSQL relies on row locks and the version column.
There is deliberately no "set state" helper here: state changes only through
the runtime (deny by default).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SAEngine

from caseflow.errors import ConcurrentChange, StorageError

DEFAULT_URL = "sqlite:///caseflow.db"


def upsert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has on_conflict_do_nothing / _do_update (both backends)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert(table)


def _sqlite_setup(engine: SAEngine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.isolation_level = None       # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={os.environ.get('CASEFLOW_SQLITE_SYNC', 'NORMAL')}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("caseflow_single_read"):
            return                              # one SELECT is atomic by itself: no BEGIN/COMMIT
        conn.exec_driver_sql("BEGIN" if options.get("caseflow_readonly") else "BEGIN IMMEDIATE")


def create_engine(url: str | None = None) -> SAEngine:
    url = url or DEFAULT_URL
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": 30})
            _sqlite_setup(engine)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StorageError(f"cannot use database {url!r}: {exc}") from None
    return engine


class Store:
    """A database connection factory plus the one-transaction-per-action discipline."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or DEFAULT_URL
        self.engine = create_engine(self.url)
        self.is_postgres = self.engine.dialect.name == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; SQLite takes the write lock at BEGIN."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.IntegrityError as exc:
            # a unique key taken by a concurrent writer between our read and our write
            raise ConcurrentChange(_short(exc)) from None
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise StorageError(f"database error, nothing was changed: {_short(exc)}") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(caseflow_readonly=True)
                with conn.begin():
                    yield conn
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise StorageError(f"database error: {_short(exc)}") from None

    @contextmanager
    def read_one(self) -> Iterator[Connection]:
        """For a single SELECT (the snapshot an action decides on): no transaction round trips.

        The optimistic version check at write time is what makes the action safe, not
        isolation of this read.
        """
        try:
            with self.engine.connect() as conn:
                options: dict[str, Any] = {"caseflow_readonly": True, "caseflow_single_read": True}
                if self.is_postgres:
                    options["isolation_level"] = "AUTOCOMMIT"
                yield conn.execution_options(**options)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise StorageError(f"database error: {_short(exc)}") from None

    def migrate(self) -> None:
        from caseflow.store import migrate
        try:
            migrate.upgrade(self)
        except sa.exc.DBAPIError as exc:
            raise StorageError(f"database error: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
