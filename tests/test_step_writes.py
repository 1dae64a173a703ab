"""What a step writes (#18): only the case and timer columns it changes, only the work-queue rows that change,
the case row once — with the same rows, chain and queues as a full rewrite would leave.

SQLite maintains every index one of whose columns an UPDATE names, whether or not its value changed, and a
timer UPDATE naming due_at, status or kind fires the work-queue order trigger (migration 0010): the SQL tests
here guard those properties; the row tests say the rows are what they were before the change.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseflow.audit.verify import verify
from caseflow.catalog import Catalog
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store

from .conftest import Clock, audit_rows, case_row
from .helpers import open_complaint, race_two, refund_to_signing

_SET = re.compile(r"UPDATE (cases|timers) SET (.*?) WHERE", re.S)


def _sent(store: Store, work: Any) -> list[str]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", note)
    try:
        work()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", note)
    return seen


def _set_lists(sent: list[str], table: str) -> list[set[str]]:
    """The columns each `UPDATE <table> SET …` names (also inside PostgreSQL's composite statements)."""
    return [set(re.findall(r"(\w+) = ", m.group(2))) for s in sent for m in _SET.finditer(s) if m.group(1) == table]


def _timer(store: Store, cid: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM timers WHERE case_id = :c"), {"c": cid}).one()._mapping)


def _windows(store: Store, cid: str) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT opened_by, opened_at, due_at, closed_at, outcome FROM sla_windows WHERE case_id = :c ORDER BY id"),
            {"c": cid})]


def test_a_sign_off_names_only_the_case_columns_it_changes(engine: Engine, store: Store, clock: Clock) -> None:
    cid = refund_to_signing(engine)
    before = case_row(store, cid)
    clock.advance(hours=1)
    sent = _sent(store, lambda: engine.sign(cid, "lin.xiao"))
    after = case_row(store, cid)
    # the row is what a full rewrite leaves: the sign-off recorded, the next signer named, the rest as it was
    assert (after["state"], after["data"], after["received_at"]) == (before["state"], before["data"],
                                                                     before["received_at"])
    assert [s["by"] for s in json.loads(after["signoffs"])] == ["lin.xiao"]
    assert after["next_signoff_role"] == "middle_manager" != before["next_signoff_role"]
    assert after["version"] == before["version"] + 1 and after["updated_at"] > before["updated_at"]
    last = audit_rows(store, cid)[-1]
    assert (after["audit_seq"], after["audit_hash"]) == (last["seq"], last["hash"])
    updates = _set_lists(sent, "cases")
    if not store.backend.one_statement_write:
        # SQLite: one UPDATE of the case row, with its chain head; state and received_at (three indexes) unnamed
        assert updates == [{"signoffs", "version", "updated_at", "next_signoff_role", "audit_seq", "audit_hash"}]
    assert verify(store).ok


def test_a_restart_writes_only_the_timer_columns_that_move(engine: Engine, store: Store, clock: Clock) -> None:
    """The refund's 每位签字人24小时 restarts on every signature: a later restart moves its start, deadline
    and next look; its status (running) and kind stay, so neither is written (nor the queue-order trigger
    fired by status, kind and due_at alone — due_at moves here); a restart at the same instant writes nothing."""
    cid = refund_to_signing(engine)
    first = _timer(store, cid)
    clock.advance(hours=2)
    sent = _sent(store, lambda: engine.sign(cid, "lin.xiao"))
    moved = _timer(store, cid)
    assert moved["status"] == "running" and moved["kind"] == "sla" and moved["warned"] == 0
    assert moved["started_at"] == "2025-03-03T04:00:00.000Z" and moved["started_at"] > first["started_at"]
    assert moved["due_at"] == "2025-03-04T04:00:00.000Z" and moved["next_at"] > first["next_at"]
    assert {k: moved[k] for k in ("id", "name", "paused_at", "remaining_s", "ended_at", "provisional")} == \
        {k: first[k] for k in ("id", "name", "paused_at", "remaining_s", "ended_at", "provisional")}
    assert _set_lists(sent, "timers") == [{"started_at", "due_at", "next_at"}]
    assert [(w[0], w[4]) for w in _windows(store, cid)] == [("start", "met"), ("restart", None)]
    sent = _sent(store, lambda: engine.sign(cid, "gao.feng"))           # the same instant: nothing moves
    assert _timer(store, cid) == moved
    assert _set_lists(sent, "timers") == []
    assert [(w[0], w[1], w[4]) for w in _windows(store, cid)] == [
        ("start", "2025-03-03T02:00:00.000Z", "met"), ("restart", "2025-03-03T04:00:00.000Z", "met"),
        ("restart", "2025-03-03T04:00:00.000Z", None)]
    with store.engine.connect() as conn:
        due = conn.execute(sa.text("SELECT queue, due_at FROM case_queue WHERE case_id = :c"), {"c": cid}).all()
    assert [tuple(r) for r in due] == [("district_lead", moved["due_at"])]      # the inbox order follows it
    assert verify(store).ok


