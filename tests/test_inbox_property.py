"""For a generated mix of cases, `inbox` agrees exactly with asking `show` about every case.

Hypothesis walks cases of the shipped workflows some way along their paths, assigns,
claims and releases some of them and lets time pass (so some SLAs are overdue). Then,
for people holding every role, the inbox must list exactly the cases that `show`
says they have work in — with the same group, events, fields, sign-off and nearest
SLA deadline — in the documented order. The oracle reads nothing but `show`'s output
and the definitions; the inbox reads one query.
"""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseflow.errors import CaseflowError, NotPermitted
from caseflow.runtime import assignment
from caseflow.store.tables import cases
from caseflow.views.cases import show
from caseflow.views.inbox import inbox

from .helpers import COMPLAINT, REFUND

USERS = ["wang.fang", "liu.yang", "chen.jing", "zhao.min", "zhou.jie", "wu.ting", "zheng.hai", "li.qiang",
         "lin.xiao", "gao.feng", "luo.jun", "liang.yong", "zhang.wei", "he.jianguo", "deng.chao", "tang.liang",
         "cao.ying", "xie.na", "huang.lei", "song.tao"]
DEPTS = {"engineering": "tang.liang", "tech_dept": "deng.chao", "customer_service": "zhou.jie"}

Step = tuple[str, str, str, dict[str, str]]        # (kind, event, user, sets)


def refund_script(work_started: bool) -> list[Step]:
    start = [("advance", "start_after_work", "wang.fang", {}),
             ("advance", "measure", "song.tao", {"completed_work_value": "5000"}),
             ("advance", "confirm_charge", "tang.liang", {"final_charge": "6000"})] if work_started \
        else [("advance", "start_before_work", "wang.fang", {})]
    return start + [
        ("advance", "sign_termination", "lin.xiao", {}),
        ("advance", "explain", "lin.xiao", {"reason": "资金困难", "responsibility": "客户原因"}),
        ("advance", "apply", "lin.xiao", {"refund_amount": "14000.00" if work_started else "20000.00"}),
        ("sign", "", "lin.xiao", {}), ("sign", "", "gao.feng", {}), ("sign", "", "liang.yong", {}),
        ("sign", "", "zhang.wei", {}),
        ("advance", "pay", "cao.ying", {"payment_ref": "P-1"})]


def complaint_script(dept: str) -> list[Step]:
    return [("advance", "assess", "wang.fang", {}),
            ("advance", "accept", "wang.fang", {"responsible_dept": dept}),
            ("advance", "find_cause", DEPTS[dept], {"root_cause": "防水层破损", "responsible_person": "xu.peng",
                                                    "solution": "重做防水"}),
            ("sign", "", "zheng.hai", {}),
            ("advance", "customer_rejects", "huang.lei", {}),
            ("advance", "final_offer", "gao.feng", {"final_solution": "免费重做并赔偿"})]


_numbers = itertools.count(1)
VISIT = [("advance", "attempt_failed", "@assignee", {"attempt_note": "无人接听"}),
         ("advance", "record_visit", "@assignee", {"visit_result": "已修好", "satisfaction": "satisfied"})]

case_plan = st.fixed_dictionaries({
    "workflow": st.sampled_from(["refund_a", "refund_b", "complaint", "visit"]),
    "dept": st.sampled_from(sorted(DEPTS)),
    "steps": st.integers(min_value=0, max_value=99),
    "assign": st.sampled_from([None, ("assign", "liu.yang"), ("assign", "wang.fang"), ("claim", "chen.jing"),
                               ("claim", "lin.xiao"), ("claim_release", "wang.fang")]),
    "assign_after": st.integers(min_value=0, max_value=4),
    "hours": st.integers(min_value=0, max_value=30),
})


def _open(engine, plan: dict[str, Any], n: int) -> tuple[str, list[Step]]:
    w = plan["workflow"]
    if w.startswith("refund"):
        b = w == "refund_b"
        sets = {**REFUND, "order_no": f"D-{n}", "work_started": "true" if b else "false"}
        return engine.open("refund", "wang.fang", sets)["id"], refund_script(b)
    if w == "complaint":
        return engine.open("complaint", "wang.fang", {**COMPLAINT, "form_no": f"TS-{n}"})["id"], \
            complaint_script(plan["dept"])
    return engine.open("followup_visit", "zhao.min", {"form_no": f"TS-{n}", "customer_name": "张三",
                                                      "phone": "13812345678"})["id"], VISIT


