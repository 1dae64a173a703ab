"""投诉 — the rules of processes.md §1, one test per rule.

Sources: 000 §三, 001 §四.1 and §四.3–4, 002 §3 and §4.5, 003 (五清楚一报告).
Every refusal is checked for the exception class, the exact operator line and an
unchanged case row and audit log (style.md §8). The SLA rules (24-hour response,
2 working hours to forward, 2 working days for a result, 24 hours for a solution
and its execution) live in test_deadlines.py; the self-review and follow-up
visit sub-cases in test_linked_cases.py.
"""

from __future__ import annotations

import json
from collections import deque

import pytest

from caseflow.errors import (
    GuardFailed,
    InvalidData,
    MissingFields,
    RoleNotAllowed,
    SignoffRefused,
    TransitionRefused,
    UsageError,
    WrongState,
)
from caseflow.views.reports import complaints as complaint_statistics

from ..conftest import audit_rows, snapshot
from ..helpers import COMPLAINT, open_complaint
from .common import case_count, decisions, escalations, notices, path_taken, refused

CAUSE = {"root_cause": "防水层施工不规范", "solution": "重做卫生间防水层并赔偿楼下修复费用"}
SIGNATURE = {"customer_signature": "张三"}


# -- helpers --------------------------------------------------------------------------------

def assessing(engine, **extra: str) -> str:
    cid = open_complaint(engine, **extra)
    engine.advance(cid, "assess", "zhao.min")
    return cid


def proposing(engine, person: str = "huang.lei", dept: str = "engineering", by: str = "tang.liang",
              **extra: str) -> str:
    cid = assessing(engine, **extra)
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": dept})
    engine.advance(cid, "find_cause", by, {**CAUSE, "responsible_person": person})
    return cid


def implementing(engine, **kw: str) -> str:
    cid = proposing(engine, **kw)
    engine.sign(cid, "zheng.hai")
    return cid


def reviewing(engine, **kw: str) -> str:
    cid = implementing(engine, **kw)
    engine.advance(cid, "customer_accepts", "huang.lei", SIGNATURE)
    return cid


def close_review(engine, cid: str, code: str = "D") -> None:
    engine.advance(cid, "assign_responsibility", "zheng.hai", {"responsibility_code": code})
    engine.advance(cid, "decide_penalty", "zheng.hai", {"penalty_decision": "按施工合同处理"})
    engine.advance(cid, "summarize", "zhou.jie", {"summary": "防水施工工艺培训，已纳入月度统计"})


def offence(engine, clock, person: str, code: str, employment: str | None = None,
            at: str | None = None) -> tuple[str, str]:
    """One complaint up to the review, with responsibility assigned (the penalty decision)."""
    cid = reviewing(engine, person=person)
    if at:
        clock.set(at)
    engine.advance(cid, "assign_responsibility", "zheng.hai", {"responsibility_code": code})
    if employment:      # the employment comes from org.yaml; the test names it to read like the rule
        assert engine.read_case(cid).data["responsible_employment"] == employment
    return cid, engine.read_case(cid).data["penalty_tier"]


# -- canonical ids -----------------------------------------------------------------------------

SPEC_EDGES = {   # processes.md §1 "States and events": (state, event) → target
    ("received", "assess"): "assessing",
    ("assessing", "reject"): "replied_invalid", ("assessing", "accept"): "investigating",
    ("investigating", "find_cause"): "proposing",
    ("proposing", "approve_solution"): "implementing", ("proposing", "revise"): "proposing",
    ("implementing", "customer_accepts"): "reviewing", ("implementing", "customer_rejects"): "escalated",
    ("escalated", "final_offer"): "final_answer",
    ("final_answer", "customer_accepts"): "reviewing", ("final_answer", "litigation"): "in_litigation",
    ("in_litigation", "judgment"): "reviewing",
    ("reviewing", "summarize"): "closed",
    ("replied_invalid", "close"): "closed",
}
SPEC_FIELDS = {"form_no", "customer_name", "phone", "address", "channel", "category", "description", "severity",
               "received_at", "valid", "responsible_dept", "root_cause", "responsible_person", "solution",
               "customer_accepted", "customer_signature", "responsibility_code", "summary"}


