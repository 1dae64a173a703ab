"""What an Engine step holds until its end, and the statements it ends with (store/driver_run.py runs them).

The versioned UPDATE of the case waits (`pending_write`) until the step's end or until any other
statement runs on the connection through SQLAlchemy (`flush_pending`); the step's writes nothing in
it reads back wait too (`later`): on PostgreSQL the whole step is then one statement in autocommit
where it can be (`finish_write`: with its clocks, `update_checked`), on SQLite one transaction in
which the case row is written once, first. An open (`opening`, `finish_open`) likewise.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.errors import StaleCase
from caseflow.store.backend import backend_of
from caseflow.store.driver_run import (
    insert_audit,
    log_and_head,
    outside_transaction,
    read_case,
    read_case_signoffs,
    rendered,
    run,
    set_queues,
    sql_of,
    update_and_log,
)
from caseflow.store.driver_text import (
    CASE_COLUMNS,
    HEAD,
    MOVED_MARK,
    SIGNOFF_COLUMNS,
    STALE_MARK,
    UPDATED,
    CaseRow,
    DialectSQL,
    SignoffRow,
    TimerRow,
    render,
)


class _Held:
    """A step's versioned UPDATE, not sent yet: its parameters and the columns it sets."""

    __slots__ = ("values", "columns")

    def __init__(self, values: dict[str, Any], columns: tuple[str, ...]) -> None:
        self.values, self.columns = values, columns


class ClocksMoved(Exception):
    """PostgreSQL: the timers a step read unlocked changed before its write (a sweep); nothing was written,
    and the step runs again reading them locked (`clocks_locked`). Never leaves the engine."""


_PENDING: weakref.WeakKeyDictionary[Connection, _Held] = weakref.WeakKeyDictionary()   # not sent yet
# PostgreSQL: the timers a step read unlocked — their rows' texts joined (what `update_checked` compares) and
# the rows — while its held UPDATE waits; connections whose steps read them locked (`clocks_locked`).
_SEEN: weakref.WeakKeyDictionary[Connection, tuple[str | None, list[TimerRow]]] = weakref.WeakKeyDictionary()
_LOCKED: weakref.WeakKeyDictionary[Connection, bool] = weakref.WeakKeyDictionary()
# PostgreSQL: the timers a step's read brought with its case (`read_for_step`): (case id, version, their texts
# joined, the rows), for the step's first read of its clocks (`case_timers`), which then sends nothing.
_READ: weakref.WeakKeyDictionary[Connection, tuple[str, int, str | None, list[TimerRow]]] = weakref.WeakKeyDictionary()
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


@lru_cache(maxsize=64)
def _text(text: str) -> sa.TextClause:
    return sa.text(text)


def case_timers(conn: Connection, case_id: str) -> list[TimerRow]:
    """A step's read of the case's timers.

    SQLite: the write lock is the transaction's since BEGIN IMMEDIATE, so the read needs nothing sent
    before it and the UPDATE stays held. PostgreSQL, a step still outside any transaction (nothing sent
    but its reads): unlocked, and its one write checks under lock that they did not move (`finish_write`,
    `update_checked`), so the step is read, read, write. Else locked, after the held UPDATE (the case row
    is locked first) — in the same statement as that UPDATE if it is still held."""
    sql = sql_of(conn)
    held = _PENDING.get(conn) if _PENDING else None
    if not sql.one_statement:
        return [TimerRow._make(r) for r in run(conn, sql.case_timers, {"case_id": case_id}).fetchall()]
    if held is not None and held.values:
        if conn not in _LOCKED and outside_transaction(conn):
            read = _READ.pop(conn, None) if _READ else None
            if read is not None and read[:2] == (case_id, held.values["seen"]):
                _SEEN[conn] = read[2:]
                return read[3]
            found = run(conn, sql.case_timers_seen, {"case_id": case_id}).fetchall()
            rows = [TimerRow._make(r[:-1]) for r in found]
            _SEEN[conn] = ("|".join(r[-1] for r in found) if found else None, rows)
            return rows
        del _PENDING[conn]
        backend_of(conn).more_statements(conn)                  # BEGIN: the step's last statement follows
        return _update_and_lock(conn, sql, held.values)
    flush_pending(conn)
    return [TimerRow._make(r) for r in run(conn, sql.case_timers, {"case_id": case_id}).fetchall()]


