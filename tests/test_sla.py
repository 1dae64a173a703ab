"""How clocks behave: deadline arithmetic, pause/resume, conditions, provisional deadlines,
what `show`, `list --overdue`, `sla run` and `sla status` print, and exactly-once firing
with two sweepers at the same time. The business deadlines themselves are in
scenarios/test_deadlines.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest
import sqlalchemy as sa

from caseflow.audit.verify import verify
from caseflow.catalog import SHIPPED, Catalog
from caseflow.definition.compile import parse_duration
from caseflow.definition.model import Clock as ClockDef
from caseflow.definition.model import Trigger
from caseflow.runtime.engine import Engine
from caseflow.runtime.identity import apply_org
from caseflow.runtime.sweep import count_due, recompute_provisional, sweep
from caseflow.sla.clocks import deadline, ts
from caseflow.sla.compliance import compliance as sla_compliance
from caseflow.store.locks import NOTICE
from caseflow.store.tables import audit, outbox, timers

from .conftest import audit_rows, shanghai
from .helpers import open_complaint

ROOT = Path(__file__).resolve().parent.parent


def at(local: str) -> str:
    return ts(shanghai(local))


def timer(store, cid: str, name: str) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(timers).where(timers.c.case_id == cid, timers.c.name == name)).first()
    return dict(row._mapping) if row else None


def notes(store, cid: str, *kinds: str) -> list[str]:
    return [r["note"] for r in audit_rows(store, cid) if r["kind"] in kinds]


def complaint_at(engine, clock, when: str) -> str:
    clock.set(when)
    return open_complaint(engine, received_at=when.replace(" ", "T"))


# -- deadline arithmetic ------------------------------------------------------------------------

def _clock(within: str, working_days: str = "elapsed") -> ClockDef:
    return ClockDef(name="c", label_zh="c", kind="sla", start=Trigger(), stop=Trigger(), pause=Trigger(),
                    resume=Trigger(), restart=Trigger(), from_field=None, when=None,
                    within=parse_duration(within), working_days=working_days, warn_at=(), actions=())


DEADLINES = [
    ("24 hours", "elapsed", "2025-01-24 17:00", "2025-01-25 17:00"),
    ("7 days", "elapsed", "2025-09-28 10:00", "2025-10-05 10:00"),
    ("2 weeks", "elapsed", "2025-03-03 10:00", "2025-03-17 10:00"),
    ("1 month", "elapsed", "2025-01-31 10:00", "2025-02-28 10:00"),
    ("1 month", "elapsed", "2024-01-31 10:00", "2024-02-29 10:00"),
    ("1 year", "elapsed", "2024-02-29 10:00", "2025-02-28 10:00"),
    ("1 year", "elapsed", "2025-02-08 10:00", "2026-02-08 10:00"),
    ("2 working hours", "elapsed", "2025-01-24 17:00", "2025-01-26 10:00"),
    ("30 working minutes", "elapsed", "2025-03-03 11:45", "2025-03-03 13:45"),
    ("2 working days", "elapsed", "2025-01-27 10:00", "2025-02-06 10:00"),
    ("2 working days", "end_of_day", "2025-01-27 10:00", "2025-02-06 18:00"),
    ("2 working days", "end_of_day", "2025-02-07 10:00", "2025-02-10 18:00"),
    ("1 working days", "end_of_day", "2025-10-10 08:00", "2025-10-11 18:00"),
]


@pytest.mark.parametrize("within, how, start, due", DEADLINES)
def test_deadline_counts_clock_time_in_the_workflows_zone_and_working_time_on_its_calendar(
        shipped_catalog, within, how, start, due):
    d = shipped_catalog.get("complaint")
    got = deadline(_clock(within, how), shipped_catalog.calendar_for(d), d.tz, shanghai(start))
    assert (ts(got.at), got.provisional) == (at(due), False)


# -- conditions, pause and resume, events no longer possible (a workflow written for it) ---------

TICKET = """\
# yaml-language-server: $schema=../schemas/workflow.schema.json
workflow: ticket
label_zh: 工单
timezone: Asia/Shanghai
calendar: cn_office
data:
  type: object
  required: [title, priority]
  properties:
    title: {type: string}
    priority: {type: string, enum: [low, high]}
states:
  open: {label_zh: 处理中, initial: true}
  waiting: {label_zh: 等待顾客}
  done: {label_zh: 完成, final: true}
  timed_out: {label_zh: 超时关闭, final: true}
