"""The inbox's order is stored with the work queues: every write that moves a clock keeps it right.

Each `case_queue` row carries its case's nearest running or breached SLA deadline (and the
case's created_at, the tie-break), so a first page is an index-ordered LIMIT per queue. These
tests move clocks every way the runtime does — started and stopped by a step, restarted by a
sign-off and by a claim, breached by the sweep, recomputed by `migrate run`, started by an
import — and check what an operator sees (the deadline shown and the position in the inbox)
and that every stored row agrees with the case's clocks, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from caseflow.runtime import assignment
from caseflow.runtime.bulk import import_cases, read_rows
from caseflow.runtime.sweep import sweep
from caseflow.store.tables import case_queue, cases, timers
from caseflow.views import inbox as view

from .helpers import COMPLAINT, open_complaint, refund_to_signing


def stored_order_matches_the_clocks(engine) -> None:
    """Every queue row's due_at is its case's nearest running/breached SLA deadline, created_at the case's."""
    with engine.store.engine.connect() as conn:
        stored = {(r.case_id, r.queue): (r.due_at, r.created_at) for r in conn.execute(sa.select(case_queue))}
        live = sa.and_(timers.c.kind == "sla", timers.c.status.in_(("running", "breached")))
        nearest = dict(conn.execute(sa.select(timers.c.case_id, sa.func.min(timers.c.due_at)).where(live)
                                    .group_by(timers.c.case_id)).all())
        created = dict(conn.execute(sa.select(cases.c.id, cases.c.created_at)).all())
    assert stored
    assert stored == {(c, q): (nearest.get(c), created[c]) for c, q in stored}


def order(engine, user: str, limit: int | None = None) -> list[tuple[str, str | None]]:
    return [(r["id"], r["due_at"]) for r in view.inbox(engine, user, limit)]


def test_a_clock_started_and_stopped_by_a_step_moves_the_case(engine):
    """A complaint's 2-working-hour and 24-hour clocks start at open; rejecting it stops both, so it
    goes from first to last (no deadline) in the agent's inbox — in the step's own transaction."""
    early = open_complaint(engine, form_no="TS-EARLY", received_at="2025-03-03T09:00")
    late = open_complaint(engine, form_no="TS-LATE")
    assert order(engine, "wang.fang") == [(early, "2025-03-03T03:00:00.000Z"), (late, "2025-03-03T04:00:00.000Z")]
    engine.advance(early, "assess", "wang.fang")
    engine.advance(early, "reject", "wang.fang", {"assessment_note": "不属于公司责任"})
    assert order(engine, "wang.fang") == [(late, "2025-03-03T04:00:00.000Z"), (early, None)]
    assert order(engine, "wang.fang", 1) == [(late, "2025-03-03T04:00:00.000Z")]
    stored_order_matches_the_clocks(engine)


def test_a_clock_stopped_by_a_step_that_keeps_the_queue_moves_the_case(engine):
    """Assigned, a complaint stays in its assignee's queue from 受理 to 不成立答复; the step that stops its
    clocks changes no queue row but their deadline (the step's `restamp`)."""
    early = open_complaint(engine, form_no="TS-EARLY", received_at="2025-03-03T09:00")
    late = open_complaint(engine, form_no="TS-LATE")
    for cid in (early, late):
        assignment.assign(engine, cid, "zhou.jie", "liu.yang")
    assert [cid for cid, _ in order(engine, "liu.yang")] == [early, late]
    engine.advance(early, "assess", "liu.yang")
    engine.advance(early, "reject", "liu.yang", {"assessment_note": "不属于公司责任"})
    assert order(engine, "liu.yang") == [(late, "2025-03-03T04:00:00.000Z"), (early, None)]
    stored_order_matches_the_clocks(engine)


