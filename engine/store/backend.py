"""The storage seam: every difference between SQLite and PostgreSQL, in one object per dialect.

The rest of caseflow writes portable SQLAlchemy Core and asks the backend for
whatever the two databases do differently: how a connection is set up and a
write transaction begins, insert-or-ignore and counters (``ON CONFLICT``),
advisory locks, ``FOR UPDATE SKIP LOCKED`` claims over a list of ids, a
consistent snapshot for a multi-query read, a single autocommit read, the
append-only trigger DDL, and read-only connections. The backend is chosen from
the URL (``backend_for``) or from a live connection (``backend_of``).

To add a backend: subclass ``Backend``, set ``name`` to the SQLAlchemy dialect
name and register it in ``BACKENDS`` (docs/architecture.md, "add a backend").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.sql.elements import ColumnElement

from caseflow.errors import StorageError
from caseflow.store.copy_ahead import CopyAhead
from caseflow.store.idle_ping import ping_when_idle as _ping_when_idle
from caseflow.store.locks import PID, LockWait, server_waits_for_lock, watch
from caseflow.store.sqlite_files import begin_immediate, bind_none_and_bool_directly, open_read_only
from caseflow.store.urls import shown_url

LOCKS = {"attempts": 7242001, "checkpoints": 7242002}    # advisory locks: one chain's writers (attempts, checkpoints)

# PostgreSQL least privilege (docs/security.md): what the runtime role may do to each table.
LOG_TABLES = ("audit", "attempts", "checkpoints", "orgs", "definitions")     # append-only: SELECT, INSERT
READ_TABLES = ("settings", "alembic_version")                                # written by the owner only
WORK_TABLES = ("cases", "case_queue", "timers", "sla_windows", "outbox", "case_keys", "decision_counts",
               "migration_runs")

READONLY, SINGLE_READ = "caseflow_readonly", "caseflow_single_read"    # options the SQLite begin hook reads


class Backend:
    """What one database dialect does its own way. Stateless: one shared instance per dialect."""

    name: ClassVar[str] = ""
    explain: ClassVar[str] = "EXPLAIN "          # prefix that shows the plan of a query (inbox --explain)
    # Operators log in as themselves (the person comes from the login) and the runtime role owns nothing,
    # so only `caseflow db init` / `db upgrade` (as the owner) migrate. SQLite: one file, migrated on use.
    has_logins: ClassVar[bool] = False
    # The database is a file the first writer creates: a read-only open of a missing one is "no schema yet".
    creates_on_open: ClassVar[bool] = False

    # -- URLs (store/urls.py) --------------------------------------------------------------------
    def database_file(self, url: str) -> Path | None:
        """The file the URL names (to keep `-o` off it); None for a server database."""
        return None

    def in_memory(self, url: str) -> bool:
        """Whether the database vanishes when the command ends (refused: store/urls.py)."""
        return False

    # -- connections --------------------------------------------------------------------------
    def create_engine(self, url: str, readonly: bool = False, wait: LockWait | None = None) -> SAEngine:
        """An engine for `url`; `readonly`: its connections only read; writers wait as `wait` says (locks.py)."""
        engine = sa.create_engine(url)
        _ping_when_idle(engine)
        return engine

    def action_options(self) -> dict[str, Any]:
        """Options of an action's connection (`Store.action`), kept for its write (`begin_write`): the snapshot
        is a single read; PostgreSQL's stays in autocommit (a plain step's write is one statement)."""
        return self.single_read_options()

    def begin_write(self, conn: Connection, wait: LockWait) -> None:
        """`Store.write` on an action's connection (its options stay a single read's): SQLite takes its lock."""

    def more_statements(self, conn: Connection) -> None:
        """Before the first statement of a write that is more than the case row and its audit rows."""

    def send_ahead(self, conn: Connection) -> Any:
        """Where the server can take an import's rows while the client works out the next ones, a sender with
        `copy(table, columns, rows)`, `wait()`, `abandon()` (store/copy_ahead.py); else None (batch_writes.py)."""
        return None

    # Hot-path SQL (store/driver_sql.py): a named parameter for the DB-API driver; whether a data-modifying
    # CTE makes the versioned UPDATE and the audit INSERT one statement; whether it is sent numbered (`$1, …`).
    # `one_writer`: a write transaction holds the whole database, so it may set triggers aside (an import).
    # `table_exists`: one row if the table `{}` names is there (store/migrate.py, at every start: not reflection).
    param_style: ClassVar[str] = ":{}"
    one_statement_write, numbered, one_writer = False, False, False
    table_exists: ClassVar[str] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = {}"

    def is_lock_timeout(self, exc: BaseException) -> bool:
        """The database gave up waiting for a lock (`lock_timeout`)."""
        return False

    def read_options(self) -> dict[str, Any]:
        """Execution options of a read-only connection."""
        return {READONLY: True}

    def single_read_options(self) -> dict[str, Any]:
        """Execution options for one SELECT outside any transaction (no BEGIN/COMMIT round trips)."""
        return {READONLY: True, SINGLE_READ: True}

    def consistent_options(self) -> dict[str, Any]:
        """Execution options under which every query of one transaction sees the same snapshot."""
        return self.read_options()

    # -- statements ---------------------------------------------------------------------------
    def insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT."""
        raise NotImplementedError

    def insert_or_ignore(self, table: sa.Table, keys: list[str], **values: Any) -> Any:
        """INSERT a row unless one with the same `keys` exists (a race between two first writers is fine)."""
        return self.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)

    def increment(self, table: sa.Table, keys: list[str], column: str, **values: Any) -> Any:
        """INSERT the row with `column` = 1 or add 1 to it, atomically; RETURNING the new value."""
        col = table.c[column]
        return (self.insert(table).values(**values, **{column: 1})
                .on_conflict_do_update(index_elements=keys, set_={column: col + 1})
                .returning(col))

    def one_of(self, column: sa.Column[Any], param: str) -> ColumnElement[bool]:
        """`column` is one of the list bound as `param` (an expanding IN)."""
        return column.in_(sa.bindparam(param, expanding=True))

    def skip_locked(self, select: sa.Select[Any]) -> sa.Select[Any]:
        """Lock the selected rows, skipping rows another transaction holds."""
        return select.with_for_update(skip_locked=True)

    def lock(self, conn: Connection, name: str) -> None:
        """Serialize the writers of one chain until the transaction ends (see LOCKS)."""

    # -- identity and privileges -------------------------------------------------------------
    def session_login(self, conn: Connection) -> str | None:
        """The database login of this session (None where there are no logins)."""
        return None

    def grant_runtime(self, conn: Connection, role: str) -> list[str]:
        """Grant a runtime role exactly what the engine needs; returns the statements run."""
        from caseflow.errors import UsageError
        raise UsageError(f"--grant applies to PostgreSQL; {self.name} has no roles")

    # -- DDL ----------------------------------------------------------------------------------
    def append_only_ddl(self, table: str) -> list[str]:
        """Statements installing triggers that refuse UPDATE and DELETE on `table`."""
        raise NotImplementedError

    def drop_append_only_ddl(self, table: str) -> list[str]:
        """Statements removing them again (what an intruder does first; the tests do it too)."""
        raise NotImplementedError

    def append_only_triggers(self, table: str) -> list[str]:
        """The names of the triggers `append_only_ddl` creates."""
        raise NotImplementedError

    def enabled_triggers(self, conn: Connection) -> set[str]:
        """Names of the triggers in force on this schema (present, and enabled)."""
        raise NotImplementedError

    def row_trigger_ddl(self, name: str, table: str, event: str, body: str, when: str | None = None,
                        only: str | None = None) -> tuple[list[str], list[str]]:
        """(create, drop) of an AFTER `event` row trigger running SQL `body` where `only` (no subquery), `when` hold."""
        cond = " AND ".join(f"({c})" for c in (only, when) if c) if only else when
        return ([f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{f' WHEN {cond}' if cond else ''} "
                 f"BEGIN {body}; END"], [f"DROP TRIGGER {name}"])

    def write_grants(self, conn: Connection, tables: tuple[str, ...]) -> list[tuple[str, str, str]]:
        """(grantee, table, privilege) of UPDATE/DELETE/TRUNCATE grants on `tables` to anyone but the owner."""
        return []

    def analyze(self, conn: Connection, table: str | None = None) -> None:
        """Refresh the planner's statistics (after a bulk load), of every table or of `table`."""