def test_complaint_uses_the_canonical_ids_with_chinese_labels(engine):
    d = engine.catalog.get("complaint")
    edges = {(s, t.event): t.to for t in d.transitions for s in t.sources}
    assert {k: edges.get(k) for k in SPEC_EDGES} == SPEC_EDGES
    assert [s for s, st in d.states.items() if st.final] == ["closed"] and d.initial == "received"
    assert all(st.label_zh for st in d.states.values()) and all(t.label_zh for t in d.transitions)
    assert SPEC_FIELDS <= set(d.fields)
    assert d.fields["channel"]["enum"] == ["store", "phone", "visit", "on_site"]
    assert set(d.fields["category"]["enum"]) == {"service_attitude", "quality", "technical", "service", "sales",
                                                 "other"}
    assert d.fields["severity"]["enum"] == ["normal", "major"]
    assert d.fields["responsibility_code"]["enum"] == [*(f"A{i}" for i in range(1, 6)),
                                                       *(f"B{i}" for i in range(1, 7)), "C", "D"]
    approve = next(t for t in d.transitions if t.event == "approve_solution")
    assert approve.signoffs is not None and approve.signoffs.roles == ("cs_manager",)


# -- data captured --------------------------------------------------------------------------

def test_complaint_form_records_the_registration_fields(engine, store):
    cid = open_complaint(engine, channel="on_site", category="service_attitude")
    case = engine.read_case(cid)
    assert case.state == "received"
    assert {k: case.data[k] for k in ("form_no", "channel", "category", "severity")} == {
        "form_no": "TS-2025-001", "channel": "on_site", "category": "service_attitude", "severity": "normal"}
    assert case.data["received_at"] == "2025-03-03T02:00:00.000Z"          # 10:00 Shanghai, stored in UTC

    before = case_count(store)
    with pytest.raises(UsageError) as bad_channel:
        open_complaint(engine, channel="email")
    assert str(bad_channel.value) == "--set channel: 'email' is not one of store, phone, visit, on_site"
    without = {k: v for k, v in COMPLAINT.items() if k != "description"}
    with pytest.raises(InvalidData) as missing:
        engine.open("complaint", "wang.fang", without)
    assert str(missing.value) == "cannot open complaint: data would be invalid: 'description' is a required property"
    assert case_count(store) == before


# -- states and events ------------------------------------------------------------------------

def test_valid_complaint_is_investigated_solved_accepted_reviewed_and_closed(engine, store):
    cid = reviewing(engine)
    close_review(engine, cid)
    case = engine.read_case(cid)
    assert case.state == "closed"
    assert (case.data["valid"], case.data["customer_accepted"], case.data["customer_signature"]) == (True, True, "张三")
    assert path_taken(store, cid) == ["received", "assessing", "investigating", "proposing", "implementing",
                                      "reviewing", "reviewing", "reviewing", "closed"]


def test_unjustified_complaint_is_answered_tactfully_then_closed(engine, store):
    cid = assessing(engine)
    refused(store, cid, lambda: engine.advance(cid, "reject", "wang.fang"), MissingFields,
            f"case {cid}: cannot reject in state assessing: missing required: assessment_note "
            f"(set with --set assessment_note=…)")
    engine.advance(cid, "reject", "wu.ting", {"assessment_note": "属正常材料色差，非质量问题"})
    case = engine.read_case(cid)
    assert (case.state, case.data["valid"]) == ("replied_invalid", False)
    refused(store, cid, lambda: engine.advance(cid, "close", "wang.fang"), MissingFields,
            f"case {cid}: cannot close in state replied_invalid: missing required: reply_note "
            f"(set with --set reply_note=…)")
    refused(store, cid, lambda: engine.advance(cid, "close", "zhou.jie", {"reply_note": "已电话说明"}),
            RoleNotAllowed, f"case {cid}: cannot close in state replied_invalid: zhou.jie has none of the roles "
                            f"allowed: 客服专员(cs_agent)")
    engine.advance(cid, "close", "wang.fang", {"reply_note": "已电话向顾客说明色差原因，顾客表示理解"})
    assert engine.read_case(cid).state == "closed"
    assert path_taken(store, cid) == ["received", "assessing", "replied_invalid", "closed"]


