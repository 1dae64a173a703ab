"""The hot path's SQL, rendered once per dialect and run on the pooled DB-API cursor.

An action's few statements — read the case, the versioned UPDATE, the audit
INSERT — cost more in SQLAlchemy Core's per-execute machinery (statement cache
keys, execution context, result objects) than in the database. Here they are
plain SQL text per dialect, built once from the table definitions, and run on
the DB-API connection SQLAlchemy pools for the caller's `Connection`, inside
whatever transaction that connection is in. SQLAlchemy stays the layer for
engines, pools, dialects, tables and migrations:

- driver errors are raised as SQLAlchemy's own exception classes
  (`sa.exc.IntegrityError`, `OperationalError`, …), a lost connection is
  invalidated, so `Store.write` maps them exactly as before;
- `before_cursor_execute` / `after_cursor_execute` listeners (statement
  counters, the reliability tests' hook points) are called when there are any.

On PostgreSQL the whole write of a plain step is one statement
(`update_and_log`): `WITH u AS (UPDATE cases … WHERE id = … AND version = …
RETURNING id) INSERT INTO audit … SELECT … WHERE EXISTS (SELECT 1 FROM u)` —
a stale snapshot updates nothing and so inserts nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.errors import StaleCase
from caseflow.store.backend import backend_of
from caseflow.store.driver_text import (
    AUDIT_COLUMNS,
    CASE_COLUMNS,
    CaseRow,
    DialectSQL,
    SignoffRow,
    TimerRow,
    render,
)

_BY_BACKEND: dict[str, DialectSQL] = {}


def sql_of(conn: Connection) -> DialectSQL:
    backend = backend_of(conn)
    found = _BY_BACKEND.get(backend.name)
    if found is None:
        found = _BY_BACKEND[backend.name] = DialectSQL(backend, conn.dialect)
    return found


def run(conn: Connection, statement: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
        many: bool = False) -> Any:
    """Run pre-rendered SQL on the connection's DB-API cursor, in its transaction; returns the cursor."""
    cursor = conn.connection.cursor()      # the pooled DB-API connection checked out for `conn`
    dispatch = conn.dispatch
    if dispatch.before_cursor_execute:
        for fn in dispatch.before_cursor_execute:
            fn(conn, cursor, statement, params, None, many)
    try:
        if many:
            cursor.executemany(statement, params)  # type: ignore[arg-type]
        elif params is None:
            cursor.execute(statement)
        else:
            cursor.execute(statement, params)
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
    params = [{c: r.get(c) for c in AUDIT_COLUMNS} for r in rows]
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


_PENDING: weakref.WeakKeyDictionary[Connection, dict[str, Any]] = weakref.WeakKeyDictionary()   # not sent yet
# A step's writes that nothing in the step reads back (SLA clocks and windows): on PostgreSQL they wait
# for the step's last statement and go in it (`log_head_and`); elsewhere they run at once.
_LATER: weakref.WeakKeyDictionary[Connection, list[tuple[str, dict[str, Any]]]] = weakref.WeakKeyDictionary()
def _step_list(conn: Any) -> list[tuple[str, dict[str, Any]]] | None:
    try:
        return _LATER.get(conn) if _LATER else None
    except TypeError:           # not a Connection (bulk import's BatchedWrites)
        return None


def in_step(conn: Any) -> bool:
    """Whether `conn` is an Engine step's connection (inside `pending_write`)."""
    return _step_list(conn) is not None


def later(conn: Any, text: str, params: dict[str, Any]) -> None:
    """A write of the step nothing in it reads back, SQL with `:name` parameters: in a step on PostgreSQL
    it waits for the step's last statement; in a step elsewhere it runs now on the driver (after the
    held UPDATE); outside a step (the sweeper, assignment, migration) through SQLAlchemy."""
    waiting = _step_list(conn)
    if waiting is None:
        conn.execute(_text(text), params)
        return
    sql = sql_of(conn)
    if sql.one_statement:
        waiting.append((text, params))
        return
    flush_pending(conn)
    run(conn, _rendered(sql.style, text), params)