def test_a_step_that_changes_its_queues_rewrites_only_the_rows_that_change(engine: Engine, store: Store) -> None:
    """assess moves a complaint from {cs_agent, cs_assistant} to {cs_agent, cs_supervisor}: cs_assistant's row
    goes, cs_supervisor's comes (with the case's nearest deadline and its created_at, the inbox order), and
    the cs_agent row is left alone — not deleted and inserted again (each insert runs the order trigger's
    subqueries over the case's timers)."""
    cid = open_complaint(engine)
    with store.engine.begin() as conn:           # a log of the row changes, by row triggers of the test's own
        conn.execute(sa.text("CREATE TABLE queue_log (id INTEGER PRIMARY KEY, op VARCHAR(8), queue VARCHAR(80))"
                             if store.backend.name == "sqlite" else
                             "CREATE TABLE queue_log (id SERIAL PRIMARY KEY, op VARCHAR(8), queue VARCHAR(80))"))
        for op, row in (("insert", "NEW"), ("delete", "OLD")):
            create, _ = store.backend.row_trigger_ddl(f"test_queue_{op}", "case_queue", op.upper(),
                                                      f"INSERT INTO queue_log (op, queue) VALUES ('{op}', {row}.queue)")
            for statement in create:
                conn.execute(sa.text(statement))

    def rows() -> dict[str, tuple[Any, ...]]:
        with store.engine.connect() as conn:
            return {r[0]: tuple(r[1:]) for r in conn.execute(sa.text(
                "SELECT queue, due_at, created_at FROM case_queue WHERE case_id = :c"), {"c": cid})}

    before = rows()
    assert set(before) == {"cs_agent", "cs_assistant"}
    engine.advance(cid, "assess", "wang.fang")
    after = rows()
    assert set(after) == {"cs_agent", "cs_supervisor"}
    with store.engine.connect() as conn:
        log = [tuple(r) for r in conn.execute(sa.text("SELECT op, queue FROM queue_log"))]
        nearest = conn.execute(sa.text("SELECT MIN(due_at) FROM timers WHERE case_id = :c AND kind = 'sla' "
                                       "AND status IN ('running', 'breached')"), {"c": cid}).scalar()
    assert sorted(log) == [("delete", "cs_assistant"), ("insert", "cs_supervisor")]     # (PostgreSQL: one statement)
    assert after["cs_agent"] == before["cs_agent"] == (nearest, case_row(store, cid)["created_at"])
    assert after["cs_supervisor"] == (nearest, case_row(store, cid)["created_at"])


def test_two_sign_offs_at_once_one_wins_and_its_clock_restarts_once(store: Store, shipped_catalog: Catalog,
                                                                     clock: Clock) -> None:
    """Both planned on the same version; the case row's version check decides before any timer, window or
    log row of the loser is written (on SQLite the timers are read before that UPDATE is sent)."""
    seed = Engine(store, shipped_catalog, clock)
    cid = refund_to_signing(seed)
    clock.advance(hours=1)
    results = race_two(store, shipped_catalog, clock, lambda eng: eng.sign(cid, "lin.xiao"))
    assert sorted(type(r).__name__ for r in results) == ["StaleCase", "dict"]
    assert [(w[0], w[4]) for w in _windows(store, cid)] == [("start", "met"), ("restart", None)]
    assert _timer(store, cid)["started_at"] == "2025-03-03T03:00:00.000Z"
    assert [r["event"] for r in audit_rows(store, cid)].count("sign") == 1
    assert verify(store).ok


def test_a_sweep_between_a_steps_timer_read_and_its_write_is_not_lost(engine: Engine, store: Store, clock: Clock,
                                                                     monkeypatch: Any) -> None:
    """A sweep gives the 50% warning of 每位签字人24小时 (warned 1, next_at moved) right after a sign-off read its
    timers and before it writes. The restart must leave the row as if the sweep had come first: warned back
    to 0 and the fresh schedule. On PostgreSQL the step read the timers unlocked, so its one write finds them
    moved and the step runs again with them locked; on SQLite (and with the timers locked) the sweep cannot
    get in: it waits, or as here gives up."""
    from caseflow.store import driver_sql
    cid = refund_to_signing(engine)
    clock.advance(hours=13)                                     # past the 50% warning (12 h)
    fresh = _timer(store, cid)
    other = sa.create_engine(store.url, connect_args={"timeout": 0.2} if store.backend.name == "sqlite" else {})
    read = driver_sql.case_timers
    swept: list[bool] = []

    def read_then_sweep(conn: Any, case_id: str) -> Any:
        found = read(conn, case_id)
        if not swept:
            try:
                with other.begin() as c:
                    if store.backend.name == "postgresql":
                        c.execute(sa.text("SET LOCAL lock_timeout = '500ms'"))
                    c.execute(sa.text("UPDATE timers SET warned = 1, next_at = due_at WHERE case_id = :c"),
                              {"c": case_id})
                swept.append(True)
            except sa.exc.OperationalError:
                swept.append(False)                         # the timers are locked (or SQLite's write lock)
        return found

    monkeypatch.setattr(driver_sql, "case_timers", read_then_sweep)
    try:
        engine.sign(cid, "lin.xiao")
    finally:
        other.dispose()
    assert swept == [store.backend.name == "postgresql"]
    after = _timer(store, cid)
    assert after["started_at"] == "2025-03-03T15:00:00.000Z" > fresh["started_at"]
    assert (after["status"], after["warned"]) == ("running", 0)
    assert after["due_at"] == "2025-03-04T15:00:00.000Z" and after["next_at"] == "2025-03-04T03:00:00.000Z"
    assert [(w[0], w[4]) for w in _windows(store, cid)] == [("start", "met"), ("restart", None)]
    assert [r["event"] for r in audit_rows(store, cid)].count("sign") == 1
    assert verify(store).ok