transitions:
  - {event: ask, label_zh: 询问顾客, from: open, to: waiting, roles: [cs_agent]}
  - {event: answer, label_zh: 顾客答复, from: waiting, to: open, roles: [cs_agent]}
  - {event: solve, label_zh: 解决, from: [open, waiting], to: done, roles: [cs_agent]}
  - {event: time_out, label_zh: 超时关闭, from: waiting, to: timed_out, system: true}
slas:
  - name: reply_4wh
    label_zh: 4个工作小时内解决
    start: {enter: open}
    stop: {event: solve}
    pause: {enter: waiting}
    within: 4 working hours
    warn_at: ["50%"]
    on_breach: [{escalate: 工单超时}]
  - name: urgent_1h
    label_zh: 紧急工单1小时
    start: {enter: open}
    stop: {leave: open}
    when: "priority == 'high'"
    within: 1 hour
    on_breach: [{escalate: 紧急工单超时}]
timers:
  - name: customer_silence
    label_zh: 顾客2天未答复
    start: {enter: waiting}
    within: 2 days
    on_due: [{fire: time_out}]
"""


@pytest.fixture
def ticket_engine(store, clock, tmp_path) -> Engine:
    folder = tmp_path / "workflows"
    folder.mkdir()
    for name in ("org.yaml", "calendars.yaml"):
        shutil.copy(SHIPPED / name, folder / name)
    (folder / "ticket.yaml").write_text(TICKET, encoding="utf-8")
    return Engine(store, Catalog.load(folder), clock)


def ticket(engine, priority: str = "low") -> str:
    return engine.open("ticket", "wang.fang", {"title": "发票", "priority": priority})["id"]


def test_paused_clock_keeps_its_remaining_working_time_and_resumes_from_it(ticket_engine, store, clock):
    clock.set("2025-03-03 10:00")
    cid = ticket(ticket_engine)
    assert timer(store, cid, "reply_4wh")["due_at"] == at("2025-03-03 15:30")    # lunch 12:00–13:30 excluded
    clock.set("2025-03-03 11:00")
    ticket_engine.advance(cid, "ask", "wang.fang")
    paused = timer(store, cid, "reply_4wh")
    assert (paused["status"], paused["due_at"], paused["next_at"]) == ("paused", None, None)
    clock.set("2025-03-04 09:00")
    shown = ticket_engine.read_case(cid)
    assert shown.state == "waiting"
    from caseflow.views.cases import show
    (reply, _silence) = show(ticket_engine, cid, "wang.fang")["slas"]
    assert (reply["status"], reply["remaining"]) == ("paused", "3h 00m of working time (paused)")
    ticket_engine.advance(cid, "answer", "wang.fang")
    resumed = timer(store, cid, "reply_4wh")
    assert (resumed["status"], resumed["due_at"]) == ("running", at("2025-03-04 12:00"))
    clock.set("2025-03-04 10:01")                 # half of the 4 working hours: 1 h before the pause + 1 h
    assert sweep(ticket_engine, ticket_engine.now()).warnings == 1
    clock.set("2025-03-04 12:01")
    assert sweep(ticket_engine, ticket_engine.now()).breached == 1
    assert notes(store, cid, "escalation") == ["工单超时"]


def test_clock_with_a_condition_starts_only_when_it_holds(ticket_engine, store, clock):
    assert timer(store, ticket(ticket_engine, "low"), "urgent_1h") is None
    assert timer(store, ticket(ticket_engine, "high"), "urgent_1h")["status"] == "running"


def test_timer_fires_its_system_event_and_closing_the_case_cancels_the_other_clocks(ticket_engine, store, clock):
    clock.set("2025-03-03 10:00")
    cid = ticket(ticket_engine)
    ticket_engine.advance(cid, "ask", "wang.fang")
    clock.set("2025-03-05 10:01")
    assert sweep(ticket_engine, ticket_engine.now()).fired == 1
    assert ticket_engine.read_case(cid).state == "timed_out"
    assert timer(store, cid, "reply_4wh")["status"] == "cancelled"
    assert "cancelled: case closed" in notes(store, cid, "sla")


def test_timer_whose_event_is_no_longer_possible_says_so_in_the_log(ticket_engine, store, clock):
    clock.set("2025-03-03 10:00")
    cid = ticket(ticket_engine)
    ticket_engine.advance(cid, "ask", "wang.fang")
    ticket_engine.advance(cid, "answer", "wang.fang")    # the customer answered; the timer has no stop
    clock.set("2025-03-05 10:01")
    assert sweep(ticket_engine, ticket_engine.now()).fired == 1
    assert ticket_engine.read_case(cid).state == "open"
    assert notes(store, cid, "timer")[-1] == "time_out is not possible in 处理中(open); nothing fired"


# -- provisional deadlines ----------------------------------------------------------------------

# Where the installed chinese-calendar's data ends is read from it, never assumed.
LAST = max(chinese_calendar.holidays).year
NEXT = LAST + 1
W2 = chinese_calendar.get_workdays(date(LAST, 12, 1), date(LAST, 12, 31))[-2]   # the last working day but one
GUESS, REAL = [d for d in (date(NEXT, 1, 1) + timedelta(days=i) for i in range(7)) if d.weekday() < 5][:2]


@pytest.fixture
def updated_engine(engine, store, clock, tmp_path) -> Engine:
    """The same workflows once the next year's holidays are known (its first weekday off), applied to the database."""
    folder = tmp_path / "updated"
    shutil.copytree(SHIPPED, folder)
    text = (folder / "calendars.yaml").read_text(encoding="utf-8")
    text = text.replace("    holidays: []", f"    holidays: [{GUESS}]")
    text = text.replace("    complete_years: []", f"    complete_years: [{NEXT}]")
    (folder / "calendars.yaml").write_text(text, encoding="utf-8")
    apply_org(engine, Catalog.load(folder), "zhang.wei", "next year's holidays published")
    return Engine(store, Catalog.load(folder), clock)


