"""Connections and transactions (SQLAlchemy Core), on SQLite or PostgreSQL.

Core, not the ORM, on the hot path: one SELECT, one versioned UPDATE and one
INSERT per transition. What SQLite and PostgreSQL do differently (WAL and
`BEGIN IMMEDIATE`, autocommit reads, snapshots, ON CONFLICT, locks) is the
backend's (`backend.py`), chosen from the URL and kept as `Store.backend`.
There is deliberately no "set state" helper here: state changes only through
the runtime (deny by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SAEngine

from caseflow.errors import ConcurrentChange, LockTimeout, StorageError, UsageError
from caseflow.store.backend import Backend, backend_for
from caseflow.store.driver_sql import flush_pending
from caseflow.store.held import Held
from caseflow.store.locks import LockWait
from caseflow.store.urls import refuse_in_memory, shown_url

DEFAULT_URL = "sqlite:///caseflow.db"


def create_engine(url: str | None = None, readonly: bool = False, wait: LockWait | None = None) -> SAEngine:
    url = url or DEFAULT_URL
    try:
        return backend_for(url).create_engine(url, readonly, wait)
    except (sa.exc.ArgumentError, ImportError) as exc:
        hint = " (the PostgreSQL driver is an extra: pip install 'caseflow[postgres]')" \
            if isinstance(exc, ImportError) and "psycopg" in str(exc) else ""
        raise StorageError(f"cannot use database {shown_url(url)!r}: {_masked(exc, url)}{hint}") from None


class Store:
    """A database connection factory plus the one-transaction-per-action discipline.

    `readonly` (the read-only commands: show, list, history, audit, audit verify, report, …): `engine`
    only reads — on SQLite a `mode=ro` file that never takes the write lock (so a read-only evidence
    copy works), on PostgreSQL READ ONLY transactions. The few writes such a command may still make
    (an audited unmask, a refusal for the attempts log, the first use of a database) go through
    `writer`, opened only then. `wait`: how long a writer waits for a lock (store/locks.py).
    """

    def __init__(self, url: str | None = None, readonly: bool = False, wait: LockWait | None = None) -> None:
        self.url = url or DEFAULT_URL
        self.backend: Backend = backend_for(self.url)
        refuse_in_memory(self.url, self.backend.in_memory(self.url))
        self.readonly = readonly
        self.wait = wait or LockWait.from_env()
        self.engine = create_engine(self.url, readonly, self.wait)
        sa.event.listen(self.engine, "before_execute", flush_pending)     # see driver_sql.pending_write
        self._writer: SAEngine | None = None if readonly else self.engine
        self._held = Held()
        sa.event.listen(self.engine, "engine_disposed", self._disposed)

    @property
    def writer(self) -> SAEngine:
        """The engine writes go through (the same as `engine` unless the store is read-only)."""
        if self._writer is None:
            self._writer = create_engine(self.url, False, self.wait)
            sa.event.listen(self._writer, "before_execute", flush_pending)
            sa.event.listen(self._writer, "engine_disposed", self._disposed)
        return self._writer

    def _disposed(self, _engine: SAEngine) -> None:
        self._held.drop()

    def dispose(self) -> None:
        self._held.close()
        self.engine.dispose()
        if self._writer is not None and self._writer is not self.engine:
            self._writer.dispose()

    @contextmanager
    def write(self, conn: Connection | None = None) -> Iterator[Connection]:
        """One write transaction; SQLite takes the write lock at BEGIN. `conn`: the action's own
        connection (`action`), on which the snapshot was read; else a connection from the pool."""
        try:
            if conn is None:
                with self.writer.begin() as conn:
                    yield conn
            else:
                if conn.in_transaction():        # a read on it began one (a definition loaded): end it
                    conn.commit()
                with conn.begin():               # (its options stay the action's: no event, no flag to flip)
                    self.backend.begin_write(conn, self.wait)
                    yield conn
        except sa.exc.IntegrityError as exc:
            # a unique key taken by a concurrent writer between our read and our write
            raise ConcurrentChange(_short(exc)) from None
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.InternalError) as exc:
            # InternalError: e.g. PostgreSQL refusing a write in a read-only session (a standby, a copy)
            if self.backend.is_lock_timeout(exc):
                raise LockTimeout(self.wait.timeout) from None
            raise StorageError(f"database error, nothing was changed: {_short(exc)}") from None

    @contextmanager
    def action(self) -> Iterator[Connection]:
        """One connection for a whole action: the snapshot is read on it (no transaction of its own;
        the versioned UPDATE is what makes the action safe), then `write(conn)` commits on it.
        The connection of the action just before, if it ended a moment ago, is used again (held.py)."""
        conn = None
        try:
            conn = self._held.take() or self.writer.connect()     # an action writes: the writer's connection
            options = self.backend.action_options()
            if not options.items() <= conn.get_execution_options().items():     # (a kept one has them already)
                conn.execution_options(**options)
            yield conn
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
                raise StorageError(f"database error: {_short(exc)}") from None
            raise
        self._held.keep(conn)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(**self.backend.read_options())
                with conn.begin():
                    yield conn
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise self._failed(exc) from None

    @contextmanager
    def consistent(self) -> Iterator[Connection]:
        """A read transaction in which every query sees the same snapshot (a case must not
        move between reading it and its log)."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(**self.backend.consistent_options())
                with conn.begin():
                    yield conn
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise self._failed(exc) from None

    @contextmanager
    def read_one(self) -> Iterator[Connection]:
        """For a single SELECT (the snapshot an action decides on): no transaction round trips.

        The optimistic version check at write time is what makes the action safe, not
        isolation of this read.
        """
        try:
            with self.engine.connect() as conn:
                yield conn.execution_options(**self.backend.single_read_options())
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise self._failed(exc) from None

    def migrate(self, simulation: bool = False) -> None:
        """Create or upgrade the schema. A new database records whether it is a simulation
        (only then is `--now` honoured); `simulation` on an existing live database is refused."""
        from caseflow.store import migrate
        from caseflow.store import settings as db_settings
        try:
            before = migrate.current(self)
            if before != migrate.HEAD:
                migrate.upgrade(self)
            elif not simulation:
                return                      # the usual case: one read, no write lock
            with self.read() as conn:
                found = db_settings.mode(conn)
            if found is None:
                with self.write() as conn:
                    found = db_settings.mode(conn)
                    if found is None:
                        from datetime import UTC, datetime
                        db_settings.record_mode(conn, simulation,
                                                datetime.now(UTC).isoformat().replace("+00:00", "Z"))
                        return
            if simulation and found != db_settings.SIMULATION:
                raise UsageError(f"--simulation applies only when a database is created; {self.shown_url} "
                                 f"is a {found} database")
        except sa.exc.DBAPIError as exc:
            raise StorageError(f"database error: {_short(exc)}") from None

    @property
    def shown_url(self) -> str:
        """The URL for messages: its password, if any, masked."""
        return shown_url(self.url)

    def _failed(self, exc: Exception) -> StorageError:
        """A read's error: a lock wait that timed out (a read behind a migration's lock), else the database's."""
        return LockTimeout(self.wait.timeout) if self.backend.is_lock_timeout(exc) else \
            StorageError(f"database error: {_short(exc)}")

    def simulation(self) -> bool:
        from caseflow.store import settings as db_settings
        with self.read() as conn:
            return db_settings.mode(conn) == db_settings.SIMULATION


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0]


def _masked(exc: Exception, url: str) -> str:
    """A driver's message with the URL's password, should it quote it, masked."""
    text = str(exc)
    password = _password(url)
    return text.replace(password, "***") if password else text


def _password(url: str) -> str | None:
    try:
        return sa.engine.make_url(url).password
    except sa.exc.ArgumentError:
        return None