def test_a_steps_read_brings_the_rows_the_separate_reads_give(engine: Engine, store: Store, clock: Clock) -> None:
    """A step reads its case (with its sign-off evidence for a sign-off) and, on PostgreSQL, the case's timers
    in the same statement (driver_sql.read_for_step), kept for the step's read of its clocks: the case row,
    the evidence and the timers, with the texts its write compares, are those the separate reads give —
    for a case with a clock, one without, and a case that is not there."""
    from caseflow.store import driver_sql
    from caseflow.store.driver_run import sql_of
    signing = refund_to_signing(engine)
    clock.advance(hours=1)
    engine.sign(signing, "lin.xiao")
    plain = open_complaint(engine)
    engine.advance(plain, "assess", "wang.fang")
    engine.advance(plain, "reject", "wang.fang", {"assessment_note": "不属于公司责任"})       # clocks stopped
    with store.engine.connect() as conn:
        for cid in (signing, plain, "NO-SUCH-CASE"):
            assert driver_sql.read_for_step(conn, cid, signoffs=True) == driver_sql.read_case_signoffs(conn, cid)
            assert driver_sql.read_for_step(conn, cid) == (driver_sql.read_case(conn, cid), [])
            kept = driver_sql._READ.pop(conn, None)
            if not store.backend.one_statement_write:
                assert kept is None                 # SQLite reads its timers inside its write transaction
                continue
            if cid == "NO-SUCH-CASE":
                assert kept is None
                continue
            found = conn.exec_driver_sql(sql_of(conn).case_timers_seen.replace("%(case_id)s", "%s"), (cid,)).all()
            assert found and kept == (cid, case_row(store, cid)["version"], "|".join(r[-1] for r in found),
                                      [driver_sql.TimerRow._make(r[:-1]) for r in found])


_KINDS = ("open", "transition", "reject", "signoff", "migrate", "sla")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_KINDS), st.one_of(st.none(), st.integers(1, 6))), max_size=8),
       st.integers(1, 6))
def test_a_sign_offs_read_proves_what_the_whole_log_proves(engine: Engine, store: Store,
                                                           log: list[tuple[str, int | None]], version: int) -> None:
    """A sign-off's read brings the case's log rows only from the newest one at or before the case's version
    that is not a signature (driver_text.select_case_signoffs): the sign-offs they prove (audit.signoffs_of)
    are those the case's whole log proves — through rows of a later version (a racing signature), rows
    written before case_version was recorded (None: cannot say), a migration's carried-over sign-offs, and
    log rows of other kinds."""
    from caseflow.audit.chain import _SIGNOFF_ROWS, signoffs_of
    from caseflow.store import driver_sql
    from caseflow.store.tables import audit, cases
    cid = open_complaint(engine)
    rows = audit_rows(store, cid)
    base = {k: rows[0][k] for k in ("workflow", "definition", "effective_at", "recorded_at", "prev_hash", "hash")}
    moved = json.dumps({"@migration": {"signoffs": [[], [{"role": "finance_manager", "by": "zhou.min", "at": "t"}]]}})
    with store.engine.begin() as conn:
        for n, (kind, at_version) in enumerate(log):
            conn.execute(audit.insert().values(
                **base, case_id=cid, seq=len(rows) + 1 + n, kind=kind, event=kind, actor=f"p{n}",
                roles=json.dumps([f"role{n}"]), changes=moved if kind == "migrate" else "{}", case_version=at_version))
        conn.execute(cases.update().where(cases.c.id == cid).values(version=version))
    with store.engine.connect() as conn:
        _row, evidence = driver_sql.read_case_signoffs(conn, cid)
        whole = signoffs_of(conn.execute(_SIGNOFF_ROWS, {"case_id": cid}), version)
    assert signoffs_of(evidence, version) == whole
