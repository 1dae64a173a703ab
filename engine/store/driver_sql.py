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
    HEAD,
    UPDATED,
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


class _Held:
    """A step's versioned UPDATE, not sent yet: its parameters and the columns it sets."""

    __slots__ = ("values", "columns")

    def __init__(self, values: dict[str, Any], columns: tuple[str, ...]) -> None:
        self.values, self.columns = values, columns


_PENDING: weakref.WeakKeyDictionary[Connection, _Held] = weakref.WeakKeyDictionary()   # not sent yet
# A step's writes that nothing in the step reads back (SLA clocks and windows, the outbox): they wait for the
# step's end (`finish_write`) and go after its case row — on PostgreSQL in its last statement.
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
    """A write of the step nothing in it reads back, SQL with `:name` parameters: in a step it waits for the
    step's end (`finish_write`, `finish_open`: after the case row; on PostgreSQL in the last statement);
    outside a step (the sweeper, assignment, migration) it runs now, through SQLAlchemy."""
    waiting = _step_list(conn)
    if waiting is None:
        conn.execute(_text(text), params)
        return
    waiting.append((text, params))


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
    """A step's read of the case's timers. PostgreSQL: locked, after the held UPDATE — in the same statement
    as that UPDATE if it is still held. SQLite: the write lock is the transaction's since BEGIN IMMEDIATE,
    so the read needs nothing sent before it and the UPDATE stays held."""
    sql = sql_of(conn)
    held = _PENDING.get(conn) if _PENDING else None
    if not sql.one_statement:
        return [TimerRow._make(r) for r in run(conn, sql.case_timers, {"case_id": case_id}).fetchall()]
    if held is not None and held.values:
        del _PENDING[conn]
        backend_of(conn).more_statements(conn)                  # BEGIN: the step's last statement follows
        found = run(conn, sql.update_case_timers, held.values).fetchall()
        if not found or not found[0][0]:
            raise StaleCase(held.values["case_id"])
        return [TimerRow._make(r[1:]) for r in found if r[1] is not None]
    flush_pending(conn)
    return [TimerRow._make(r) for r in run(conn, sql.case_timers, {"case_id": case_id}).fetchall()]


_ABSENT = object()


def _columns(sql: DialectSQL, values: dict[str, Any], stored: Any) -> tuple[str, ...]:
    """The columns the versioned UPDATE sets: where SQLite writes an index for each column named, those whose
    value differs from the row as read (`stored`, at version `seen`: nothing changes them without a new
    version); else all of them."""
    if stored is None or not sql.sets_changed_only:
        return UPDATED
    return tuple(c for c in UPDATED if c == "version" or getattr(stored, c, _ABSENT) != values[c])


@contextmanager
def pending_write(conn: Connection, values: dict[str, Any], case_id: str, stored: Any = None) -> Iterator[None]:
    """Hold the versioned UPDATE of `case_id` until the step's end (`finish_write`) or until any other
    statement runs on `conn` through SQLAlchemy (`flush_pending`, a `before_execute` listener of every
    Store's engine), so that the case row is still written — and locked — before anything else the step
    writes. `stored`: the case row the step read (Snapshot.stored), to set only the columns it changes."""
    with _holding(conn, _Held(values, _columns(sql_of(conn), values, stored))):
        yield


@contextmanager
def _holding(conn: Connection, held: _Held) -> Iterator[None]:
    """`held` on `conn` (empty values: nothing but the BEGIN), with an empty list of waiting writes."""
    _PENDING[conn] = held
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
    held = _PENDING.pop(conn, None) if _PENDING else None
    if held is None:
        return
    backend_of(conn).more_statements(conn)
    if not held.values:
        return
    sql = sql_of(conn)
    text = sql.update_case_only if sql.one_statement else sql.update_case_set(held.columns)
    if run(conn, text, held.values).rowcount != 1:
        raise StaleCase(held.values["case_id"])