class SQLiteBackend(Backend):
    """SQLite in WAL mode; a write transaction takes the write lock at BEGIN (BEGIN IMMEDIATE),
    so writers queue instead of failing half-way, and that lock already serializes chains."""

    name, explain, creates_on_open, one_writer = "sqlite", "EXPLAIN QUERY PLAN ", True, True

    def begin_write(self, conn: Connection, wait: LockWait) -> None:     # (the begin hook began none)
        begin_immediate(conn.connection.dbapi_connection, wait, unless_open=True)

    def database_file(self, url: str) -> Path | None:
        name = (sa.engine.make_url(url).database or "").removeprefix("file:").split("?")[0]
        return Path(name) if name and not self.in_memory(url) else None

    def in_memory(self, url: str) -> bool:
        database = sa.engine.make_url(url).database or ""
        return database in ("", ":memory:") or "mode=memory" in url or database.startswith("file::memory:")

    def create_engine(self, url: str, readonly: bool = False, wait: LockWait | None = None) -> SAEngine:
        """Read-only: a `mode=ro` URI, no journal-mode change, only deferred BEGINs, so it never takes or waits
        for the write lock and works on a file nobody may write. A writer's BEGIN IMMEDIATE waits as `wait` says."""
        wait = wait or LockWait()
        bind_none_and_bool_directly()
        target = sa.engine.make_url(url)
        if readonly and target.database and target.database != ":memory:" and not target.query.get("uri"):
            from urllib.parse import quote
            target = target.set(database="file:" + quote(target.database),
                                query={**target.query, "mode": "ro", "uri": "true"})
        engine = sa.create_engine(target, connect_args={"timeout": wait.first_ms / 1000})
        if readonly and target.query.get("mode") == "ro":
            event.listen(engine, "do_connect", open_read_only)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record) -> None:  # noqa: ANN001
            dbapi_conn.isolation_level = None       # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            if readonly:
                cur.execute("PRAGMA query_only=ON")
            else:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={os.environ.get('CASEFLOW_SQLITE_SYNC', 'NORMAL')}")
            cur.execute(f"PRAGMA busy_timeout={wait.first_ms}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            options = conn.get_execution_options()
            if options.get(SINGLE_READ):
                return                              # one SELECT is atomic by itself: no BEGIN/COMMIT
            if readonly or options.get(READONLY):
                conn.exec_driver_sql("BEGIN")
            else:
                begin_immediate(conn.connection.dbapi_connection, wait)

        return engine

    def insert(self, table: sa.Table) -> Any:
        from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def append_only_ddl(self, table: str) -> list[str]:
        return [f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'caseflow: {verb} on {table} is not allowed: "
                f"the log is append-only'); END" for verb in ("UPDATE", "DELETE")]

    def drop_append_only_ddl(self, table: str) -> list[str]:
        return [f"DROP TRIGGER {table}_no_update", f"DROP TRIGGER {table}_no_delete"]

    def append_only_triggers(self, table: str) -> list[str]:
        return [f"{table}_no_update", f"{table}_no_delete"]

    def enabled_triggers(self, conn: Connection) -> set[str]:
        return {r[0] for r in conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))}