def _grouped(waiting: list[tuple[str, dict[str, Any]]], params: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    """The waiting writes as CTEs (DialectSQL._later): the INSERTs of one text merged into one, in the order
    written; each row's parameters added to `params` with its prefix."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for n, (text, p) in enumerate(waiting):
        groups.setdefault(text if text.startswith("INSERT ") else f"{n}\0{text}", []).append(p)
    for i, rows in enumerate(groups.values()):
        for j, p in enumerate(rows):
            params.update({f"d{i}_{j}_{k}": v for k, v in p.items()})
    return tuple((key.split("\0", 1)[-1], len(rows)) for key, rows in groups.items())


def rendered(conn: Connection, text: str) -> str:
    """SQL written with `:name` parameters, in the style of `conn`'s driver (rendered once per text)."""
    return _rendered(sql_of(conn).style, text)


@lru_cache(maxsize=128)
def _rendered(style: str, text: str) -> str:
    return render(style, text)


@lru_cache(maxsize=64)
def _text(text: str) -> sa.TextClause:
    return sa.text(text)


def case_timers(conn: Connection, case_id: str) -> list[TimerRow]:
    """A step's read of the case's timers (locked where the database can), after the held UPDATE — on
    PostgreSQL in the same statement as that UPDATE, if it is still held."""
    sql = sql_of(conn)
    values = _PENDING.get(conn) if _PENDING else None
    if values and sql.one_statement:
        del _PENDING[conn]
        backend_of(conn).more_statements(conn)                  # BEGIN: the step's last statement follows
        found = run(conn, sql.update_case_timers, values).fetchall()
        if not found or not found[0][0]:
            raise StaleCase(values["case_id"])
        return [TimerRow._make(r[1:]) for r in found if r[1] is not None]
    flush_pending(conn)
    return [TimerRow._make(r) for r in run(conn, sql.case_timers, {"case_id": case_id}).fetchall()]


@contextmanager
def pending_write(conn: Connection, values: dict[str, Any], case_id: str) -> Iterator[None]:
    """Hold the versioned UPDATE of `case_id` until the step's end (`finish_write`) or until any other
    statement runs on `conn` (`flush_pending`, a `before_execute` listener of every Store's engine),
    so that the case row is still written — and locked — before anything else the step writes."""
    with _holding(conn, values):
        yield


@contextmanager
def _holding(conn: Connection, values: dict[str, Any]) -> Iterator[None]:
    """`values` held on `conn` (an empty dict: nothing but the BEGIN), with an empty list of waiting writes."""
    _PENDING[conn] = values
    _LATER[conn] = []
    try:
        yield
    finally:
        _PENDING.pop(conn, None)
        _LATER.pop(conn, None)


def _queue_params(queues: tuple[str, str, frozenset[str]]) -> dict[str, Any]:
    return {"q_after": sorted(queues[2]), "q_workflow": queues[1]}


def flush_pending(conn: Connection, *_: Any) -> None:
    """Send the held UPDATE (and, on PostgreSQL's autocommit action connection, BEGIN first); for an
    open (`opening`, nothing held) only the BEGIN."""
    values = _PENDING.pop(conn, None) if _PENDING else None
    if values is None:
        return
    backend_of(conn).more_statements(conn)
    if not values:
        return
    if run(conn, sql_of(conn).update_case_only, values).rowcount != 1:
        raise StaleCase(values["case_id"])


def finish_write(conn: Connection, case_id: str, rows: list[dict[str, Any]], head: tuple[int, str],
                 queues: tuple[str, str, frozenset[str]] | None = None) -> None:
    """The step's last statements: the held UPDATE with the new chain head and the audit rows (one statement
    on PostgreSQL), or, if the UPDATE was sent already, the audit rows and the head. `queues`:
    (case id, workflow, the case's work queues now) when the step changed them — written in the same
    statement on PostgreSQL, else in the same transaction."""
    waiting = _LATER.get(conn) or []
    if waiting:
        flush_pending(conn)
        _LATER[conn] = []
    values = _PENDING.pop(conn, None)
    sql = sql_of(conn)
    if values is None and sql.one_statement and rows:
        # PostgreSQL, the UPDATE went (the step ran other statements): the rest in one statement
        params = sql.row_params({"case_id": case_id, "audit_seq": head[0], "audit_hash": head[1]}, rows)
        if queues is not None:
            params |= _queue_params(queues)
        run(conn, sql.log_head_and(len(rows), _grouped(waiting, params), queues is not None), params)
        return
    for text, p in waiting:              # (no audit rows: each on its own)
        run(conn, render(sql.style, text), p)
    if values is not None:
        values = {**values, "audit_seq": head[0], "audit_hash": head[1]}
        if queues is not None and sql.one_statement and rows:
            params = sql.row_params(values, rows) | _queue_params(queues)
            if not run(conn, sql.update_queues_and_log(len(rows)), params).rowcount:
                raise StaleCase(case_id)
            return
        if not update_and_log(conn, values, rows):
            raise StaleCase(case_id)
    else:
        log_and_head(conn, case_id, rows, head)
    if queues is not None:
        set_queues(conn, *queues)


@contextmanager
def opening(conn: Connection) -> Iterator[None]:
    """`Engine.open` on its action connection: the new case's writes nothing in it reads back wait for
    `finish_open`; the first other statement (a unique key's claim, an action) sends BEGIN first."""
    with _holding(conn, {}):
        yield


def finish_open(conn: Connection, case: dict[str, Any], rows: list[dict[str, Any]],
                queues: tuple[str, frozenset[str]]) -> None:
    """The new case's row, its work queues (workflow, queues), its waiting writes and its audit rows:
    on PostgreSQL one statement (in autocommit its own commit, unless an earlier statement sent BEGIN)."""
    waiting = _LATER.get(conn) or []
    _LATER[conn] = []
    _PENDING.pop(conn, None)
    sql = sql_of(conn)
    values = {f"c_{k}": case.get(k) for k in CASE_COLUMNS}
    if sql.one_statement and rows:
        params = sql.row_params(values, rows) | {"q_after": sorted(queues[1]), "q_workflow": queues[0]}
        run(conn, sql.open_and_log(len(rows), _grouped(waiting, params), bool(queues[1])), params)
        return
    for text, p in waiting:
        run(conn, render(sql.style, text), p)
    if queues[1]:
        run(conn, sql.insert_queue, [{"case_id": case["id"], "queue": q, "workflow": queues[0]}
                                     for q in sorted(queues[1])], many=True)
    run(conn, sql.insert_case, values)
    if rows:
        insert_audit(conn, rows)


def insert_case(conn: Connection, case: dict[str, Any], rows: list[dict[str, Any]],
                queues: tuple[str, frozenset[str]]) -> None:
    """A new case opened inside another case's step (a linked case): its work queues (workflow, queues),
    its row and its audit rows, after the step's held UPDATE, on the driver."""
    flush_pending(conn)
    sql = sql_of(conn)
    if queues[1]:
        run(conn, sql.insert_queue, [{"case_id": case["id"], "queue": q, "workflow": queues[0]}
                                     for q in sorted(queues[1])], many=True)
    run(conn, sql.insert_case, {f"c_{k}": case.get(k) for k in CASE_COLUMNS})
    if rows:
        insert_audit(conn, rows)


def set_queues(conn: Connection, case_id: str, workflow: str, found: frozenset[str]) -> None:
    """Rewrite a case's work queues (inside the write's transaction)."""
    sql = sql_of(conn)
    run(conn, sql.delete_queues, {"case_id": case_id})
    if found:
        run(conn, sql.insert_queue, [{"case_id": case_id, "queue": q, "workflow": workflow} for q in sorted(found)],
            many=True)


__all__ = ["CaseRow", "DialectSQL", "sql_of", "run", "read_case", "insert_audit", "update_and_log", "log_and_head",
           "pending_write", "flush_pending", "finish_write", "set_queues", "later", "in_step", "case_timers",
           "render", "rendered", "TimerRow", "opening", "finish_open",
           "insert_case"]
