"""For a generated mix of cases, `inbox` agrees exactly with asking `show` about every case.

Hypothesis walks cases of the shipped workflows some way along their paths, assigns,
claims and releases some of them and lets time pass (so some SLAs are overdue; a sweep now
and then breaches them, as `caseflow sla run` does). Then,
for people holding every role, the inbox must list exactly the cases whose `show` says
they hold work for them (`show`'s `inbox` field: group, events, fields, sign-off), with
the nearest SLA deadline `show` lists, in the documented order — all of it, and its first
page for a few page sizes (the query that reads the first rows of each queue in that order).
The oracle asks `show` about every case and reads nothing else; the inbox reads one query
over the stored queues and the deadlines stored with them.
"""

from __future__ import annotations

import itertools
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseflow.errors import CaseflowError, NotPermitted
from caseflow.runtime import assignment
from caseflow.runtime.engine import Engine
from caseflow.runtime.sweep import sweep
from caseflow.sla.clocks import ts
from caseflow.store.tables import cases
from caseflow.views.cases import show
from caseflow.views.inbox import inbox

from .conftest import fresh_store
from .helpers import COMPLAINT, REFUND

USERS = ["wang.fang", "liu.yang", "chen.jing", "zhao.min", "zhou.jie", "wu.ting", "zheng.hai", "li.qiang",
         "lin.xiao", "gao.feng", "luo.jun", "liang.yong", "zhang.wei", "he.jianguo", "deng.chao", "tang.liang",
         "cao.ying", "xie.na", "huang.lei", "song.tao", "xu.peng", "fu.qiang"]
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


def review_script() -> list[Step]:
    """The self-review a complaint's find_cause opened: submitted, then signed in any order."""
    return [("advance", "submit", "xu.peng", {"review_text": "未按工艺做闭水试验"}),
            ("sign", "", "he.jianguo", {}), ("sign", "", "zheng.hai", {})]


def card_script(n: int) -> list[Step]:
    return [("advance", "issue", "xie.na", {"tier": "vip", "birth_date": "1990-01-01",
                                            "id_number": f"11010119900101{n:04d}", "member_id": f"M-{n}",
                                            "card_no": f"C-{n}", "same_day_cash": "300", "in_person": "true"}),
            ("advance", "report_lost", "xie.na", {}),
            ("advance", "replace", "xie.na", {"in_person": "true", "id_number_shown": f"11010119900101{n:04d}"}),
            ("advance", "collect", "xie.na", {"new_card_no": f"N-{n}"})]


_numbers = itertools.count(1)
VISIT = [("advance", "attempt_failed", "@assignee", {"attempt_note": "无人接听"}),
         ("advance", "record_visit", "@assignee", {"visit_result": "已修好", "satisfaction": "satisfied"})]

case_plan = st.fixed_dictionaries({
    "workflow": st.sampled_from(["refund_a", "refund_b", "complaint", "visit", "card"]),
    "dept": st.sampled_from(sorted(DEPTS)),
    "steps": st.integers(min_value=0, max_value=99),
    "assign": st.sampled_from([None, ("assign", "liu.yang"), ("assign", "wang.fang"), ("claim", "chen.jing"),
                               ("claim", "lin.xiao"), ("claim_release", "wang.fang")]),
    "assign_after": st.integers(min_value=0, max_value=4),
    "hours": st.integers(min_value=0, max_value=30),
    "review_steps": st.integers(min_value=0, max_value=3),
    "sweep": st.booleans(),
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
    if w == "card":
        return engine.open("member_card", "xie.na", {"name": "李娜", "phone": "13900000001"})["id"], card_script(n)
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
    with engine.store.engine.connect() as conn:      # the self-review a complaint's find_cause opened
        review = conn.execute(sa.select(cases.c.id).where(cases.c.parent_case == cid,
                                                          cases.c.workflow == "self_review")).scalar()
    for kind, event, user, sets in review_script()[:plan["review_steps"]] if review else []:
        try:
            engine.sign(review, user) if kind == "sign" else engine.advance(review, event, user, sets)
        except CaseflowError:
            return


# (database, case, person) that `show` refused: who may read a case depends only on the org and its
# definition, which no example changes, so a refusal is not asked for again (each costs a write: the
# attempts log records it)
REFUSED: set[tuple[str, str, str]] = set()


def expected(engine, user: str) -> list[dict[str, Any]]:
    """The inbox as `show` describes each case: the oracle (its `inbox` field and its SLAs)."""
    with engine.store.engine.connect() as conn:
        ids = [r.id for r in conn.execute(sa.select(cases.c.id))]
    out = []
    now = ts(engine.now())
    for cid in ids:
        if (engine.store.url, cid, user) in REFUSED:
            continue
        try:
            v = show(engine, cid, user)
        except NotPermitted:          # a case you may not read (read_roles) is never in your inbox
            REFUSED.add((engine.store.url, cid, user))
            continue
        if v["inbox"] is None:
            continue
        live = [s for s in v["slas"] if s["kind"] == "sla" and s["status"] in ("running", "breached")]
        out.append({"id": cid, **v["inbox"], "assignee": v["assignee"],
                    "due_at": min((s["due_at"] for s in live if s["due_at"]), default=None),
                    "overdue": any(s["status"] == "breached" or s["due_at"] < now for s in live if s["due_at"]),
                    "updated_at": v["updated_at"], "created_at": v["created_at"]})
    # the documented order: assigned to me first, then the nearest deadline (none last), oldest case, id
    out.sort(key=lambda r: (r["assignee"] != user, r["due_at"] is None, r["due_at"] or "", r["created_at"], r["id"]))
    return out


def actual(engine, user: str, limit: int | None = None) -> list[dict[str, Any]]:
    keys = ("id", "group", "group_label_zh", "ready", "needs_input", "signoff", "assignee", "due_at", "overdue",
            "updated_at", "created_at")
    return [{k: r[k] for k in keys} for r in inbox(engine, user, limit)]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(plans=st.lists(case_plan, min_size=3, max_size=8))
def test_inbox_agrees_with_show_for_every_case(db_url, migrated, shipped_catalog, clock, plans):
    # each example on a database of its own: the oracle shows every case of this example's mix only
    # (on the function's one database it showed every earlier example's cases too: quadratic work)
    with fresh_store(db_url, migrated) as store:
        _check(Engine(store, shipped_catalog, clock), clock, plans)


def _check(engine, clock, plans) -> None:
    for plan in plans:
        cid, steps = _open(engine, plan, next(_numbers))
        _walk(engine, cid, steps, plan)
        clock.advance(hours=plan["hours"])
        if plan["sweep"]:
            sweep(engine, engine.now())             # breaches (and their on_breach actions) move the order
    for user in USERS:
        want = expected(engine, user)
        assert actual(engine, user) == want, user
        for limit in (1, 3):
            assert actual(engine, user, limit) == want[:limit], (user, limit)
