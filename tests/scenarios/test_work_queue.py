"""processes.md §4 Assigning work: balanced assignment, the week's first contact, the forwarded complaint.

Sources: 000 §二.3 (客服主管按照负责客户数量均衡、兼顾业务能力旳原则，分派给有关客服专人。
客服专人负责旳客户，应在一周内与客户进行沟通，并做具体备案), 002 §4.5.2 (《客户问题处理表》
转给相关问题处理者（部门）). Each test names its rule; RULES.md maps them.
"""

from __future__ import annotations

import sqlalchemy as sa

from caseflow.errors import AssignmentRefused, NotAssignee
from caseflow.runtime import assignment
from caseflow.runtime.sweep import sweep
from caseflow.store.tables import timers
from caseflow.views.inbox import inbox

from ..conftest import audit_rows
from ..helpers import COMPLAINT, open_complaint, refund_to_signing
from .common import escalations, notices, refused


def visit(engine) -> str:
    """A 回访 case as a closed complaint opens it (opened directly here)."""
    return engine.open("followup_visit", "zhao.min", {"form_no": "TS-2025-001", "customer_name": "张三",
                                                      "phone": "13812345678"})["id"]


def in_inbox(engine, user: str) -> dict[str, str]:
    return {r["id"]: r["group"] for r in inbox(engine, user)}


def clock_row(store, cid: str, name: str) -> dict:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(timers).where(timers.c.case_id == cid, timers.c.name == name))
                    .one()._mapping)


def test_supervisor_assigns_a_complaint_to_the_agent_holding_the_fewest_customers(engine, store, clock):
    """[000 §二.3] 按照负责客户数量均衡: balanced by how many each already holds."""
    for user, n in {"wang.fang": 2, "chen.jing": 2, "liu.yang": 1, "wu.ting": 2}.items():
        for _ in range(n):
            assignment.assign(engine, open_complaint(engine), "zhou.jie", user)
    cid = open_complaint(engine, form_no="TS-2025-099")
    r = assignment.assign(engine, cid, "zhou.jie", None, balance=True)
    assert r["assignee"] == "liu.yang"
    assert r["why"] == ("fewest open assigned cases among 客服专员(cs_agent): liu.yang 1, chen.jing 2, "
                        "wang.fang 2, wu.ting 2")
    row = [x for x in audit_rows(store, cid) if x["kind"] == "assign"][0]
    assert (row["actor"], row["note"]) == ("zhou.jie", r["why"])
    assert in_inbox(engine, "liu.yang")[cid] == "assigned"


def test_supervisors_judgement_of_ability_overrides_the_balance(engine, store):
    """[000 §二.3] 兼顾业务能力: the supervisor may name the agent; only the supervisor assigns."""
    assignment.assign(engine, open_complaint(engine), "zhou.jie", "wang.fang")
    cid = open_complaint(engine, form_no="TS-2025-100")
    assignment.assign(engine, cid, "zhou.jie", "wang.fang", note="熟悉防水问题")     # not the least loaded
    assert engine.read_case(cid).assignee == "wang.fang"
    other = open_complaint(engine, form_no="TS-2025-101")
    refused(store, other, lambda: assignment.assign(engine, other, "wang.fang", "liu.yang"), AssignmentRefused,
            f"case {other}: cannot assign in state received: wang.fang has none of the roles that assign: "
            f"客服主管(cs_supervisor)")


def test_the_assigned_agent_contacts_the_customer_within_a_week_of_assignment(engine, store, clock):
    """[000 §二.3] 应在一周内与客户进行沟通,并做具体备案: an SLA from the assignment."""
    cid = visit(engine)
    clock.set("2025-03-04 09:00")
    assignment.assign(engine, cid, "zhou.jie", "liu.yang")
    assert clock_row(store, cid, "first_contact_1w")["due_at"] == "2025-03-11T01:00:00.000Z"   # 03-11 09:00 Shanghai
    clock.set("2025-03-11 09:30")
    sweep(engine, engine.now())
    assert clock_row(store, cid, "first_contact_1w")["status"] == "breached"
    assert "客服专人未在分派后一周内与顾客沟通" in escalations(store, cid)
    assert ("cs_supervisor", "回访未在分派后一周内完成，请督办或重新分派") in notices(store, cid)


