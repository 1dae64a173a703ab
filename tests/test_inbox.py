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
        "signoff": None, "due_at": "2025-03-03T04:00:00.000Z", "overdue": False, "updated_at": "2025-03-03T02:00:00.000Z",
        "created_at": "2025-03-03T02:00:00.000Z"}


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

def _plan(engine, user: str, first: int | None = None) -> str:
    """The database's plan for the inbox query (its first page with `first`), with sequential scans made
    unattractive on PostgreSQL (a tiny test table would otherwise be scanned: what matters here is that
    the indexes apply)."""
    person = engine.person(user)
    with engine.store.engine.connect() as conn:
        q = view.queue_for(engine, conn, person)
        sql = str(view.query(q, first).compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))
        return "\n".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))


def test_the_inbox_is_one_query_that_uses_the_indexes(engine, store):
    refund_to_signing(engine)
    open_complaint(engine)
    plan = _plan(engine, "lin.xiao")
    assert "ix_case_queue_order" in plan and "ix_timers_" in plan
    if store.backend.name == "postgresql":
        assert "Seq Scan" not in plan
    else:
        assert "SCAN cases" not in plan and "SCAN timers" not in plan and "SCAN case_queue" not in plan


def test_a_first_page_reads_each_queue_in_order_from_the_index(engine, store):
    """With --limit, each of the person's queues gives its first rows straight from ix_case_queue_order
    (an ordered LIMIT each: no sort of a whole queue); only the few rows found are sorted."""
    refund_to_signing(engine)
    open_complaint(engine)
    plan = _plan(engine, "wang.fang", 60)
    if store.backend.name == "postgresql":
        assert "Seq Scan" not in plan and "ix_case_queue_order" in plan
        scans = [line for line in plan.splitlines() if "ix_case_queue_order" in line]
        sorts = [line for line in plan.splitlines() if "Sort  (" in line]     # Sort nodes
        assert scans and all("Index Only Scan" in line for line in scans)
        assert len(sorts) <= 2             # grouping the rows found, and the page: never a whole queue
    else:
        searches = [line for line in plan.splitlines() if "case_queue" in line]
        assert searches and all("USING COVERING INDEX ix_case_queue_order (queue=? AND workflow=? AND due_at"
                                in line for line in searches)
        assert plan.count("USE TEMP B-TREE FOR ORDER BY") == 2     # the page and the final order only
        assert "SCAN cases" not in plan and "SCAN timers" not in plan


def _found(engine, user: str) -> list[str]:
    """The ids the inbox query returns for a person (before any row is described)."""
    person = engine.person(user)
    with engine.store.engine.connect() as conn:
        return [r.id for r in conn.execute(view.query(view.queue_for(engine, conn, person)))]


def test_inbox_reads_only_the_rows_it_needs(engine, store):
    """The query returns the user's candidate cases, not every case (here: none of the refunds)."""
    for n in range(5):
        open_refund(engine, order_no=f"D-{n}")
    cid = open_complaint(engine)
    assert _found(engine, "zhao.min") == [cid]          # cs_assistant: complaints at 受理 only
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cases")).scalar_one() == 6


def forwarded(engine, dept: str, n: int) -> str:
    cid = open_complaint(engine, form_no=f"TS-{dept}-{n}")
    engine.advance(cid, "assess", "wang.fang")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": dept})
    return cid


def test_a_department_finds_exactly_its_forwarded_complaints(engine, store):
    """The complaint forwarded to a department is its people's work [002 §4.5.2] — found through the
    stored queue, so the query returns the department's cases and nothing it would have to drop."""
    mine = {forwarded(engine, "tech_dept", n) for n in range(3)}
    others = {forwarded(engine, dept, n) for dept in ("engineering", "sales_dept", "customer_service")
              for n in range(2)}
    assert set(_found(engine, "deng.chao")) == mine
    assert {r["id"]: r["group"] for r in view.inbox(engine, "deng.chao")} == dict.fromkeys(mine, "needs_input")
    assert set(_found(engine, "fu.qiang")) == {c for c in others if "sales" in engine.read_case(c).data["form_no"]}
    with store.engine.connect() as conn:
        queues = {r.queue for r in conn.execute(sa.text("SELECT queue FROM case_queue WHERE case_id = :c"),
                                                {"c": sorted(mine)[0]})}
    assert queues == {"tech_dept", "cs_supervisor"}             # find_cause: the department, or 客服主管