def more_statements(conn: Connection) -> None:
    """The step goes on after its last statement (a fired event): on PostgreSQL's autocommit connection,
    BEGIN now (the held UPDATE stays held for that statement); SQLite's write is a transaction already."""
    if _PENDING.get(conn) is not None:
        backend_of(conn).more_statements(conn)


def finish_write(conn: Connection, case_id: str, rows: list[dict[str, Any]], head: tuple[int, str],
                 queues: tuple[str, str, frozenset[str]] | None = None) -> None:
    """The step's last statements: the held UPDATE with the new chain head, the step's waiting writes, its
    audit rows and, `queues` (case id, workflow, the case's work queues now) when the step changed them, its
    work queues — in one statement on PostgreSQL where it can; if the UPDATE was sent already (the step ran
    other statements), the rest with the head."""
    sql = sql_of(conn)
    if not sql.one_statement:
        _finish_in_order(conn, sql, case_id, rows, head, queues)
        return
    waiting = _LATER.get(conn) or []
    if waiting:
        flush_pending(conn)
        _LATER[conn] = []
    held = _PENDING.pop(conn, None)
    if held is None and rows:
        # the UPDATE went (the step ran other statements): the rest in one statement
        params = sql.row_params({"case_id": case_id, "audit_seq": head[0], "audit_hash": head[1]}, rows)
        if queues is not None:
            params |= _queue_params(queues)
        run(conn, sql.log_head_and(len(rows), _grouped(waiting, params), queues is not None), params)
        return
    for text, p in waiting:              # (no audit rows: each on its own)
        run(conn, render(sql.style, text), p)
    if held is not None and held.values:
        values = {**held.values, "audit_seq": head[0], "audit_hash": head[1]}
        if queues is not None and rows:
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


def _finish_in_order(conn: Connection, sql: DialectSQL, case_id: str, rows: list[dict[str, Any]],
                     head: tuple[int, str], queues: tuple[str, str, frozenset[str]] | None) -> None:
    """Where each statement is its own (SQLite, inside the write transaction): the held UPDATE with the chain
    head (its version check first, so a stale step fails as stale before anything else is tried), the waiting
    writes in the order written, the audit rows, then (if the UPDATE went earlier) the head, and the queues."""
    waiting = _LATER.get(conn) or []
    _LATER[conn] = []
    held = _PENDING.pop(conn, None)
    pending = held is not None and bool(held.values)
    if pending:
        assert held is not None
        values = {**held.values, "audit_seq": head[0], "audit_hash": head[1]}
        if run(conn, sql.update_case_set(held.columns + HEAD), values).rowcount != 1:
            raise StaleCase(case_id)
    for text, p in waiting:
        run(conn, render(sql.style, text), p)
    if rows:
        insert_audit(conn, rows)
        if not pending:
            run(conn, sql.set_head, {"case_id": case_id, "audit_seq": head[0], "audit_hash": head[1]})
    if queues is not None:
        set_queues(conn, *queues)


@contextmanager
def opening(conn: Connection) -> Iterator[None]:
    """`Engine.open` on its action connection: the new case's writes nothing in it reads back wait for
    `finish_open`; the first other statement (a unique key's claim, an action) sends BEGIN first."""
    with _holding(conn, _Held({}, ())):
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
    """Set a case's work queues to `found` (inside the write's transaction): the rows of queues it left
    deleted, those of queues it joined inserted; the others — and their inbox order — untouched."""
    sql = sql_of(conn)
    kept = sorted(found)
    run(conn, sql.drop_queues(len(kept)), {"case_id": case_id, **{f"q_{i}": q for i, q in enumerate(kept)}})
    if kept:
        run(conn, sql.add_queue, [{"case_id": case_id, "queue": q, "workflow": workflow} for q in kept], many=True)


__all__ = ["CaseRow", "DialectSQL", "sql_of", "run", "read_case", "insert_audit", "update_and_log", "log_and_head",
           "pending_write", "flush_pending", "more_statements", "finish_write", "set_queues", "later", "in_step",
           "case_timers", "render", "rendered", "TimerRow", "opening", "finish_open", "insert_case"]