def read_for_step(conn: Connection, case_id: str, signoffs: bool = False) -> tuple[CaseRow | None, list[SignoffRow]]:
    """The read a step decides on: its case and, if `signoffs`, its sign-off evidence (read_case_signoffs).
    PostgreSQL, whose step reads its clocks unlocked and checks them at its write: the case's timers too,
    in the same statement, kept for the step's `case_timers`; one round trip less for a step that moves
    a clock, and case and clocks read at one moment."""
    sql = sql_of(conn)
    if not sql.one_statement:
        return read_case_signoffs(conn, case_id) if signoffs else (read_case(conn, case_id), [])
    found = run(conn, sql.select_case_signoffs_clocks if signoffs else sql.select_case_clocks,
                {"case_id": case_id}).fetchall()
    if not found or found[0][0] != 0:
        _READ.pop(conn, None)
        return None, []
    n, k = 2 + len(CASE_COLUMNS), len(SIGNOFF_COLUMNS) if signoffs else 0
    case = CaseRow._make(found[0][2:n])
    evidence = [SignoffRow._make(r[n:n + k]) for r in found if r[0] == 0 and r[n] is not None] if signoffs else []
    timers = [r for r in found if r[0] == 1]
    _READ[conn] = (case_id, case.version,  # type: ignore[attr-defined]  # (a namedtuple of CASE_COLUMNS)
                   "|".join(r[-1] for r in timers) if timers else None,
                   [TimerRow._make(r[n + k:-1]) for r in timers])
    return case, evidence


def _update_and_lock(conn: Connection, sql: DialectSQL, values: dict[str, Any]) -> list[TimerRow]:
    """PostgreSQL: the held UPDATE and the case's timers locked, one statement; StaleCase if not at `seen`."""
    found = run(conn, sql.update_case_timers, values).fetchall()
    if not found or not found[0][0]:
        raise StaleCase(values["case_id"])
    locked = sorted((r for r in found if r[1] is not None), key=lambda r: r[1])      # r[1]: the timer's id
    return [TimerRow._make(r[1:]) for r in locked]


@contextmanager
def clocks_locked(conn: Connection) -> Iterator[None]:
    """Steps on `conn` read their timers locked (the run again after ClocksMoved)."""
    _LOCKED[conn] = True
    try:
        yield
    finally:
        _LOCKED.pop(conn, None)


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
        _SEEN.pop(conn, None)
        _READ.pop(conn, None)


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
    seen = _SEEN.pop(conn, None) if _SEEN else None
    if seen is not None:            # its timers were read unlocked: now locked, and they must be those rows
        if _update_and_lock(conn, sql, held.values) != seen[1]:
            raise ClocksMoved(held.values["case_id"])
        return
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
    held = _PENDING.get(conn)
    seen = _SEEN.get(conn) if _SEEN else None
    if seen is not None and held is not None and held.values and rows:
        _finish_checked(conn, sql, held, seen[0], rows, head, queues)
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


def _finish_checked(conn: Connection, sql: DialectSQL, held: _Held, seen: str | None, rows: list[dict[str, Any]],
                    head: tuple[int, str], queues: tuple[str, str, frozenset[str]] | None) -> None:
    """PostgreSQL, the step read its timers unlocked: its whole write in one statement that checks, under
    lock, the case's version and that the timers are still `seen` (`update_checked`)."""
    case_id = held.values["case_id"]
    waiting = _LATER.get(conn) or []
    _LATER[conn] = []
    del _PENDING[conn]
    _SEEN.pop(conn, None)
    params = sql.row_params({**held.values, "audit_seq": head[0], "audit_hash": head[1]}, rows)
    params["timers_seen"] = seen
    if queues is not None:
        params |= _queue_params(queues)
    statement = sql.update_checked(len(rows), _grouped(waiting, params), queues is not None)
    try:
        run(conn, statement, params)
    except sa.exc.DataError as exc:
        found = str(exc.orig)
        if STALE_MARK in found:
            raise StaleCase(case_id) from None
        if MOVED_MARK in found:
            raise ClocksMoved(case_id) from None
        raise


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
        run(conn, sql.insert_queue, [{"case_id": case["id"], "queue": q, "workflow": queues[0],
                                      "created_at": case["created_at"]} for q in sorted(queues[1])], many=True)
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
        run(conn, sql.insert_queue, [{"case_id": case["id"], "queue": q, "workflow": queues[0],
                                      "created_at": case["created_at"]} for q in sorted(queues[1])], many=True)
    run(conn, sql.insert_case, {f"c_{k}": case.get(k) for k in CASE_COLUMNS})
    if rows:
        insert_audit(conn, rows)


__all__ = ["CaseRow", "DialectSQL", "sql_of", "run", "read_case", "read_case_signoffs", "read_for_step", "insert_audit",
           "update_and_log", "log_and_head", "pending_write", "flush_pending", "more_statements", "finish_write",
           "set_queues", "later", "in_step", "case_timers", "clocks_locked", "ClocksMoved", "render", "rendered",
           "TimerRow", "opening", "finish_open", "insert_case"]