class PostgresBackend(Backend):
    """PostgreSQL: row locks and the version column; autocommit single reads; REPEATABLE READ snapshots."""

    name, has_logins = "postgresql", True

    def create_engine(self, url: str, readonly: bool = False, wait: LockWait | None = None) -> SAEngine:
        """Every session sets `lock_timeout`, says when it waits (store/locks.py); `readonly`: all READ ONLY."""
        engine = sa.create_engine(url)
        _ping_when_idle(engine)
        wait = wait or LockWait()
        ms = max(int(wait.timeout * 1000), 1)      # 0 would mean "wait forever" to PostgreSQL

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, record) -> None:  # noqa: ANN001
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET lock_timeout = {ms}")     # reads too: a migration's exclusive lock
                if readonly:
                    cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            dbapi_conn.commit()
            record.info[PID] = dbapi_conn.info.backend_pid
        url_text = engine.url         # the watcher thread holds no reference to the engine (nor its pool)
        watch(engine, wait, lambda pid: server_waits_for_lock(url_text, pid))
        return engine

    def is_lock_timeout(self, exc: BaseException) -> bool:
        return getattr(getattr(exc, "orig", exc), "sqlstate", None) == "55P03"     # lock_not_available

    def single_read_options(self) -> dict[str, Any]:
        return {**super().single_read_options(), "isolation_level": "AUTOCOMMIT"}

    param_style, one_statement_write, numbered = "%({})s", True, True
    table_exists = "SELECT 1 WHERE to_regclass(CAST({} AS text)) IS NOT NULL"      # (found by the search_path)

    def more_statements(self, conn: Connection) -> None:
        """The action's connection is in autocommit: BEGIN before a write of several statements."""
        dbapi: Any = conn.connection.dbapi_connection
        if dbapi.autocommit and dbapi.info.transaction_status == 0:     # psycopg.pq.TransactionStatus.IDLE
            conn.exec_driver_sql("BEGIN")

    def send_ahead(self, conn: Connection) -> Any:
        return CopyAhead(conn.connection.dbapi_connection, conn.dialect.identifier_preparer.quote)

    def consistent_options(self) -> dict[str, Any]:
        return {**super().consistent_options(), "isolation_level": "REPEATABLE READ"}

    def insert(self, table: sa.Table) -> Any:
        from sqlalchemy.dialects.postgresql import insert
        return insert(table)

    def one_of(self, column: sa.Column[Any], param: str) -> ColumnElement[bool]:
        # One array parameter: the statement text never changes, so the server prepares it once.
        from sqlalchemy.dialects.postgresql import ARRAY
        return column == sa.any_(sa.bindparam(param, type_=ARRAY(column.type)))

    def lock(self, conn: Connection, name: str) -> None:
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({LOCKS[name]})"))

    def session_login(self, conn: Connection) -> str | None:
        return str(conn.execute(sa.text("SELECT session_user")).scalar_one())

    def grant_runtime(self, conn: Connection, role: str) -> list[str]:
        """The runtime role owns nothing, so it can neither UPDATE/DELETE the log nor ALTER TABLE … DISABLE
        TRIGGER; it gets SELECT/INSERT on the log, SELECT on settings, and DML on the working tables."""
        quote = conn.dialect.identifier_preparer.quote
        schema = quote(conn.execute(sa.text("SELECT current_schema()")).scalar_one())
        who = quote(role)

        def tables(names: tuple[str, ...]) -> str:
            return ", ".join(f"{schema}.{quote(t)}" for t in names)

        statements = [
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {who}",
            f"GRANT USAGE ON SCHEMA {schema} TO {who}",
            f"GRANT SELECT, INSERT ON {tables(LOG_TABLES)} TO {who}",
            f"GRANT SELECT ON {tables(READ_TABLES)} TO {who}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables(WORK_TABLES)} TO {who}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {who}",
        ]
        for statement in statements:
            conn.execute(sa.text(statement))
        return statements

    def append_only_ddl(self, table: str) -> list[str]:
        return ["""
            CREATE OR REPLACE FUNCTION caseflow_append_only() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION 'caseflow: % on % is not allowed: the log is append-only', TG_OP, TG_TABLE_NAME;
            END $$ LANGUAGE plpgsql""",
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION caseflow_append_only()",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION caseflow_append_only()"]

    def drop_append_only_ddl(self, table: str) -> list[str]:
        return [f"DROP TRIGGER {table}_append_only ON {table}", f"DROP TRIGGER {table}_no_truncate ON {table}"]

    def append_only_triggers(self, table: str) -> list[str]:
        return [f"{table}_append_only", f"{table}_no_truncate"]

    def row_trigger_ddl(self, name: str, table: str, event: str, body: str, when: str | None = None,
                        only: str | None = None) -> tuple[list[str], list[str]]:
        body = f"IF {when} THEN {body}; END IF" if when else body     # (a WHEN clause takes no subquery: `only`)
        return ([f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN {body}; RETURN NULL; END $$ LANGUAGE plpgsql",
                 f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{f' WHEN ({only})' if only else ''} "
                 f"EXECUTE FUNCTION {name}()"],
                [f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()"])

    def enabled_triggers(self, conn: Connection) -> set[str]:
        rows = conn.execute(sa.text(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal AND t.tgenabled <> 'D'"))
        return {r[0] for r in rows}

    def write_grants(self, conn: Connection, tables: tuple[str, ...]) -> list[tuple[str, str, str]]:
        rows = conn.execute(sa.text(
            "SELECT g.grantee, g.table_name, g.privilege_type FROM information_schema.role_table_grants g "
            "JOIN pg_tables p ON p.schemaname = g.table_schema AND p.tablename = g.table_name "
            "WHERE g.table_schema = current_schema() AND g.table_name = ANY(:tables) "
            "AND g.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE') AND g.grantee <> p.tableowner "
            "ORDER BY 1, 2, 3"), {"tables": list(tables)})
        return [(r[0], r[1], r[2]) for r in rows]

    def analyze(self, conn: Connection, table: str | None = None) -> None:
        conn.execute(sa.text(f"ANALYZE {table}" if table else "ANALYZE"))


BACKENDS: dict[str, Backend] = {b.name: b for b in (SQLiteBackend(), PostgresBackend())}


def backend_for(url: str) -> Backend:
    """The backend a database URL names (`sqlite:///…`, `postgresql+psycopg://…`)."""
    try:
        dialect = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        raise StorageError(f"cannot use database {shown_url(url)!r}: not a database URL "
                           "(e.g. sqlite:///caseflow.db, postgresql+psycopg://user@host/db)") from None
    if dialect not in BACKENDS:
        raise StorageError(f"cannot use database {shown_url(url)!r}: caseflow runs on "
                           f"{' or '.join(sorted(BACKENDS))}")
    return BACKENDS[dialect]


def backend_of(conn: Connection) -> Backend:
    """The backend of a live connection (for code that is handed a connection, not a Store)."""
    return BACKENDS[conn.dialect.name]