@pytest.mark.parametrize("dept, role", [
    ("engineering", "engineering"), ("site_supervisor", "site_supervisor"), ("tech_dept", "tech_dept"),
    ("sales_dept", "sales_dept"), ("design", "middle_manager"), ("materials", "middle_manager"),
    ("customer_service", "cs_supervisor")])
def test_accepted_complaint_is_forwarded_to_the_responsible_department(engine, store, dept, role):
    cid = assessing(engine)
    refused(store, cid, lambda: engine.advance(cid, "accept", "wang.fang"), MissingFields,
            f"case {cid}: cannot accept in state assessing: missing required: responsible_dept "
            f"(set with --set responsible_dept=…)")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": dept})
    case = engine.read_case(cid)
    assert (case.state, case.data["valid"], case.data["responsible_dept"]) == ("investigating", True, dept)
    assert [r for r, _ in notices(store, cid)] == [role]


def test_investigation_finds_the_root_cause_and_the_responsible_person(engine, store):
    cid = assessing(engine)
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    refused(store, cid, lambda: engine.advance(cid, "find_cause", "tang.liang", {"root_cause": "防水层破损"}),
            MissingFields, f"case {cid}: cannot find_cause in state investigating: missing required: "
                           f"responsible_person (set with --set responsible_person=…)")
    refused(store, cid, lambda: engine.advance(cid, "find_cause", "wang.fang",
                                               {**CAUSE, "responsible_person": "huang.lei"}),
            RoleNotAllowed, f"case {cid}: cannot find_cause in state investigating: wang.fang has none of the "
                            f"roles allowed: 客服主管(cs_supervisor), 工程部(engineering), 装修中层(middle_manager), "
                            f"市场销售部(sales_dept), 监理(site_supervisor), 技术部(tech_dept)")
    engine.advance(cid, "find_cause", "tang.liang", {**CAUSE, "responsible_person": "huang.lei"})
    case = engine.read_case(cid)
    assert (case.state, case.data["root_cause"], case.data["responsible_person"]) == (
        "proposing", "防水层施工不规范", "huang.lei")
    # a service complaint is investigated by the 客服主管 himself
    service = assessing(engine, category="service_attitude")
    engine.advance(service, "accept", "wang.fang", {"responsible_dept": "customer_service"})
    engine.advance(service, "find_cause", "zhou.jie", {"root_cause": "接待人员态度生硬",
                                                       "responsible_person": "liu.yang"})
    assert engine.read_case(service).state == "proposing"


def test_only_the_responsible_departments_role_or_cs_supervisor_finds_the_cause(engine, store):
    cid = assessing(engine)
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    before = snapshot(store, cid)
    with pytest.raises((RoleNotAllowed, GuardFailed)):
        engine.advance(cid, "find_cause", "deng.chao", {**CAUSE, "responsible_person": "huang.lei"})  # 技术部
    assert snapshot(store, cid) == before