def test_a_sign_off_that_restarts_the_clock_moves_the_case(engine, clock):
    """A refund's 24-hour clock restarts with every signature: signed by the handler, the first refund's
    deadline is a day later and it follows the second one in the middle manager's inbox."""
    first = refund_to_signing(engine)
    clock.advance(hours=1)
    second = refund_to_signing(engine)
    engine.sign(second, "lin.xiao")
    clock.advance(hours=1)
    assert [cid for cid, _ in order(engine, "lin.xiao")] == [first]
    engine.sign(first, "lin.xiao")
    assert order(engine, "gao.feng") == [(second, "2025-03-04T03:00:00.000Z"), (first, "2025-03-04T04:00:00.000Z")]
    stored_order_matches_the_clocks(engine)


def test_assign_claim_and_release_keep_the_stored_deadlines(engine, clock):
    """The follow-up visit's one-week first contact starts on assign or claim and restarts on a new claim
    [000 §二.3]; the case moves between queues and its rows keep its nearest deadline (here the 7-day
    visit clock started at open, which the first contact cannot precede)."""
    visits = [engine.open("followup_visit", "zhao.min", {"form_no": f"TS-V{n}", "customer_name": "李四",
                                                        "phone": "13900001111"})["id"] for n in range(2)]
    clock.advance(hours=1)
    for cid in visits:
        assignment.claim(engine, cid, "liu.yang")
        clock.advance(hours=1)
    assignment.release(engine, visits[0], "liu.yang")
    assignment.assign(engine, visits[0], "zhou.jie", "liu.yang")
    assert sorted(order(engine, "liu.yang")) == sorted((cid, "2025-03-10T02:00:00.000Z") for cid in visits)
    stored_order_matches_the_clocks(engine)


def test_a_breach_recorded_by_the_sweep_keeps_the_deadline_and_marks_it_overdue(engine, clock):
    """Breached, a clock still counts as the case's nearest deadline (as `show` lists it); the sweep
    writes the breach and the stored order in one transaction."""
    early = open_complaint(engine, form_no="TS-EARLY", received_at="2025-03-03T09:00")
    late = open_complaint(engine, form_no="TS-LATE")
    clock.advance(hours=3)
    report = sweep(engine, engine.now())
    assert report.breached
    rows = view.inbox(engine, "wang.fang")
    assert [(r["id"], r["due_at"], r["overdue"]) for r in rows] == [
        (early, "2025-03-03T03:00:00.000Z", True), (late, "2025-03-03T04:00:00.000Z", True)]
    stored_order_matches_the_clocks(engine)


def test_migrate_run_recomputes_the_deadline_the_inbox_shows(engine, tmp_path):
    """v2 of the complaint answers within 12 hours instead of 24: a complaint received on a Friday
    evening (its 2-working-hour clock runs to Monday) is due 12 hours earlier once migrated."""
    from caseflow.migration.run import migrate

    from .migration.support import plan
    friday = open_complaint(engine, form_no="TS-FRI", received_at="2025-02-28T20:00")
    assert dict(order(engine, "wang.fang"))[friday] == "2025-03-01T12:00:00.000Z"
    migrate(engine, plan(engine, tmp_path, "strict", "complaint"), "zhang.wei")
    assert dict(order(engine, "wang.fang"))[friday] == "2025-03-01T00:00:00.000Z"
    stored_order_matches_the_clocks(engine)


def test_imported_cases_carry_their_deadlines(engine, tmp_path):
    """A bulk import writes the queue rows and their deadlines in its batches."""
    path = tmp_path / "complaints.jsonl"
    import json
    received = ["2025-03-03T10:00", "2025-03-03T09:30", "2025-03-03T09:00"]     # 2 working hours from each
    path.write_text("\n".join(json.dumps({**COMPLAINT, "form_no": f"TS-I{n}", "received_at": at}, ensure_ascii=False)
                              for n, at in enumerate(received)) + "\n", encoding="utf-8")
    report = import_cases(engine, "complaint", "wang.fang", read_rows(path), batch=2)
    assert len(report.opened) == 3
    ids = [r["id"] for r in report.opened]
    assert order(engine, "wang.fang") == [(ids[2], "2025-03-03T03:00:00.000Z"), (ids[1], "2025-03-03T03:30:00.000Z"),
                                          (ids[0], "2025-03-03T04:00:00.000Z")]
    stored_order_matches_the_clocks(engine)