def accepted_at_year_end(engine, clock) -> str:
    cid = complaint_at(engine, clock, f"{W2} 09:00")
    engine.advance(cid, "assess", "zhao.min")
    clock.set(f"{W2} 10:00")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    return cid


def test_deadline_in_a_year_the_calendar_does_not_cover_is_provisional(engine, store, clock, run):
    cid = accepted_at_year_end(engine, clock)
    row = timer(store, cid, "dept_result_2wd")
    assert (row["due_at"], row["provisional"]) == (at(f"{GUESS} 10:00"), True)     # Mon–Fri guess
    assert row["next_at"] == at(f"{NEXT}-01-01 00:00")       # looked at again on the first uncovered day
    shown = run("--json", "--as", "wang.fang", "show", cid).json()["slas"]
    assert [c["provisional"] for c in shown if c["name"] == "dept_result_2wd"] == [True]
    assert "(provisional)" in run("--as", "wang.fang", "show", cid).stdout


def test_provisional_deadline_is_recomputed_by_the_sweeper_once_the_calendar_covers_it(
        engine, updated_engine, store, clock):
    cid = accepted_at_year_end(engine, clock)
    clock.set(f"{NEXT}-01-01 00:01")
    assert sweep(updated_engine, updated_engine.now()).rescheduled == 1
    row = timer(store, cid, "dept_result_2wd")
    assert (row["due_at"], row["provisional"]) == (at(f"{REAL} 10:00"), False)
    assert f"deadline recomputed: {GUESS} 10:00 → {REAL} 10:00 (now confirmed by the holiday calendar)" \
        in notes(store, cid, "sla")
    clock.set(f"{GUESS} 10:01")
    assert sweep(updated_engine, updated_engine.now()).breached == 0


def test_sla_run_recompute_updates_provisional_deadlines_at_once(engine, updated_engine, store, clock):
    cid = accepted_at_year_end(engine, clock)
    assert recompute_provisional(engine, engine.now()) == 0          # same data: nothing moves
    assert recompute_provisional(updated_engine, updated_engine.now()) == 1
    assert timer(store, cid, "dept_result_2wd")["due_at"] == at(f"{REAL} 10:00")


# -- show, list --overdue, sla run, sla status ------------------------------------------------------