def test_solution_needs_cs_manager_signoff(engine, store):
    cid = assessing(engine)
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    engine.advance(cid, "find_cause", "tang.liang", {"root_cause": "防水层破损", "responsible_person": "huang.lei"})
    refused(store, cid, lambda: engine.sign(cid, "zheng.hai"), MissingFields,
            f"case {cid}: cannot approve_solution in state proposing: missing required: solution "
            f"(set with --set solution=…)")
    refused(store, cid, lambda: engine.advance(cid, "revise", "tang.liang", {"solution": "补刷防水"}),
            RoleNotAllowed, f"case {cid}: cannot revise in state proposing: tang.liang has none of the roles "
                            f"allowed: 客服部经理(cs_manager)")
    engine.advance(cid, "revise", "li.qiang", {"solution": "重做卫生间防水层"})      # 经理一一过目，可修改
    assert engine.read_case(cid).state == "proposing"
    refused(store, cid, lambda: engine.advance(cid, "approve_solution", "zheng.hai"), RoleNotAllowed,
            f"case {cid}: cannot approve_solution in state proposing: needs sign-offs; next: "
            f"客服部经理(cs_manager) (use: caseflow sign {cid})")
    refused(store, cid, lambda: engine.sign(cid, "zhou.jie"), RoleNotAllowed,
            f"case {cid}: cannot sign in state proposing: the next sign-off is by 客服部经理(cs_manager); "
            f"zhou.jie is not")
    refused(store, cid, lambda: engine.sign(cid, "zheng.hai", reject=True), SignoffRefused,
            f"case {cid}: cannot reject in state proposing: a rejection needs --note saying why")
    engine.sign(cid, "zheng.hai", reject=True, note="方案未包含赔偿楼下损失")
    assert engine.read_case(cid).state == "proposing"
    engine.advance(cid, "revise", "zheng.hai", {"solution": "重做防水层并赔偿楼下修复费用"})
    result = engine.sign(cid, "zheng.hai", note="同意，24小时内实施")
    case = engine.read_case(cid)
    assert result["fired"] is True
    assert (case.state, case.data["solution"]) == ("implementing", "重做防水层并赔偿楼下修复费用")
    signed = [(r["kind"], r["actor"]) for r in audit_rows(store, cid) if r["kind"] in ("signoff", "reject")]
    assert signed == [("reject", "zheng.hai"), ("signoff", "zheng.hai")]


def test_customer_accepting_the_solution_signs_for_it(engine, store):
    cid = implementing(engine)
    refused(store, cid, lambda: engine.advance(cid, "customer_accepts", "huang.lei"), MissingFields,
            f"case {cid}: cannot customer_accepts in state implementing: missing required: customer_signature "
            f"(set with --set customer_signature=…)")
    refused(store, cid, lambda: engine.advance(cid, "customer_accepts", "gao.feng", SIGNATURE), RoleNotAllowed,
            f"case {cid}: cannot customer_accepts in state implementing: gao.feng has none of the roles allowed: "
            f"客服专员(cs_agent), 经手人(handler)")
    engine.advance(cid, "customer_accepts", "wang.fang", {**SIGNATURE, "customer_feedback": "满意"})
    case = engine.read_case(cid)
    assert (case.state, case.data["customer_accepted"], case.data["customer_signature"]) == ("reviewing", True, "张三")


def test_customer_rejecting_the_solution_escalates_to_middle_management(engine, store):
    cid = implementing(engine)
    engine.advance(cid, "customer_rejects", "huang.lei", {"customer_feedback": "要求全部重新装修"})
    case = engine.read_case(cid)
    assert (case.state, case.data["customer_accepted"]) == ("escalated", False)
    assert ("middle_manager", "顾客不接受处理方案，请中层确定最终解决方案") in notices(store, cid)
    refused(store, cid, lambda: engine.advance(cid, "final_offer", "huang.lei", {"final_solution": "x"}),
            RoleNotAllowed, f"case {cid}: cannot final_offer in state escalated: huang.lei has none of the roles "
                            f"allowed: 装修中层(middle_manager)")
    refused(store, cid, lambda: engine.advance(cid, "final_offer", "gao.feng"), MissingFields,
            f"case {cid}: cannot final_offer in state escalated: missing required: final_solution "
            f"(set with --set final_solution=…)")
    engine.advance(cid, "final_offer", "gao.feng", {"final_solution": "重做防水并减免10%工程款（工程部、监理确认）"})
    assert engine.read_case(cid).state == "final_answer"
    refused(store, cid, lambda: engine.advance(cid, "customer_accepts", "wang.fang", SIGNATURE), RoleNotAllowed,
            f"case {cid}: cannot customer_accepts in state final_answer: wang.fang has none of the roles "
            f"allowed: 经手人(handler), 装修中层(middle_manager)")
    engine.advance(cid, "customer_accepts", "gao.feng", SIGNATURE)
    assert engine.read_case(cid).state == "reviewing"
    assert path_taken(store, cid)[-4:] == ["implementing", "escalated", "final_answer", "reviewing"]


