"""assign / claim / release, --balance and assignee_only: what an operator sees, and what a refusal leaves.

Every refusal is checked like every other one (style.md §8): exit code, the exact
line, the case row and its log unchanged, and the attempt recorded.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from caseflow.runtime import assignment
from caseflow.store.tables import attempts

from .conftest import audit_rows, case_row, snapshot
from .helpers import open_complaint, open_refund


def refused(run, store, cid, *args, code, message, event, error):
    """A refused CLI action: exit code, one exact line, nothing changed, one attempt recorded."""
    before = snapshot(store, cid)
    with store.engine.connect() as conn:
        tried = conn.execute(sa.select(sa.func.count()).select_from(attempts)).scalar_one()
    r = run(*args)
    assert r.exit_code == code, r.stderr
    assert r.stderr.strip() == message
    assert r.stdout == ""
    assert snapshot(store, cid) == before
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(attempts).order_by(attempts.c.id)).all()
    assert len(rows) == tried + 1
    assert (rows[-1].case_id, rows[-1].event, rows[-1].error) == (cid, event, error)


def visit(engine) -> str:
    """A follow-up visit case (scheduled), as a closed complaint spawns it; opened directly here."""
    return engine.open("followup_visit", "zhao.min", {"form_no": "TS-1", "customer_name": "张三",
                                                      "phone": "13812345678"})["id"]


def assignment_rows(store, cid):
    return [(r["kind"], r["event"], r["actor"], json.loads(r["changes"]), r["note"])
            for r in audit_rows(store, cid) if r["kind"] in ("assign", "work")]


def test_assign_records_who_to_whom_when_and_the_note(run, engine, store, clock):
    cid = open_complaint(engine)
    r = run("--as", "zhou.jie", "--json", "assign", cid, "liu.yang", "--note", "熟悉防水问题")
    assert r.exit_code == 0, r.stderr
    assert r.json()["assignee"] == "liu.yang" and r.json()["previous"] is None
    row = case_row(store, cid)
    assert (row["assignee"], row["assigned_at"], row["work_started_at"]) == ("liu.yang", "2025-03-03T02:00:00.000Z", None)
    assert assignment_rows(store, cid) == [("assign", "assign", "zhou.jie", {"assignee": [None, "liu.yang"]},
                                            "熟悉防水问题")]
    assert [r["effective_at"] for r in audit_rows(store, cid) if r["kind"] == "assign"] == ["2025-03-03T02:00:00.000Z"]
    shown = run("--as", "zhou.jie", "show", cid).stdout
    assert "assignee: liu.yang (since 2025-03-03 10:00; not started)" in shown
    assert run("--as", "zhou.jie", "--json", "show", cid).json()["assignee"] == "liu.yang"


def test_the_assignees_first_action_marks_the_start_of_work(run, engine, store, clock):
    cid = open_complaint(engine)
    assignment.assign(engine, cid, "zhou.jie", "liu.yang")
    clock.advance(hours=3)
    engine.advance(cid, "assess", "chen.jing")                  # someone else's action: not the start
    assert case_row(store, cid)["work_started_at"] is None
    clock.advance(hours=1)
    engine.advance(cid, "reject", "liu.yang", {"assessment_note": "非本公司施工"})
    rows = audit_rows(store, cid)
    kinds = [(r["kind"], r["event"], r["actor"]) for r in rows if r["kind"] in ("work", "transition")]
    assert kinds == [("transition", "assess", "chen.jing"), ("work", "start_work", "liu.yang"),
                     ("transition", "reject", "liu.yang")]
    work = next(r for r in rows if r["kind"] == "work")
    assert json.loads(work["changes"]) == {"work_started_at": [None, "2025-03-03T06:00:00.000Z"], "waited_s": 4 * 3600}
    assert work["note"] == "start of work by liu.yang; waited 4h since the assignment"
    assert case_row(store, cid)["work_started_at"] == "2025-03-03T06:00:00.000Z"
    clock.advance(hours=1)
    engine.advance(cid, "close", "liu.yang", {"reply_note": "已婉转答复"})
    assert [r["kind"] for r in audit_rows(store, cid)].count("work") == 1        # only the first action


def test_a_claim_is_the_start_of_work(run, engine, store, clock):
    cid = visit(engine)
    clock.advance(hours=2)
    r = run("--as", "wang.fang", "claim", cid)
    assert (r.exit_code, r.stdout.strip()) == (0, f"{cid}: claimed by wang.fang")
    assert assignment_rows(store, cid) == [
        ("assign", "claim", "wang.fang", {"assignee": [None, "wang.fang"]}, None),
        ("work", "start_work", "wang.fang", {"work_started_at": [None, "2025-03-03T04:00:00.000Z"], "waited_s": 7200},
         "start of work by wang.fang; waited 2h since the case's last change")]
    assert case_row(store, cid)["work_started_at"] == "2025-03-03T04:00:00.000Z"


def test_release_gives_the_case_back(run, engine, store):
    cid = visit(engine)
    assignment.claim(engine, cid, "wang.fang")
    r = run("--as", "wang.fang", "release", cid, "--note", "休假")
    assert (r.exit_code, r.stdout.strip()) == (0, f"{cid}: released by wang.fang (was wang.fang)")
    row = case_row(store, cid)
    assert (row["assignee"], row["assigned_at"], row["work_started_at"]) == (None, None, None)
    assert assignment_rows(store, cid)[-1] == ("assign", "release", "wang.fang", {"assignee": ["wang.fang", None]},
                                               "休假")


def test_refused_assign_without_an_assign_role(run, engine, store):
    cid = open_complaint(engine)
    refused(run, store, cid, "--as", "wang.fang", "assign", cid, "liu.yang", code=1, event="assign",
            error="AssignmentRefused",
            message=f"error: case {cid}: cannot assign in state received: wang.fang has none of the roles that "
                    f"assign: 客服主管(cs_supervisor)")


def test_refused_assign_in_a_workflow_nobody_assigns(run, engine, store):
    cid = open_refund(engine)
    refused(run, store, cid, "--as", "zhou.jie", "assign", cid, "wang.fang", code=1, event="assign",
            error="AssignmentRefused",
            message=f"error: case {cid}: cannot assign in state requested: nobody assigns refund cases "
                    f"(the workflow has no assign_roles)")


def test_refused_assign_to_someone_without_the_assignee_role(run, engine, store):
    cid = open_complaint(engine)
    refused(run, store, cid, "--as", "zhou.jie", "assign", cid, "tang.liang", code=1, event="assign",
            error="AssignmentRefused",
            message=f"error: case {cid}: cannot assign in state received: tang.liang may not hold it: an "
                    f"assignee needs one of the roles 客服专员(cs_agent)")


def test_refused_assign_to_an_unknown_user(run, engine, store):
    cid = open_complaint(engine)
    refused(run, store, cid, "--as", "zhou.jie", "assign", cid, "nobody.here", code=1, event="assign",
            error="UnknownUser", message="error: unknown user 'nobody.here': not in org.yaml")


def test_refused_claim_of_a_case_someone_holds(run, engine, store):
    cid = visit(engine)
    assignment.claim(engine, cid, "wang.fang")
    refused(run, store, cid, "--as", "liu.yang", "claim", cid, code=1, event="claim", error="AssignmentRefused",
            message=f"error: case {cid}: cannot claim in state scheduled: already assigned to wang.fang; "
                    f"they may release it, or a supervisor may reassign it")


def test_refused_claim_without_a_role_in_the_case(run, engine, store):
    cid = visit(engine)
    refused(run, store, cid, "--as", "cao.ying", "claim", cid, code=1, event="claim", error="AssignmentRefused",
            message=f"error: case {cid}: cannot claim in state scheduled: cao.ying may not hold it: an assignee "
                    f"needs one of the roles 客服专员(cs_agent), 客服助理(cs_assistant)")


def test_refused_release_of_someone_elses_case(run, engine, store):
    cid = visit(engine)
    assignment.claim(engine, cid, "wang.fang")
    refused(run, store, cid, "--as", "liu.yang", "release", cid, code=1, event="release", error="AssignmentRefused",
            message=f"error: case {cid}: cannot release in state scheduled: liu.yang has none of the roles that "
                    f"assign: 客服主管(cs_supervisor)")
    assert run("--as", "zhou.jie", "release", cid).exit_code == 0         # a supervisor may


def test_refused_assignee_only_event_by_someone_else(run, engine, store):
    cid = visit(engine)
    assignment.assign(engine, cid, "zhou.jie", "wang.fang")
    refused(run, store, cid, "--as", "liu.yang", "advance", cid, "record_visit", "--set", "visit_result=已回访",
            "--set", "satisfaction=satisfied", code=1, event="record_visit", error="NotAssignee",
            message=f"error: case {cid}: cannot record_visit in state scheduled: only the assignee wang.fang "
                    f"may do this")


def test_refused_assignee_only_event_on_an_unassigned_case(run, engine, store):
    cid = visit(engine)
    refused(run, store, cid, "--as", "liu.yang", "advance", cid, "attempt_failed", code=1, event="attempt_failed",
            error="NotAssignee",
            message=f"error: case {cid}: cannot attempt_failed in state scheduled: only the case's assignee may do "
                    f"this and it has none: claim it first (caseflow claim {cid})")
    shown = run("--as", "liu.yang", "--json", "show", cid).json()
    event = next(e for e in shown["events"] if e["event"] == "attempt_failed")
    assert event["missing"] == [f"assignee: only the case's assignee may do this and it has none: claim it first "
                                f"(caseflow claim {cid})"]


def test_balanced_assignment_picks_the_agent_with_the_fewest_open_cases(run, engine, store, clock):
    # cs_agent holders: chen.jing, liu.yang, wang.fang, wu.ting
    held = {"wang.fang": 2, "chen.jing": 1, "liu.yang": 1, "wu.ting": 3}
    for user, n in held.items():
        for _ in range(n):
            assignment.assign(engine, open_complaint(engine), "zhou.jie", user)
            clock.advance(minutes=1)
    closed = open_complaint(engine)                     # a closed case is not a load
    assignment.assign(engine, closed, "zhou.jie", "liu.yang")
    engine.advance(closed, "assess", "liu.yang")
    engine.advance(closed, "reject", "liu.yang", {"assessment_note": "不成立"})
    engine.advance(closed, "close", "liu.yang", {"reply_note": "已答复"})
    cid = open_complaint(engine)
    before = snapshot(store, cid)
    dry = run("--as", "zhou.jie", "--json", "assign", cid, "--balance", "--role", "cs_agent", "--dry-run").json()
    assert snapshot(store, cid) == before
    assert [(x["user"], x["open_cases"]) for x in dry["loads"]] == [
        ("chen.jing", 1), ("liu.yang", 1), ("wang.fang", 2), ("wu.ting", 3)]
    assert dry["assignee"] == "chen.jing"               # tie with liu.yang: chen.jing was given a case earlier
    r = run("--as", "zhou.jie", "assign", cid, "--balance")       # the role defaults to complaint's assign_to
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0] == (
        f"{cid}: assigned to chen.jing (fewest open assigned cases among 客服专员(cs_agent): chen.jing 1, "
        f"liu.yang 1, wang.fang 2, wu.ting 3 (tie: least recently assigned, then user id))")
    assert case_row(store, cid)["assignee"] == "chen.jing"
    assert assignment_rows(store, cid)[0][4].startswith("fewest open assigned cases among 客服专员(cs_agent)")


def test_list_filters_by_assignee_and_unassigned(run, engine):
    a, b = open_complaint(engine), open_complaint(engine, form_no="TS-2")
    assignment.assign(engine, a, "zhou.jie", "liu.yang")
    mine = run("--json", "list", "--assignee", "liu.yang").json()
    assert [(r["id"], r["assignee"]) for r in mine] == [(a, "liu.yang")]
    assert [r["id"] for r in run("--json", "list", "--unassigned").json()] == [b]
    header, _, row = run("list", "--assignee", "liu.yang").stdout.strip().splitlines()
    assert "经办人" in header.split() and row.split()[0] == a and "liu.yang" in row.split()