def test_show_lists_each_clock_with_its_deadline_and_remaining_time(engine, clock, run):
    cid = complaint_at(engine, clock, "2025-03-03 10:00")
    clock.set("2025-03-03 11:30")
    view = run("--json", "--as", "wang.fang", "show", cid).json()
    assert [{k: c[k] for k in ("name", "kind", "status", "started_at", "due_at", "remaining", "warned",
                               "breached", "provisional")} for c in view["slas"]] == [
        {"name": "respond_24h", "kind": "sla", "status": "running", "started_at": at("2025-03-03 10:00"),
         "due_at": at("2025-03-04 10:00"), "remaining": "22h 30m", "warned": False, "breached": False,
         "provisional": False},
        {"name": "forward_2wh", "kind": "sla", "status": "running", "started_at": at("2025-03-03 10:00"),
         "due_at": at("2025-03-03 12:00"), "remaining": "30m of working time", "warned": False,
         "breached": False, "provisional": False},
    ]
    human = run("--as", "wang.fang", "show", cid).stdout
    assert "2个工作小时内转交责任部门(forward_2wh): running, due 2025-03-03 12:00  remaining 30m of working time" \
        in human


def test_show_reports_a_clock_past_its_deadline_as_breached_before_the_sweeper_runs(engine, clock, run):
    cid = complaint_at(engine, clock, "2025-03-03 10:00")
    clock.set("2025-03-03 14:05")
    forward = run("--json", "--as", "wang.fang", "show", cid).json()["slas"][1]
    assert (forward["status"], forward["remaining"], forward["breached"]) == ("breached", "overdue by 2h 05m", True)


def test_list_overdue_shows_cases_with_a_breached_sla_until_it_stops(engine, clock, run):
    late = complaint_at(engine, clock, "2025-03-03 10:00")
    complaint_at(engine, clock, "2025-03-03 13:00")
    clock.set("2025-03-03 14:01")
    assert run("sla", "run").exit_code == 0
    assert [r["id"] for r in run("--json", "list", "--overdue").json()] == [late]
    engine.advance(late, "assess", "zhao.min")
    engine.advance(late, "accept", "wang.fang", {"responsible_dept": "engineering"})
    assert run("--json", "list", "--overdue").json() == []


def test_sla_run_prints_what_it_did(engine, clock, run):
    complaint_at(engine, clock, "2025-03-03 10:00")
    clock.set("2025-03-03 22:01")                 # forward_2wh overdue, respond_24h half-way
    r = run("sla", "run")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.startswith("handled 2 due timer(s) in ")
    assert r.stdout.rstrip().endswith("s: 0 fired, 1 breached, 1 warning(s)")
    clock.set("2025-03-04 10:01")
    report = run("--json", "sla", "run").json()
    assert {k: report[k] for k in ("handled", "fired", "breached", "warnings", "skipped", "failures")} == \
        {"handled": 1, "fired": 0, "breached": 1, "warnings": 0, "skipped": 0, "failures": []}


def test_sla_status_summarises_compliance_per_workflow_and_sla(engine, clock, run):
    on_time = complaint_at(engine, clock, "2025-03-03 10:00")
    engine.advance(on_time, "assess", "zhao.min")
    engine.advance(on_time, "accept", "wang.fang", {"responsible_dept": "engineering"})
    complaint_at(engine, clock, "2025-03-03 10:00")                          # never touched
    clock.set("2025-03-05 10:01")                 # 2 working days after the accept, and a minute
    sweep(engine, engine.now())
    rows = {r["sla"]: r for r in sla_compliance(engine, "complaint")}
    assert {k: rows["forward_2wh"][k] for k in ("met", "breached", "overdue", "running", "on_time_pct")} == \
        {"met": 1, "breached": 1, "overdue": 1, "running": 0, "on_time_pct": 50.0}
    assert {k: rows["dept_result_2wd"][k] for k in ("met", "breached", "running")} == \
        {"met": 0, "breached": 1, "running": 0}
    assert run("--json", "sla", "status", "--workflow", "complaint").json() == sla_compliance(engine, "complaint")
    table = run("sla", "status").stdout.splitlines()
    assert table[1].split() == ["流程", "时限", "要求", "月份", "窗口", "按时", "超时", "其中仍逾期", "进行中", "取消",
                                "时钟", "曾超时时钟", "按时率%"]
    assert any(line.split() == ["complaint", "2个工作小时内转交责任部门", "2", "working", "hours", "2025-03", "2", "1", "1",
                                "1", "0", "0", "2", "1", "50.0"] for line in table)
    assert run("--json", "sla", "status", "--since", "2025-03-04").json() == []
    bad = run("sla", "status", "--workflow", "complaints")
    assert (bad.exit_code, "did you mean 'complaint'?" in bad.stderr) == (4, True)