def test_litigation_is_reported_and_the_judgment_is_recorded_by_company_leader(engine, store):
    cid = implementing(engine)
    engine.advance(cid, "customer_rejects", "huang.lei")
    engine.advance(cid, "final_offer", "gao.feng", {"final_solution": "减免10%工程款"})
    engine.advance(cid, "litigation", "huang.lei", {"customer_feedback": "顾客已起诉"})
    assert engine.read_case(cid).state == "in_litigation"
    assert escalations(store, cid) == ["投诉引发诉讼，相关部门应诉并上报总经理"]
    assert ("company_leader", "投诉引发诉讼，请公司领导督办应诉") in notices(store, cid)
    refused(store, cid, lambda: engine.advance(cid, "judgment", "gao.feng", {"litigation_result": "x"}),
            RoleNotAllowed, f"case {cid}: cannot judgment in state in_litigation: gao.feng has none of the roles "
                            f"allowed: 公司领导(company_leader)")
    refused(store, cid, lambda: engine.advance(cid, "judgment", "zhang.wei"), MissingFields,
            f"case {cid}: cannot judgment in state in_litigation: missing required: litigation_result "
            f"(set with --set litigation_result=…)")
    engine.advance(cid, "judgment", "zhang.wei", {"litigation_result": "一审判决公司赔偿8000元"})
    case = engine.read_case(cid)
    assert (case.state, case.data["litigation_result"]) == ("reviewing", "一审判决公司赔偿8000元")


def test_review_summary_by_cs_supervisor_closes_the_complaint_and_feeds_the_statistics(engine, store):
    cid = reviewing(engine)
    engine.advance(cid, "assign_responsibility", "zheng.hai", {"responsibility_code": "D"})
    engine.advance(cid, "decide_penalty", "zheng.hai", {"penalty_decision": "按施工合同扣施工队款"})
    refused(store, cid, lambda: engine.advance(cid, "summarize", "zhou.jie"), MissingFields,
            f"case {cid}: cannot summarize in state reviewing: missing required: summary (set with --set summary=…)")
    refused(store, cid, lambda: engine.advance(cid, "summarize", "wang.fang", {"summary": "x"}), RoleNotAllowed,
            f"case {cid}: cannot summarize in state reviewing: wang.fang has none of the roles allowed: "
            f"客服主管(cs_supervisor)")
    engine.advance(cid, "summarize", "wu.ting", {"summary": "施工队防水工艺不合格，已培训"})
    assert engine.read_case(cid).state == "closed"
    stats = complaint_statistics(engine, "2025-03")
    assert cid in stats["cases"] and stats["closed"] == 1 and stats["valid"] == 1


def test_summary_needs_the_responsibility_and_penalty_decided_first(engine, store):
    cid = reviewing(engine)
    refused(store, cid, lambda: engine.advance(cid, "summarize", "zhou.jie", {"summary": "已处理"}), MissingFields,
            f"case {cid}: cannot summarize in state reviewing: missing required: responsibility_code, "
            f"penalty_decision (set with --set responsibility_code=…)")


# -- every complaint gets an answer ------------------------------------------------------------

ANSWERS = {"customer_accepts", "judgment"}      # and the state replied_invalid (婉转答复)


def test_every_complaint_gets_an_answer_no_path_to_closed_skips_a_reply(engine, store):
    d = engine.catalog.get("complaint")

    def reachable(skip_answers: bool) -> set[str]:
        seen, todo = {d.initial}, deque([d.initial])
        while todo:
            here = todo.popleft()
            for t in d.transitions_from(here):
                if skip_answers and (t.event in ANSWERS or t.to == "replied_invalid"):
                    continue
                if t.to not in seen:
                    seen.add(t.to)
                    todo.append(t.to)
        return seen

    assert "closed" in reachable(skip_answers=False)
    assert "closed" not in reachable(skip_answers=True), "a path to 结案 skips the answer to the customer"
    # each answer leaves a trace: the customer's signature, the court's result, or the reply text
    required = {(t.event, t.sources): set(t.requires) for t in d.transitions
                if t.event in ANSWERS or "replied_invalid" in t.sources}
    assert all(fields & {"customer_signature", "litigation_result", "reply_note"} for fields in required.values())

    # and at run time: no shortcut to 结案 from anywhere before the answer
    cid = implementing(engine)
    refused(store, cid, lambda: engine.advance(cid, "summarize", "zhou.jie", {"summary": "x"}), WrongState,
            f"case {cid}: cannot summarize in state implementing: 总结评价并结案(summarize) is not possible in "
            f"实施处理方案(implementing); possible now: customer_accepts, customer_rejects")
    other = assessing(engine)
    refused(store, other, lambda: engine.advance(other, "close", "wang.fang", {"reply_note": "x"}), WrongState,
            f"case {other}: cannot close in state assessing: 已答复顾客，结案(close) is not possible in "
            f"投诉判断(assessing); possible now: accept, reject")