def _assign(engine, cid: str, op: tuple[str, str] | None) -> None:
    if op is None:
        return
    kind, user = op
    try:                              # a generated assignment may be refused (wrong role, closed case): fine
        if kind == "assign":
            assignment.assign(engine, cid, "zhou.jie", user)
        else:
            assignment.claim(engine, cid, user)
            if kind == "claim_release":
                assignment.release(engine, cid, user)
    except CaseflowError:
        return


def _walk(engine, cid: str, steps: list[Step], plan: dict[str, Any]) -> None:
    count = plan["steps"] % (len(steps) + 1)          # every point along the path equally likely
    for i, (kind, event, user, sets) in enumerate(steps[:count]):
        if i == plan["assign_after"]:
            _assign(engine, cid, plan["assign"])
        if user == "@assignee":
            user = engine.read_case(cid).assignee or "wang.fang"
        try:                          # a step may be refused, e.g. an assignee_only call on an unassigned visit
            engine.sign(cid, user) if kind == "sign" else engine.advance(cid, event, user, sets)
        except CaseflowError:
            return
    if count <= plan["assign_after"]:
        _assign(engine, cid, plan["assign"])


def expected(engine, user: str) -> list[dict[str, Any]]:
    """The inbox as `show` describes each case: the oracle."""
    person = engine.person(user)
    with engine.store.engine.connect() as conn:
        ids = [r.id for r in conn.execute(sa.select(cases.c.id))]
    out = []
    for cid in ids:
        try:
            v = show(engine, cid, user)
        except NotPermitted:          # a case you may not read (read_roles) is never in your inbox
            continue
        d = engine.read_case(cid).definition
        if d.states[v["state"]].final:
            continue
        evs = [e for e in v["events"] if e["inbox"]]
        ready = [e["event"] for e in evs if e["allowed"]]
        needs = [e["event"] for e in evs if not e["allowed"] and all(m.startswith("fields: ") for m in e["missing"])]
        claim = [e for e in evs if v["assignee"] is None and e["assignee_only"]
                 and all(m.startswith(("assignee: ", "fields: ")) for m in e["missing"])]
        p = v["pending_signoff"]
        t = d.signoff_transition(v["state"])
        signed = t is not None and t.signoffs.distinct_people and any(s["by"] == user for s in v["signoffs"])
        signoff = p["role"] if p and p["role"] in person.roles and not signed else None
        if v["assignee"] == user:
            group = "assigned"
        elif signoff:
            group = "signoff"
        elif v["assignee"] is not None:
            continue
        elif ready:
            group = "ready"
        elif needs:
            group = "needs_input"
        elif claim:
            group = "to_claim"
        elif person.roles & d.assign_roles and any(e["assignee_only"] for e in evs):
            group = "to_assign"
        else:
            continue
        live = [s for s in v["slas"] if s["kind"] == "sla" and s["status"] in ("running", "breached")]
        due = min((s["due_at"] for s in live if s["due_at"]), default=None)
        out.append({"id": cid, "group": group, "ready": ready, "needs_input": needs, "signoff": signoff,
                    "due_at": due, "overdue": any(s["status"] == "breached" for s in live),
                    "mine": v["assignee"] == user, "updated_at": v["updated_at"]})
    out.sort(key=lambda r: (not r["mine"], r["due_at"] is None, r["due_at"] or "", r["updated_at"], r["id"]))
    return out


def actual(engine, user: str) -> list[dict[str, Any]]:
    return [{"id": r["id"], "group": r["group"], "ready": [e["event"] for e in r["ready"]],
             "needs_input": [e["event"] for e in r["needs_input"]],
             "signoff": r["signoff"]["role"] if r["signoff"] else None, "due_at": r["due_at"],
             "overdue": r["overdue"], "mine": r["assignee"] == user, "updated_at": r["updated_at"]}
            for r in inbox(engine, user)]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(plans=st.lists(case_plan, min_size=3, max_size=8))
def test_inbox_agrees_with_show_for_every_case(engine, clock, plans):
    for plan in plans:
        cid, steps = _open(engine, plan, next(_numbers))
        _walk(engine, cid, steps, plan)
        clock.advance(hours=plan["hours"])
    for user in USERS:
        assert actual(engine, user) == expected(engine, user), user
