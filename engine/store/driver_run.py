"""The hot path's statements run on the pooled DB-API cursor, and the ones that are whole by themselves.

An action's few statements — read the case, the versioned UPDATE, the audit
INSERT — cost more in SQLAlchemy Core's per-execute machinery (statement cache
keys, execution context, result objects) than in the database. Here they are
plain SQL text per dialect (`store/driver_text.py`, built once from the table
definitions), run on the DB-API connection SQLAlchemy pools for the caller's
`Connection`, inside whatever transaction that connection is in. SQLAlchemy
stays the layer for engines, pools, dialects, tables and migrations:

- driver errors are raised as SQLAlchemy's own exception classes
  (`sa.exc.IntegrityError`, `OperationalError`, …), a lost connection is
  invalidated, so `Store.write` maps them exactly as before;
- `before_cursor_execute` / `after_cursor_execute` listeners (statement
  counters, the reliability tests' hook points) are called when there are any.

On PostgreSQL the whole write of a plain step is one statement
(`update_and_log`): `WITH u AS (UPDATE cases … WHERE id = … AND version = …
RETURNING id) INSERT INTO audit … SELECT … WHERE EXISTS (SELECT 1 FROM u)` —
a stale snapshot updates nothing and so inserts nothing. What a step holds
until its end is `store/driver_sql.py`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Connection

from caseflow.store.backend import backend_of
from caseflow.store.driver_text import AUDIT_COLUMNS, CASE_COLUMNS, CaseRow, DialectSQL, SignoffRow, numbered, render

_BY_BACKEND: dict[str, DialectSQL] = {}
_COLUMNS = frozenset(AUDIT_COLUMNS)


def sql_of(conn: Connection) -> DialectSQL:
    backend = backend_of(conn)
    found = _BY_BACKEND.get(backend.name)
    if found is None:
        found = _BY_BACKEND[backend.name] = DialectSQL(backend, conn.dialect)
    return found


def run(conn: Connection, statement: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
        many: bool = False) -> Any:
    """Run pre-rendered SQL on the connection's DB-API cursor, in its transaction; returns the cursor."""
    dbapi: Any = conn.connection.dbapi_connection     # the pooled DB-API connection checked out for `conn`
    values: Callable[[Mapping[str, Any]], Sequence[Any]] | None = None
    if params is None or not backend_of(conn).numbered:
        cursor, sent = dbapi.cursor(), statement
    else:
        # psycopg converts `%(name)s` to `$n` on every execution and caches that only for statements under
        # 4,096 characters and 50 parameters (a step's one write is longer): numbered once per text here
        from psycopg import RawCursor
        cursor, (sent, values) = RawCursor(dbapi), numbered(statement)
    dispatch = conn.dispatch
    if dispatch.before_cursor_execute:
        for fn in dispatch.before_cursor_execute:
            fn(conn, cursor, statement, params, None, many)
    try:
        if params is None:
            cursor.execute(sent)
        elif values is None:
            cursor.executemany(sent, params) if many else cursor.execute(sent, params)
        elif many:
            cursor.executemany(sent, [values(p) for p in params])  # type: ignore[arg-type]
        else:
            cursor.execute(sent, values(params))  # type: ignore[arg-type]
    except conn.dialect.loaded_dbapi.Error as exc:
        # SQLAlchemy's own handling: its exception classes, handle_error events, and on a lost
        # connection the connection (and the pool's older ones) invalidated.
        conn._handle_dbapi_exception(exc, statement, params, cursor, None)
    if dispatch.after_cursor_execute:
        for fn in dispatch.after_cursor_execute:
            fn(conn, cursor, statement, params, None, many)
    return cursor


def read_case(conn: Connection, case_id: str) -> CaseRow | None:
    row = run(conn, sql_of(conn).select_case, {"case_id": case_id}).fetchone()
    return None if row is None else CaseRow._make(row)


def read_case_signoffs(conn: Connection, case_id: str) -> tuple[CaseRow | None, list[SignoffRow]]:
    """The case and its sign-off evidence (audit.signoffs_of's rows), one statement."""
    found = run(conn, sql_of(conn).select_case_signoffs, {"case_id": case_id}).fetchall()
    if not found:
        return None, []
    n = len(CASE_COLUMNS)
    return CaseRow._make(found[0][:n]), [SignoffRow._make(r[n:]) for r in found if r[n] is not None]


def insert_audit(conn: Connection, rows: list[dict[str, Any]]) -> None:
    # (a chained row has every column; the driver takes the names it needs from the mapping)
    params = [r if _COLUMNS <= r.keys() else {c: r.get(c) for c in AUDIT_COLUMNS} for r in rows]
    run(conn, sql_of(conn).insert_audit, params if len(params) > 1 else params[0], many=len(params) > 1)


def update_and_log(conn: Connection, values: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """The versioned UPDATE plus its audit rows; False if the case was not at version `seen` (nothing written).

    PostgreSQL: one statement. SQLite (no data-modifying CTEs): the UPDATE, then the INSERT.
    """
    sql = sql_of(conn)
    if sql.one_statement and rows:
        return bool(run(conn, sql.update_and_log(len(rows)), sql.row_params(values, rows)).rowcount)
    if run(conn, sql.update_case, values).rowcount != 1:
        return False
    if rows:
        insert_audit(conn, rows)
    return True


def log_and_head(conn: Connection, case_id: str, rows: list[dict[str, Any]], head: tuple[int, str]) -> None:
    """Audit rows plus the new chain head on the case row (one statement where a CTE can write)."""
    if not rows:
        return
    sql = sql_of(conn)
    values = {"case_id": case_id, "audit_seq": head[0], "audit_hash": head[1]}
    if sql.one_statement:
        run(conn, sql.log_and_head(len(rows)), sql.row_params(values, rows))
        return
    insert_audit(conn, rows)
    run(conn, sql.set_head, values)


def rendered(conn: Connection, text: str) -> str:
    """SQL written with `:name` parameters, in the style of `conn`'s driver (rendered once per text)."""
    return _rendered(sql_of(conn).style, text)


@lru_cache(maxsize=128)
def _rendered(style: str, text: str) -> str:
    return render(style, text)


def outside_transaction(conn: Connection) -> bool:
    """PostgreSQL's autocommit action connection before any BEGIN: each statement is its own transaction,
    and a read holds no lock past itself (psycopg: autocommit, transaction status IDLE)."""
    dbapi: Any = conn.connection.dbapi_connection
    return bool(getattr(dbapi, "autocommit", False)) and dbapi.info.transaction_status == 0


def set_queues(conn: Connection, case_id: str, workflow: str, found: frozenset[str]) -> None:
    """Set a case's work queues to `found` (inside the write's transaction): the rows of queues it left
    deleted, those of queues it joined inserted; the others — and their inbox order — untouched."""
    sql = sql_of(conn)
    kept = sorted(found)
    run(conn, sql.drop_queues(len(kept)), {"case_id": case_id, **{f"q_{i}": q for i, q in enumerate(kept)}})
    if kept:
        run(conn, sql.add_queue, [{"case_id": case_id, "queue": q, "workflow": workflow} for q in kept], many=True)


__all__ = ["sql_of", "run", "read_case", "read_case_signoffs", "insert_audit", "update_and_log", "log_and_head",
           "rendered", "outside_transaction", "set_queues"]