# -- major complaints ------------------------------------------------------------------------

def test_major_complaint_is_reported_to_company_leader_on_receipt(engine, store):
    cid = open_complaint(engine, severity="major")
    rows = audit_rows(store, cid)
    assert engine.read_case(cid).state == "received"
    assert [(r["kind"], r["note"]) for r in rows[:3]] == [
        ("open", None), ("escalation", "重大投诉，已报告公司领导"), ("notify", "收到重大投诉，请公司领导知悉并督办")]
    assert rows[1]["effective_at"] == rows[0]["effective_at"]             # immediately, in the same write
    assert notices(store, cid) == [("company_leader", "收到重大投诉，请公司领导知悉并督办")]

    normal = open_complaint(engine)
    assert escalations(store, normal) == [] and notices(store, normal) == []


# -- penalty table -----------------------------------------------------------------------------

def test_penalty_table_first_second_third_offence_in_a_month(engine, store, clock):
    """A and B codes, counted per person per calendar month [001 §四.3]."""
    probation = [offence(engine, clock, "xu.peng", code, "probation")[1] for code in ("A1", "B3", "A5", "A2")]
    assert probation == ["fine_200", "probation_extended", "dismissal", "dismissal"]
    regular = [offence(engine, clock, "huang.lei", code, "regular") for code in ("B1", "A3", "B6")]
    assert [tier for _, tier in regular] == ["fine_500", "performance_withheld", "dismissal"]
    second = engine.read_case(regular[1][0]).data
    assert (second["penalty_tier"], second["penalty_zh"]) == ("performance_withheld", "当月第二次：已转正员工扣发当月全部绩效")
    assert decisions(store, regular[1][0]) == [{"count": 2, "outcome": {
        "penalty_tier": "performance_withheld", "penalty_zh": "当月第二次：已转正员工扣发当月全部绩效"},
        "counted_by": "responsible_person", "period": "2025-03"}]


def test_penalty_count_starts_again_in_a_new_calendar_month(engine, store, clock):
    """The month is the Shanghai calendar month: 00:30 on 1 April is still 31 March in UTC."""
    first, _ = offence(engine, clock, "han.bing", "B2", "probation", at="2025-03-31 23:30")
    second, _ = offence(engine, clock, "han.bing", "B2", "probation", at="2025-04-01 00:30")
    third, _ = offence(engine, clock, "han.bing", "B4", "probation", at="2025-04-30 23:59")
    assert [decisions(store, c)[0]["count"] for c in (first, second, third)] == [1, 1, 2]
    assert [engine.read_case(c).data["penalty_tier"] for c in (first, second, third)] == [
        "fine_200", "fine_200", "probation_extended"]


def test_penalty_c_and_d_are_not_counted(engine, store, clock):
    service, tier_c = offence(engine, clock, "liu.yang", "C")
    construction, tier_d = offence(engine, clock, "liu.yang", "D")
    assert (tier_c, tier_d) == ("fine_200_to_1000_or_dismissal", "construction_contract")
    assert [decisions(store, c)[0]["count"] for c in (service, construction)] == [None, None]
    # so the person's first A offence this month is still the first
    _, tier_a = offence(engine, clock, "liu.yang", "A2", "probation")
    assert tier_a == "fine_200"


