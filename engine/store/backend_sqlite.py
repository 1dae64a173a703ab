"""SQLite's backend: one file in WAL mode, BEGIN IMMEDIATE writers, triggers for the append-only tables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SAEngine

from caseflow.store.backend_base import READONLY, SINGLE_READ, Backend
from caseflow.store.locks import LockWait
from caseflow.store.sqlite_files import begin_immediate, bind_none_and_bool_directly, open_read_only

# WAL pages a writer lets the log grow to before it copies them back into the database file (a
# checkpoint: two fsyncs under synchronous=NORMAL, whatever the number of pages). SQLite's default,
# 1,000, is about 40 steps of a complaint (25-30 pages each): every 40th step paid ~25 ms of fsync.
# 4,000 (16 MiB of log at most) pays it a quarter as often, and a checkpoint copies each page once
# however often the steps since rewrote it: 200 complaints walked (`python bench/bench_wal.py`,
# README "SQLite settings") 400 → 439 steps/s, p99 step 25.6 → 4.9 ms, the longest 35 → 80 ms.
WAL_CHECKPOINT_PAGES = 4000


class SQLiteBackend(Backend):
    """SQLite in WAL mode; a write transaction takes the write lock at BEGIN (BEGIN IMMEDIATE),
    so writers queue instead of failing half-way, and that lock already serializes chains."""

    name, explain, creates_on_open, one_writer = "sqlite", "EXPLAIN QUERY PLAN ", True, True
    table_exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = {}"

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
                cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
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

    def send_ahead(self, conn: Connection) -> Any:
        """An import's rows by multi-row INSERTs on a sender thread (store/insert_ahead.py): SQLAlchemy opens a
        file database's connections for use from any thread (a Store refuses an in-memory one)."""
        from caseflow.store.insert_ahead import InsertAhead
        return InsertAhead(conn.connection.dbapi_connection, conn.dialect.identifier_preparer.quote)

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
