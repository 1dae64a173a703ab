"""PostgreSQL's backend: logins, row locks, REPEATABLE READ snapshots, COPY for imports, least privilege."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.sql.elements import ColumnElement

from caseflow.store.backend_base import LOCKS, Backend
from caseflow.store.copy_ahead import CopyAhead
from caseflow.store.idle_ping import ping_when_idle as _ping_when_idle
from caseflow.store.locks import PID, LockWait, server_waits_for_lock, watch

# PostgreSQL least privilege (docs/security.md): what the runtime role may do to each table.
LOG_TABLES = ("audit", "attempts", "checkpoints", "orgs", "definitions")     # append-only: SELECT, INSERT
READ_TABLES = ("settings", "alembic_version")                                # written by the owner only
WORK_TABLES = ("cases", "case_queue", "timers", "sla_windows", "outbox", "case_keys", "decision_counts",
               "migration_runs")


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

    def planned_rows(self, conn: Connection, table: str) -> int:
        found = conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table})
        return max(int(found.scalar() or 0), 0)        # (-1: never analyzed)