def test_the_engine_computes_the_tier_and_a_manager_decides_the_penalty(engine, store, clock):
    cid = reviewing(engine, person="liu.yang")
    refused(store, cid, lambda: engine.advance(cid, "decide_penalty", "zheng.hai", {"penalty_decision": "罚款"}),
            GuardFailed, f"case {cid}: cannot decide_penalty in state reviewing: 请先确定责任类别")
    refused(store, cid, lambda: engine.advance(cid, "assign_responsibility", "zhou.jie",
                                               {"responsibility_code": "C"}),
            RoleNotAllowed, f"case {cid}: cannot assign_responsibility in state reviewing: zhou.jie has none of "
                            f"the roles allowed: 客服部经理(cs_manager)")
    engine.advance(cid, "assign_responsibility", "zheng.hai", {"responsibility_code": "C"})
    refused(store, cid, lambda: engine.advance(cid, "assign_responsibility", "zheng.hai",
                                               {"responsibility_code": "D"}),
            GuardFailed, f"case {cid}: cannot assign_responsibility in state reviewing: "
                         f"责任类别已确定并已计入当月处罚次数，不可重复确定")
    for fine in ("199.99", "1000.01"):
        refused(store, cid, lambda: engine.advance(cid, "decide_penalty", "zheng.hai",
                                                   {"penalty_decision": "罚款", "penalty_fine": fine}),  # noqa: B023  (called at once)
                GuardFailed, f"case {cid}: cannot decide_penalty in state reviewing: "
                             f"C类（服务意识差）罚款应在200–1000元之间，或决定辞退")
    engine.advance(cid, "decide_penalty", "zheng.hai", {"penalty_decision": "罚款800元", "penalty_fine": "800"})
    case = engine.read_case(cid)
    assert (case.data["penalty_tier"], case.data["penalty_decision"], case.data["penalty_fine"]) == (
        "fine_200_to_1000_or_dismissal", "罚款800元", "800.00")
    # "up to dismissal": a C decision without a fine is allowed
    other = reviewing(engine, person="wang.fang")
    engine.advance(other, "assign_responsibility", "zheng.hai", {"responsibility_code": "C"})
    engine.advance(other, "decide_penalty", "li.qiang", {"penalty_decision": "辞退"})
    assert engine.read_case(other).data["penalty_decision"] == "辞退"


def test_penalty_tier_follows_the_employment_recorded_in_org_yaml(engine, store):
    probation = reviewing(engine, person="xu.peng")                 # 徐鹏: employment probation
    engine.advance(probation, "assign_responsibility", "zheng.hai", {"responsibility_code": "A2"})
    regular = reviewing(engine, person="lin.xiao")                  # 林晓: employment regular
    engine.advance(regular, "assign_responsibility", "zheng.hai", {"responsibility_code": "A2"})
    assert [engine.read_case(c).data["penalty_tier"] for c in (probation, regular)] == ["fine_200", "fine_500"]


# -- roles -----------------------------------------------------------------------------------

def test_whoever_fires_a_complaint_event_must_hold_an_allowed_role(engine, store):
    cid = open_complaint(engine)
    err = refused(store, cid, lambda: engine.advance(cid, "assess", "huang.lei"), RoleNotAllowed,
                  f"case {cid}: cannot assess in state received: huang.lei has none of the roles allowed: "
                  f"客服专员(cs_agent), 客服助理(cs_assistant)")
    assert isinstance(err, TransitionRefused) and (err.event, err.state) == ("assess", "received")
    engine.advance(cid, "assess", "chen.jing")              # 陈静 holds cs_agent and cs_assistant
    refused(store, cid, lambda: engine.advance(cid, "accept", "zhao.min", {"responsible_dept": "engineering"}),
            RoleNotAllowed, f"case {cid}: cannot accept in state assessing: zhao.min has none of the roles "
                            f"allowed: 客服专员(cs_agent), 客服主管(cs_supervisor)")
    engine.advance(cid, "accept", "zhou.jie", {"responsible_dept": "engineering"})
    rows = audit_rows(store, cid)
    assert [(r["event"], r["actor"], json.loads(r["roles"])) for r in rows if r["kind"] == "transition"] == [
        ("assess", "chen.jing", ["cs_agent", "cs_assistant"]), ("accept", "zhou.jie", ["cs_supervisor"])]
