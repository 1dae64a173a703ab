"""The hot path (#18): the audit-chain head kept on the case row, one connection per action, few statements."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command

from caseflow.audit.verify import verify
from caseflow.runtime.engine import Engine
from caseflow.store import migrate
from caseflow.store.database import Store

from .conftest import audit_rows, case_row
from .helpers import open_complaint, open_refund, refund_to_signing


def _head_is_last_row(store: Store, cid: str) -> bool:
    row, last = case_row(store, cid), audit_rows(store, cid)[-1]
    return (row["audit_seq"], row["audit_hash"]) == (last["seq"], last["hash"])


def test_every_action_keeps_the_chain_head_on_the_case_row(engine: Engine, store: Store) -> None:
    cid = refund_to_signing(engine)                        # open, then steps with and without clocks/actions
    assert _head_is_last_row(store, cid)
    engine.sign(cid, "lin.xiao")                           # a sign-off that fires nothing yet
    assert _head_is_last_row(store, cid)
    assert verify(store).ok


def test_upgrading_an_old_database_fills_the_chain_head(engine: Engine, store: Store) -> None:
    cid = refund_to_signing(engine)
    cfg = migrate._config()
    with store.engine.begin() as conn:                     # back to the schema before the columns existed
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007_migration_runs")
    store.engine.dispose()
    store.migrate()                                        # what the next CLI call does
    assert migrate.current(store) == migrate.HEAD
    assert _head_is_last_row(store, cid)
    engine.sign(cid, "lin.xiao")                           # the chain goes on from the filled head
    assert verify(store).ok


def test_verify_names_a_case_row_whose_chain_head_is_not_its_last_row(engine: Engine, store: Store) -> None:
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE cases SET audit_seq = 1 WHERE id = :id"), {"id": cid})
    report = verify(store)
    last = audit_rows(store, cid)[-1]["seq"]
    assert [(p.where, p.seq, p.kind) for p in report.problems] == [(cid, last, "head")]
    assert str(report.problems[0]).endswith(f"the case row's chain head (row 1) is not its last audit row "
                                            f"(row {last}): rows were appended or deleted behind the engine's "
                                            f"back, or the case row was edited")


def _statements(store: Store, work: Any) -> list[str]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()[:2]))

    def commit(conn: Any) -> None:
        seen.append("COMMIT")

    sa.event.listen(store.engine, "before_cursor_execute", count)
    sa.event.listen(store.engine, "commit", commit)
    try:
        work()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
        sa.event.remove(store.engine, "commit", commit)
    return seen


def test_a_plain_step_reads_and_writes_on_one_connection_in_few_statements(engine: Engine, store: Store) -> None:
    """`explain` on a refund moves no clock and runs no action: read, versioned UPDATE + audit INSERT (one
    statement on PostgreSQL, where psycopg's COMMIT in autocommit sends nothing), no chain-head SELECT. (On
    PostgreSQL the read brings the case's timers with it, `SELECT 0, 0, … UNION ALL …`: driver_sql.read_for_step.)"""
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    checkouts: list[int] = []
    used: set[int] = set()

    def checkout(*_: Any) -> None:
        checkouts.append(1)

    def on(conn: Any, *_: Any) -> None:
        used.add(id(conn.connection.dbapi_connection))

    sa.event.listen(store.engine, "checkout", checkout)
    sa.event.listen(store.engine, "before_cursor_execute", on)
    try:
        sent = _statements(store, lambda: engine.advance(
            cid, "explain", "lin.xiao", {"reason": "客户资金周转困难", "responsibility": "客户原因"}))
    finally:
        sa.event.remove(store.engine, "checkout", checkout)
        sa.event.remove(store.engine, "before_cursor_execute", on)
    # the step moves the refund to 申请退款, so its work queues change: on PostgreSQL they are part of the one
    # statement (store/driver_sql.py update_queues_and_log); on SQLite DELETE + INSERT of case_queue follow the
    # case's own write in the same transaction
    if store.backend.one_statement_write:
        assert sent == ["SELECT 0,", "WITH u", "COMMIT"], sent
    else:
        # (SQLite's BEGIN IMMEDIATE goes to the driver directly: store/locks.py begin_immediate)
        assert [s for s in sent if s != "BEGIN IMMEDIATE"] == ["SELECT id,", "UPDATE cases", "INSERT INTO",
                                                               "DELETE FROM", "INSERT INTO", "COMMIT"]
    # one connection: the one the action just before ended with (store/held.py), or one checked out
    assert len(used) == 1 and len(checkouts) <= 1
    assert _head_is_last_row(store, cid) and verify(store).ok


def test_a_sign_off_that_restarts_its_clock_reads_once_and_writes_in_few_statements(engine: Engine,
                                                                                     store: Store) -> None:
    """A sign-off reads the case with its sign-off evidence in one statement; its clock's restart (the timer
    row, the window it ends, the one it opens) and its work queues go with the audit rows: on PostgreSQL the
    timers are read unlocked in that same statement (store/driver_sql.py `read_for_step`) and the whole write
    is one statement in autocommit (`later`, `update_checked`) that locks the case row, then the timers, and
    checks they are the rows read."""
    cid = refund_to_signing(engine)
    sent = _statements(store, lambda: engine.sign(cid, "lin.xiao"))
    if store.backend.one_statement_write:
        assert sent == ["SELECT 0,", "WITH u", "COMMIT"], sent
    else:
        # SQLite: the timers read needs nothing before it (BEGIN IMMEDIATE holds the write lock), so the case
        # row is written once, with its chain head, first; the restart at the same instant changes nothing of
        # the timer row, so it is not written (test_sla.py has a restart that moves it)
        assert [s for s in sent if s != "BEGIN IMMEDIATE"] == [
            "SELECT c.id,", "SELECT id,", "UPDATE cases", "UPDATE sla_windows", "INSERT INTO", "INSERT INTO",
            "DELETE FROM", "INSERT INTO", "COMMIT"], sent
    with store.engine.connect() as conn:
        windows = conn.execute(sa.text("SELECT opened_by, outcome FROM sla_windows WHERE case_id = :c ORDER BY id"),
                               {"c": cid}).all()
        timer = conn.execute(sa.text("SELECT status FROM timers WHERE case_id = :c"), {"c": cid}).all()
    assert [tuple(w) for w in windows] == [("start", "met"), ("restart", None)]
    assert [tuple(t) for t in timer] == [("running",)]
    assert _head_is_last_row(store, cid) and verify(store).ok


def test_an_open_is_one_statement_on_postgresql(engine: Engine, store: Store) -> None:
    """A new case's row, work queues, clocks, windows and first audit rows: one statement in autocommit on
    PostgreSQL (store/driver_sql.py `finish_open`); on SQLite the same rows on the driver in one transaction."""
    open_refund(engine)                               # the first opens store the definition, then know it is
    open_refund(engine, order_no="D-2")
    sent = _statements(store, lambda: open_refund(engine, order_no="D-3"))
    if store.backend.one_statement_write:
        assert sent == ["WITH c", "COMMIT"], sent
    else:
        assert [s for s in sent if s != "BEGIN IMMEDIATE"] == ["INSERT INTO", "INSERT INTO", "INSERT INTO",
                                                               "COMMIT"], sent
    open_complaint(engine)
    open_complaint(engine, form_no="TS-2025-002")
    cid = ""

    def complaint() -> None:
        nonlocal cid
        cid = open_complaint(engine, form_no="TS-2025-003")
    sent = _statements(store, complaint)                  # its two SLA clocks start at open
    if store.backend.one_statement_write:
        assert sent == ["WITH c", "COMMIT"], sent
    with store.engine.connect() as conn:
        clocks = conn.execute(sa.text("SELECT status FROM timers WHERE case_id = :c"), {"c": cid}).all()
        windows = conn.execute(sa.text("SELECT opened_by FROM sla_windows WHERE case_id = :c"), {"c": cid}).all()
        queues = conn.execute(sa.text("SELECT queue FROM case_queue WHERE case_id = :c"), {"c": cid}).all()
    assert [tuple(c) for c in clocks] == [("running",), ("running",)]
    assert [tuple(w) for w in windows] == [("start",), ("start",)]
    assert queues, "the new case is in its work queues"
    assert _head_is_last_row(store, cid) and verify(store).ok