def test_a_contact_recorded_within_the_week_meets_it_and_a_reassignment_gives_a_new_week(engine, store, clock):
    cid = visit(engine)
    clock.set("2025-03-04 09:00")
    assignment.assign(engine, cid, "zhou.jie", "liu.yang")
    clock.set("2025-03-06 09:00")
    assignment.assign(engine, cid, "zhou.jie", "chen.jing", note="刘洋休假")
    assert clock_row(store, cid, "first_contact_1w")["due_at"] == "2025-03-13T01:00:00.000Z"
    clock.set("2025-03-10 15:00")
    engine.advance(cid, "record_visit", "chen.jing", {"visit_result": "防水已重做，无渗漏", "satisfaction": "satisfied"})
    assert clock_row(store, cid, "first_contact_1w")["status"] == "met"


def test_only_the_assigned_agent_records_the_call(engine, store):
    """[000 §二.3] 客服专人负责旳客户: the visit is the assigned agent's; others are refused in one line."""
    cid = visit(engine)
    sets = {"visit_result": "已回访", "satisfaction": "satisfied"}
    refused(store, cid, lambda: engine.advance(cid, "record_visit", "wang.fang", sets), NotAssignee,
            f"case {cid}: cannot record_visit in state scheduled: only the case's assignee may do this and it "
            f"has none: claim it first (caseflow claim {cid})")
    assert in_inbox(engine, "wang.fang") == {cid: "to_claim"}          # every agent sees it is there to take
    assert in_inbox(engine, "zhou.jie") == {cid: "to_assign"}          # and the supervisor, to distribute
    assignment.assign(engine, cid, "zhou.jie", "liu.yang")
    refused(store, cid, lambda: engine.advance(cid, "record_visit", "wang.fang", sets), NotAssignee,
            f"case {cid}: cannot record_visit in state scheduled: only the assignee liu.yang may do this")
    assert in_inbox(engine, "wang.fang") == {} and in_inbox(engine, "liu.yang") == {cid: "assigned"}
    engine.advance(cid, "record_visit", "liu.yang", sets)
    assert engine.read_case(cid).state == "completed"


def test_a_forwarded_complaint_is_the_responsible_departments_work(engine):
    """[002 §4.5.2] 《客户问题处理表》转给相关问题处理部门: its people see it in their inbox, others do not."""
    tech = open_complaint(engine)
    engineering = open_complaint(engine, form_no="TS-2025-002")
    for cid, dept in ((tech, "tech_dept"), (engineering, "engineering")):
        engine.advance(cid, "assess", "wang.fang")
        engine.advance(cid, "accept", "wang.fang", {"responsible_dept": dept})
    for person in ("deng.chao", "xu.ke"):                             # 技术部
        rows = {r["id"]: r for r in inbox(engine, person)}
        assert list(rows) == [tech]
        assert rows[tech]["needs_input"] == [{"event": "find_cause", "label_zh": "查明原因和责任人",
                                              "fields": ["root_cause", "responsible_person"]}]
    assert list(in_inbox(engine, "tang.liang")) == [engineering]      # 工程部
    assert in_inbox(engine, "fu.qiang") == {}                         # 市场销售部: nothing forwarded to it
    assert set(in_inbox(engine, "zhou.jie")) >= {tech, engineering}   # cs_supervisor may find the cause too


def test_what_waits_for_each_signer_follows_the_signoff_order(engine):
    """[processes.md §4, 001 §四.2] what is waiting follows from the sign-off order, in turn."""
    cid = refund_to_signing(engine)
    chain = [("lin.xiao", "handler"), ("gao.feng", "middle_manager"), ("liang.yong", "district_lead"),
             ("zhang.wei", "company_leader")]
    for i, (user, role) in enumerate(chain):
        assert in_inbox(engine, user).get(cid) == "signoff", (user, role)
        for later, _ in chain[i + 1:]:
            assert cid not in in_inbox(engine, later)
        engine.sign(cid, user)
    assert engine.read_case(cid).state == "approved"
    assert in_inbox(engine, "cao.ying") == {cid: "needs_input"}        # 财务部: pay, once the payment_ref is given


def test_a_received_complaint_waits_for_registration_by_customer_service(engine):
    """[001 §一.3 助理 E] 客服助理处理客户投诉并如实记录: a new complaint is the assistants' and agents' work."""
    cid = engine.open("complaint", "wang.fang", {**COMPLAINT, "form_no": "TS-2025-003"})["id"]
    for user in ("zhao.min", "wang.fang"):
        assert in_inbox(engine, user) == {cid: "ready"}
    assert in_inbox(engine, "tang.liang") == {}
