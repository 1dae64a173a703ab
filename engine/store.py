"""Tables and transactions (SQLAlchemy Core), on SQLite or PostgreSQL.

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
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine as SAEngine

from .errors import ConcurrentChange, StorageError

metadata = sa.MetaData()

definitions = sa.Table(
    "definitions", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("workflow", sa.String(64), nullable=False, index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

cases = sa.Table(
    "cases", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("workflow", sa.String(64), nullable=False),
    sa.Column("definition", sa.String(64), sa.ForeignKey("definitions.sha256"), nullable=False),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("signoffs", sa.Text, nullable=False, server_default="[]"),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("parent_case", sa.String(32), nullable=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index("ix_cases_workflow_state", "workflow", "state"),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(32), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("workflow", sa.String(64), nullable=False),
    sa.Column("definition", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("from_state", sa.String(64), nullable=True),
    sa.Column("to_state", sa.String(64), nullable=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("changes", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("effective_at", sa.String(32), nullable=False),
    sa.Column("recorded_at", sa.String(32), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("case_id", "seq", name="uq_audit_case_seq"),
    sa.Index("ix_audit_actor", "actor"),
    sa.Index("ix_audit_effective", "effective_at"),
    sa.Index("ix_audit_workflow_event", "workflow", "event"),
)

attempts = sa.Table(
    "attempts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64), nullable=True),
    sa.Column("workflow", sa.String(64), nullable=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("error", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("effective_at", sa.String(32), nullable=False),
    sa.Column("recorded_at", sa.String(32), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

timers = sa.Table(
    "timers", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(32), nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),            # sla | timer
    sa.Column("status", sa.String(16), nullable=False),         # running paused met breached fired cancelled
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("due_at", sa.String(32), nullable=True),          # NULL while paused
    sa.Column("next_at", sa.String(32), nullable=True),         # next warning or the due time; what the sweeper scans
    sa.Column("warned", sa.Integer, nullable=False, server_default="0"),
    sa.Column("provisional", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("paused_at", sa.String(32), nullable=True),
    sa.Column("remaining_s", sa.Float, nullable=True),          # working/clock seconds left while paused
    sa.Column("ended_at", sa.String(32), nullable=True),
    sa.UniqueConstraint("case_id", "name", name="uq_timer_case_name"),
    sa.Index("ix_timers_next_at", "next_at"),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(32), nullable=False, index=True),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("delivered_at", sa.String(32), nullable=True),
)

case_keys = sa.Table(
    "case_keys", metadata,
    sa.Column("workflow", sa.String(64), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(512), primary_key=True),
    sa.Column("case_id", sa.String(32), nullable=False),
)

decision_counts = sa.Table(
    "decision_counts", metadata,
    sa.Column("workflow", sa.String(64), primary_key=True),
    sa.Column("decision", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

checkpoints = sa.Table(
    "checkpoints", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("heads", sa.Text, nullable=False),                # {case_id: [seq, hash]}
    sa.Column("digest", sa.String(64), nullable=False),
)

DEFAULT_URL = "sqlite:///caseflow.db"


def upsert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has on_conflict_do_nothing / _do_update (both backends)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert(table)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


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
        from . import migrate
        try:
            migrate.upgrade(self)
        except sa.exc.DBAPIError as exc:
            raise StorageError(f"database error: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