# -- the sweep itself ------------------------------------------------------------------------------

def test_sweep_limit_handles_at_most_that_many_and_the_next_run_the_rest(engine, clock):
    for _ in range(3):
        complaint_at(engine, clock, "2025-03-03 10:00")
    clock.set("2025-03-05 10:00")
    assert count_due(engine, engine.now()) == 6
    ticks: list[int] = []
    assert sweep(engine, engine.now(), batch=1, limit=4, progress=ticks.append).handled == 4
    assert sum(ticks) == 4
    assert sweep(engine, engine.now(), batch=1).handled == 2
    assert count_due(engine, engine.now()) == 0


def test_a_closed_cards_clocks_are_cancelled_and_never_fire(engine, store, clock):
    clock.set("2025-03-03 10:00")
    cid = engine.open("member_card", "xie.na", {"name": "李娜", "phone": "13900000001"})["id"]
    engine.advance(cid, "issue", "xie.na", {"tier": "vip", "birth_date": "1990-01-01",
                                            "id_number": "110101199001011234", "member_id": "M1", "card_no": "C1",
                                            "same_day_cash": "300.00", "in_person": "true"})
    engine.advance(cid, "withdraw", "xie.na", {"cancel_reason": "会员申请退出"})
    with store.engine.connect() as conn:
        left = dict(conn.execute(sa.select(timers.c.name, timers.c.status).where(timers.c.case_id == cid)).all())
    assert left == {"card_expiry": "cancelled", "points_clearing": "cancelled", "monthly_points_review": "stopped"}
    clock.set("2027-01-01 10:00")
    assert sweep(engine, engine.now()).handled == 0


# -- two sweepers at once -----------------------------------------------------------------------

# PostgreSQL: issue #5's acceptance point, 10,000 due timers. SQLite (one writer at a time): 15 of
# `sla run`'s pages (200 due ids each) that both sweepers walk at once, claiming from the same windows
# of 16 ids (runtime/sweep.py): every page boundary and every claim race of a larger run
N_DUE = {"postgres": 10_000, "sqlite": 3_000}


@pytest.mark.timeout(600)
def test_two_sla_run_processes_fire_each_due_timer_exactly_once(store, shipped_catalog, db_url):
    """10,000 due timers on PostgreSQL, 3,000 on SQLite."""
    from bench.bench_sla import seed
    n_due = N_DUE["sqlite" if db_url.startswith("sqlite") else "postgres"]
    opened = shanghai("2025-03-03 10:00")
    seed(store, shipped_catalog, n_due, {opened + timedelta(hours=24): n_due}, opened + timedelta(days=3650),
         opened)
    env = {**os.environ, "CASEFLOW_DB": db_url, "CASEFLOW_WORKFLOWS": str(SHIPPED), "CASEFLOW_USER": "wei.hua",
           "CASEFLOW_NOW": (opened + timedelta(hours=25)).isoformat()}
    cmd = [sys.executable, "-c", "from caseflow.cli.main import main; main()", "--json", "sla", "run"]
    procs = [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=540) for p in procs]
    # two writers take turns: one may say it waits for the other's write lock (store/locks.py), nothing else
    assert [(p.returncode, err.replace(NOTICE + "\n", "")) for p, (_, err) in zip(procs, outputs)] == [(0, "")] * 2
    reports = [json.loads(out) for out, _ in outputs]
    assert sum(r["breached"] for r in reports) == n_due
    assert all(r["breached"] for r in reports), reports       # they ran at the same time: each fired some
    with store.engine.connect() as conn:
        per_case = conn.execute(sa.select(audit.c.case_id, sa.func.count()).where(
            audit.c.kind == "sla", audit.c.note.like("breached:%")).group_by(audit.c.case_id)).all()
        escalated = conn.execute(sa.select(sa.func.count()).select_from(audit)
                                 .where(audit.c.kind == "escalation")).scalar_one()
        notified = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
        statuses = dict(conn.execute(sa.select(timers.c.status, sa.func.count()).group_by(timers.c.status)).all())
    assert (len(per_case), {n for _, n in per_case}) == (n_due, {1})
    assert (escalated, notified, statuses) == (n_due, n_due, {"breached": n_due})
    assert verify(store).problems == []
    print(f"two sweepers: {[r['breached'] for r in reports]} breached, {[r['skipped'] for r in reports]} "
          f"skipped, {[r['seconds'] for r in reports]} s")
