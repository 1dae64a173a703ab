"""`caseflow inbox`: the cases waiting for one person, in groups, most urgent first, from one indexed query."""

from __future__ import annotations

import sqlalchemy as sa

from caseflow.runtime import assignment
from caseflow.views import inbox as view

from .helpers import open_complaint, open_refund, refund_to_signing


def visit(engine) -> str:
    return engine.open("followup_visit", "zhao.min", {"form_no": "TS-9", "customer_name": "李四",
                                                      "phone": "13900001111"})["id"]


def groups(rows):
    return {r["id"]: r["group"] for r in rows}


def test_inbox_sorts_cases_into_ready_needs_input_and_signoff(run, engine):
    requested = open_refund(engine)
    explaining = open_refund(engine, order_no="D-2")
    engine.advance(explaining, "start_before_work", "wang.fang")
    engine.advance(explaining, "sign_termination", "lin.xiao")
    signing = refund_to_signing(engine)
    # the agent may start the first refund (withdraw is on request: not a to-do)
    rows = run("--as", "wang.fang", "--json", "inbox").json()
    assert groups(rows) == {requested: "ready"}
    assert rows[0]["ready"] == [{"event": "start_before_work", "label_zh": "未开工退单", "inputs": []}]
    # the handler: the explanation needs fields, the first signature is theirs
    rows = {r["id"]: r for r in run("--as", "lin.xiao", "--json", "inbox").json()}
    assert {k: v["group"] for k, v in rows.items()} == {explaining: "needs_input", signing: "signoff",
                                                        requested: "ready"}
    assert rows[explaining]["needs_input"] == [{"event": "explain", "label_zh": "书写退单说明，阐明责任",
                                                "fields": ["reason", "responsibility"]}]
    assert rows[signing]["signoff"] == {"role": "handler", "label_zh": "经手人"}
    # the middle manager signs second: nothing yet; after the handler, it is theirs
    assert run("--as", "gao.feng", "--json", "inbox").json() == []
    engine.sign(signing, "lin.xiao")
    assert groups(run("--as", "gao.feng", "--json", "inbox").json()) == {signing: "signoff"}
    assert signing not in groups(run("--as", "lin.xiao", "--json", "inbox").json())


def test_inbox_row_shape_is_documented(run, engine):
    cid = open_complaint(engine)
    row = run("--as", "wang.fang", "--json", "inbox").json()[0]
    assert row == {
        "id": cid, "workflow": "complaint", "label_zh": "客户投诉", "group": "ready", "group_label_zh": "可办理",
        "state": "received", "state_label_zh": "受理", "assignee": None,
        "summary": {"form_no": "TS-2025-001", "customer_name": "张*", "category": "quality"},
        "ready": [{"event": "assess", "label_zh": "登记并开始投诉判断", "inputs": []}], "needs_input": [],
        "signoff": None, "due_at": "2025-03-03T04:00:00.000Z", "overdue": False, "updated_at": "2025-03-03T02:00:00.000Z"}


def test_assigned_cases_come_first_then_the_most_urgent(run, engine, clock):
    late = open_complaint(engine, form_no="TS-LATE", received_at="2025-03-01T10:00")   # 24h response overdue
    fresh = open_complaint(engine, form_no="TS-NEW")
    clock.advance(minutes=5)
    mine = open_complaint(engine, form_no="TS-MINE")
    clock.advance(minutes=5)
    assignment.assign(engine, mine, "zhou.jie", "wang.fang")
    rows = run("--as", "wang.fang", "--json", "inbox").json()
    assert [(r["id"], r["group"], r["overdue"]) for r in rows] == [
        (mine, "assigned", False), (late, "ready", True), (fresh, "ready", False)]
    human = run("--as", "wang.fang", "inbox").stdout.splitlines()
    assert human[0] == "分派给我 (assigned): 1"
    assert human[2] == "可办理 (ready): 2"
    assert human[3].startswith(f"  {late}") and "due 2025-03-02 10:00 !" in human[3]
    # someone else's case is theirs: it leaves the other agents' inboxes
    assert mine not in groups(run("--as", "liu.yang", "--json", "inbox").json())


def test_unassigned_assignee_only_work_is_to_claim_or_to_assign(run, engine):
    cid = visit(engine)
    assert groups(run("--as", "liu.yang", "--json", "inbox").json()) == {cid: "to_claim"}
    assert groups(run("--as", "zhou.jie", "--json", "inbox").json()) == {cid: "to_assign"}
    assert run("--as", "cao.ying", "--json", "inbox").json() == []
    assignment.claim(engine, cid, "liu.yang")
    assert groups(run("--as", "liu.yang", "--json", "inbox").json()) == {cid: "assigned"}
    assert run("--as", "zhou.jie", "--json", "inbox").json() == []
    assert run("--as", "wang.fang", "--json", "inbox").json() == []


def test_closed_cases_leave_the_assignees_inbox(run, engine):
    cid = open_complaint(engine)
    assignment.assign(engine, cid, "zhou.jie", "liu.yang")
    engine.advance(cid, "assess", "liu.yang")
    engine.advance(cid, "reject", "liu.yang", {"assessment_note": "不成立"})
    engine.advance(cid, "close", "liu.yang", {"reply_note": "已答复"})
    assert cid not in groups(run("--as", "liu.yang", "--json", "inbox").json())


def test_inbox_limit_keeps_the_most_urgent(run, engine, clock):
    first = open_complaint(engine, form_no="A")
    clock.advance(minutes=1)
    open_complaint(engine, form_no="B")
    rows = run("--as", "wang.fang", "--json", "inbox", "--limit", "1").json()
    assert [r["id"] for r in rows] == [first]


def test_inbox_needs_a_known_user(run, engine):
    r = run("--as", "nobody", "inbox")
    assert (r.exit_code, r.stderr.strip()) == (1, "error: unknown user 'nobody': not in org.yaml")


# -- the query -------------------------------------------------------------------------------

def _plan(engine, user: str) -> str:
    """The database's plan for the inbox query, with sequential scans made unattractive on PostgreSQL
    (a tiny test table would otherwise be scanned: what matters here is that the indexes apply)."""
    person = engine.person(user)
    with engine.store.engine.connect() as conn:
        q = view.queue_for(engine, conn, person)
        sql = str(view.query(engine, conn, q).compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))
        return "\n".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))


def test_the_inbox_is_one_query_that_uses_the_indexes(engine, store):
    refund_to_signing(engine)
    open_complaint(engine)
    plan = _plan(engine, "lin.xiao")
    assert "ix_cases_queue" in plan and "ix_cases_next_signoff" in plan and "ix_timers_" in plan
    if store.backend.name == "postgresql":
        assert "Seq Scan" not in plan
    else:
        assert "SCAN cases" not in plan and "SCAN timers" not in plan


def test_inbox_reads_only_the_rows_it_needs(engine, store):
    """The query returns the user's candidate cases, not every case (here: none of the refunds)."""
    for n in range(5):
        open_refund(engine, order_no=f"D-{n}")
    cid = open_complaint(engine)
    person = engine.person("zhao.min")                 # cs_assistant: complaints at 受理 only
    with store.engine.connect() as conn:
        q = view.queue_for(engine, conn, person)
        ids = [r.id for r in conn.execute(view.query(engine, conn, q))]
        total = conn.execute(sa.text("SELECT count(*) FROM cases")).scalar_one()
    assert (ids, total) == ([cid], 6)