def test_every_kind_of_timer_write_keeps_the_stored_order(engine):
    """Revision 0013 runs the timers' order triggers only for a row change that can move the order (WHEN on
    the row's own values). Any SQL write of a clock — one row or many, INSERT, UPDATE of any column, DELETE,
    a kind or status that starts or stops counting, a deadline moved or cleared — leaves every queue row
    with its case's nearest running or breached SLA deadline: a seeded sequence of such writes, checked
    after each one."""
    import random
    cases_ = [open_complaint(engine, form_no=f"TS-W{n}", received_at=f"2025-03-03T0{n + 1}:00") for n in range(3)]
    stored_order_matches_the_clocks(engine)
    rng = random.Random(18)
    dues = [None, "2025-03-03T01:00:00.000Z", "2025-03-04T05:00:00.000Z", "2025-03-05T00:00:00.000Z"]
    statuses = ["running", "breached", "paused", "met", "cancelled", "fired"]
    with engine.store.engine.connect() as conn:
        ids = list(conn.execute(sa.select(timers.c.id)).scalars())
    for n in range(60):
        choice = rng.choice(["status", "due", "kind", "other", "case", "insert", "delete"])
        with engine.store.engine.begin() as conn:
            if choice == "insert" or not ids:
                cid = rng.choice(cases_)
                ids.append(conn.execute(timers.insert().returning(timers.c.id), {
                    "case_id": cid, "name": f"extra_{n}", "kind": rng.choice(["sla", "timer"]),
                    "status": rng.choice(statuses), "started_at": "2025-03-03T00:00:00.000Z",
                    "due_at": rng.choice(dues), "next_at": None}).scalar_one())
            elif choice == "delete":
                conn.execute(timers.delete().where(timers.c.id == ids.pop(rng.randrange(len(ids)))))
            elif choice == "case":              # one statement, every clock of a case
                conn.execute(timers.update().where(timers.c.case_id == rng.choice(cases_))
                             .values(status=rng.choice(statuses), due_at=rng.choice(dues)))
            else:
                values = {"status": {"status": rng.choice(statuses)}, "due": {"due_at": rng.choice(dues)},
                          "kind": {"kind": rng.choice(["sla", "timer"])},
                          "other": {"warned": rng.randrange(3), "next_at": rng.choice(dues)}}[choice]
                conn.execute(timers.update().where(timers.c.id == rng.choice(ids)).values(**values))
        stored_order_matches_the_clocks(engine)


def test_a_queue_row_marked_ordered_by_its_writer_is_left_as_written(engine):
    """A statement that works out a queue row's order itself marks the row `ordered` (revision 0013): the
    database leaves it as written. A row written without the mark (assignment, `migrate run`, SQL of one's
    own) is still checked and put right. Every queue row caseflow's own steps, opens and imports write
    carries the mark and the right order."""
    cid = open_complaint(engine)
    engine.advance(cid, "assess", "wang.fang")
    with engine.store.engine.connect() as conn:
        marks = {r.queue: r.ordered for r in conn.execute(sa.select(case_queue).where(case_queue.c.case_id == cid))}
    assert marks and all(marks.values())
    stored_order_matches_the_clocks(engine)
    created = engine.read_case(cid).created_at
    with engine.store.engine.begin() as conn:
        for queue, mark in (("marked", {"ordered": True}), ("unmarked", {})):
            conn.execute(case_queue.insert(), {"case_id": cid, "queue": queue, "workflow": "complaint",
                                               "due_at": "2099-01-01T00:00:00.000Z", "created_at": created, **mark})
    with engine.store.engine.connect() as conn:
        due = dict(conn.execute(sa.select(case_queue.c.queue, case_queue.c.due_at)
                                .where(case_queue.c.case_id == cid)).all())
    assert due["marked"] == "2099-01-01T00:00:00.000Z"
    assert due["unmarked"] == due[sorted(marks)[0]] != "2099-01-01T00:00:00.000Z"