def test_the_queue_follows_every_write(engine, store):
    """Assigning takes a case out of the role queues into the assignee's; a sign-off moves it on; closing empties it."""
    def queues(cid: str) -> set[str]:
        with store.engine.connect() as conn:
            return {r.queue for r in conn.execute(sa.text("SELECT queue FROM case_queue WHERE case_id = :c"),
                                                  {"c": cid})}

    cid = open_complaint(engine)
    assert queues(cid) == {"cs_agent", "cs_assistant"}
    assignment.assign(engine, cid, "zhou.jie", "liu.yang")
    assert queues(cid) == {"@liu.yang"}
    assignment.release(engine, cid, "liu.yang")
    assert queues(cid) == {"cs_agent", "cs_assistant"}
    engine.advance(cid, "assess", "wang.fang")
    engine.advance(cid, "reject", "wang.fang", {"assessment_note": "不成立"})
    engine.advance(cid, "close", "wang.fang", {"reply_note": "已答复"})
    assert queues(cid) == set()
    signing = refund_to_signing(engine)
    assert "handler" in queues(signing) and "middle_manager" not in queues(signing)
    engine.sign(signing, "lin.xiao")
    assert "middle_manager" in queues(signing) and "handler" not in queues(signing)


def test_an_order_any_sign_off_is_in_every_unsigned_signers_inbox(engine, store):
    """Self-review approval: 客服经理 and 副总经理 sign in any order [001 §四.1], so both see it at once."""
    cid = forwarded(engine, "engineering", 1)
    engine.advance(cid, "find_cause", "tang.liang", {"root_cause": "防水层破损", "responsible_person": "xu.peng",
                                                     "solution": "重做防水"})
    with store.engine.connect() as conn:
        review = conn.execute(sa.text("SELECT id FROM cases WHERE workflow = 'self_review'")).scalar_one()
    assert {r["id"]: r["group"] for r in view.inbox(engine, "xu.peng")} == {review: "needs_input"}   # only his
    assert review not in _found(engine, "wang.fang")          # a staff role, but not the responsible person
    engine.advance(review, "submit", "xu.peng", {"review_text": "未按工艺做闭水试验"})
    for signer, role in (("zheng.hai", "cs_manager"), ("he.jianguo", "deputy_gm")):
        rows = {r["id"]: r for r in view.inbox(engine, signer)}
        assert rows[review]["group"] == "signoff" and rows[review]["signoff"]["role"] == role
    engine.sign(review, "he.jianguo")                         # the second in the chain signs first
    assert review not in {r["id"] for r in view.inbox(engine, "he.jianguo")}
    assert {r["id"]: r["group"] for r in view.inbox(engine, "zheng.hai")}.get(review) == "signoff"


def test_upgrading_a_database_computes_the_queues_of_its_open_cases(engine, store):
    """Revisions 0009_case_queue and 0010_queue_order fill `case_queue` — queues, nearest deadline, created_at —
    for the cases already open, as the writes would have."""
    from alembic import command

    from caseflow.store import migrate
    forwarded(engine, "tech_dept", 1)
    refund_to_signing(engine)
    assignment.claim(engine, visit(engine), "liu.yang")
    closed = open_complaint(engine, form_no="TS-CLOSED")
    for event, sets in (("assess", {}), ("reject", {"assessment_note": "不成立"}), ("close", {"reply_note": "已答复"})):
        engine.advance(closed, event, "wang.fang", sets)

    def stored() -> set[tuple[str, str, str]]:
        with store.engine.connect() as conn:
            return {tuple(r) for r in conn.execute(sa.text("SELECT case_id, queue, workflow, due_at, created_at "
                                                           "FROM case_queue"))}

    written = stored()
    assert written and not any(row[0] == closed for row in written)
    cfg = migrate._config()
    with store.engine.begin() as conn:                     # back to the schema before the queues existed
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008_chain_head")
    store.migrate()                                        # what the next CLI call (or `db upgrade`) does
    assert migrate.current(store) == migrate.HEAD == "0013_queue_order_when"
    assert stored() == written
