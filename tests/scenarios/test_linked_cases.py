"""Cases a complaint opens: the responsible person's self-review and the follow-up visit.

processes.md §1 "Responsibility follow-up" [001 §四.1] and "Follow-up visit"
[000 §三, 003 §三.5]. Both are their own small workflows (self_review.yaml,
followup_visit.yaml), opened by a `spawn` action; the new case records
`parent_case`. The 3-day submission and 7-day visit deadlines are tested in
test_deadlines.py.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from caseflow.errors import GuardFailed, MissingFields, RoleNotAllowed, SignoffRefused
from caseflow.runtime.assignment import claim
from caseflow.store.tables import cases

from ..conftest import audit_rows
from ..helpers import open_complaint
from .common import escalations, notices, refused

REVIEW = {"review_text": "本人未按规范检查防水层施工，今后每道工序亲自验收。"}


# -- helpers --------------------------------------------------------------------------------

def children(store, parent: str) -> list[tuple[str, str]]:
    """(case id, workflow) of every case opened from `parent`."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(cases.c.id, cases.c.workflow).where(cases.c.parent_case == parent)
                            .order_by(cases.c.created_at, cases.c.id))
        return [tuple(r) for r in rows]


def child(store, parent: str, workflow: str) -> str:
    found = [cid for cid, wf in children(store, parent) if wf == workflow]
    assert len(found) == 1, children(store, parent)
    return found[0]


def cause_found(engine, person: str = "huang.lei") -> str:
    """A complaint whose investigation named `person` as responsible (→ 提出处理方案)."""
    cid = open_complaint(engine)
    engine.advance(cid, "assess", "wang.fang")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    engine.advance(cid, "find_cause", "tang.liang", {"root_cause": "防水层施工不规范", "responsible_person": person,
                                                     "solution": "重做防水层"})
    return cid


def closed_valid(engine) -> str:
    cid = cause_found(engine)
    engine.sign(cid, "zheng.hai")
    engine.advance(cid, "customer_accepts", "huang.lei", {"customer_signature": "张三"})
    engine.advance(cid, "assign_responsibility", "zheng.hai", {"responsibility_code": "D"})
    engine.advance(cid, "decide_penalty", "zheng.hai", {"penalty_decision": "按施工合同处理"})
    engine.advance(cid, "summarize", "zhou.jie", {"summary": "已处理"})
    return cid


def closed_invalid(engine) -> str:
    cid = open_complaint(engine, category="service")
    engine.advance(cid, "assess", "wang.fang")
    engine.advance(cid, "reject", "wang.fang", {"assessment_note": "顾客误解合同条款"})
    engine.advance(cid, "close", "wang.fang", {"reply_note": "已向顾客解释合同条款"})
    return cid


def visit_for(engine, store) -> str:
    return child(store, closed_valid(engine), "followup_visit")


# -- self-review ----------------------------------------------------------------------------

def test_self_review_is_opened_for_the_responsible_person_when_the_cause_is_found(engine, store):
    complaint = open_complaint(engine)
    engine.advance(complaint, "assess", "wang.fang")
    engine.advance(complaint, "accept", "wang.fang", {"responsible_dept": "engineering"})
    assert children(store, complaint) == []
    engine.advance(complaint, "find_cause", "tang.liang", {"root_cause": "防水层施工不规范",
                                                           "responsible_person": "huang.lei"})
    review = child(store, complaint, "self_review")
    case = engine.read_case(review)
    assert (case.state, case.parent_case) == ("pending", complaint)
    assert case.data == {"form_no": "TS-2025-001", "responsible_person": "huang.lei", "root_cause": "防水层施工不规范"}
    spawned = [json.loads(r["changes"]) for r in audit_rows(store, complaint) if r["kind"] == "spawn"]
    assert spawned == [{"case": review}]
    opened = audit_rows(store, review)[0]
    assert (opened["kind"], opened["actor"], opened["note"]) == ("open", "system", f"linked to {complaint}")


def test_self_review_needs_two_distinct_reviewers_and_is_revised_until_accepted(engine, store):
    review = child(store, cause_found(engine, person="huang.lei"), "self_review")
    refused(store, review, lambda: engine.advance(review, "submit", "lin.xiao", REVIEW), GuardFailed,
            f"case {review}: cannot submit in state pending: 书面检查须由责任人本人提交")
    refused(store, review, lambda: engine.advance(review, "submit", "huang.lei"), MissingFields,
            f"case {review}: cannot submit in state pending: missing required: review_text "
            f"(set with --set review_text=…)")
    engine.advance(review, "submit", "huang.lei", REVIEW)
    assert engine.read_case(review).state == "under_review"

    # 李强 is 客服部经理 AND 副总经理: he counts once
    engine.sign(review, "li.qiang")
    refused(store, review, lambda: engine.sign(review, "li.qiang"), SignoffRefused,
            f"case {review}: cannot sign in state under_review: li.qiang already signed as "
            f"客服部经理(cs_manager); each sign-off needs a different person")
    refused(store, review, lambda: engine.sign(review, "he.jianguo", reject=True), SignoffRefused,
            f"case {review}: cannot reject in state under_review: a rejection needs --note saying why")
    engine.sign(review, "he.jianguo", reject=True, note="原因分析不深入，重新反省")
    case = engine.read_case(review)
    assert (case.state, case.signoffs) == ("revising", [])

    refused(store, review, lambda: engine.advance(review, "resubmit", "zheng.hai", REVIEW), GuardFailed,
            f"case {review}: cannot resubmit in state revising: 书面检查须由责任人本人提交")
    engine.advance(review, "resubmit", "huang.lei", {"review_text": "深刻反省：未履行验收职责，造成顾客损失。"})
    engine.sign(review, "he.jianguo")                 # either reviewer may sign first
    assert engine.read_case(review).state == "under_review"
    engine.sign(review, "zheng.hai")
    case = engine.read_case(review)
    assert (case.state, case.data["revision_count"]) == ("accepted", 1)
    engine.advance(review, "archive", "zhao.min", {"archive_note": "已整理备案"})
    assert engine.read_case(review).state == "archived"
    assert [(r["kind"], r["actor"]) for r in audit_rows(store, review) if r["kind"] in ("signoff", "reject")] == [
        ("signoff", "li.qiang"), ("reject", "he.jianguo"), ("signoff", "he.jianguo"), ("signoff", "zheng.hai")]


def test_responsible_person_never_reviews_their_own_self_review(engine, store):
    review = child(store, cause_found(engine, person="zheng.hai"), "self_review")   # the 客服部经理 himself
    engine.advance(review, "submit", "zheng.hai", REVIEW)
    refused(store, review, lambda: engine.sign(review, "zheng.hai"), GuardFailed,
            f"case {review}: cannot approve in state under_review: 责任人不能审核自己的检查")
    engine.sign(review, "li.qiang")
    engine.sign(review, "he.jianguo")
    assert engine.read_case(review).state == "accepted"


def test_only_cs_manager_and_deputy_gm_review_a_self_review(engine, store):
    review = child(store, cause_found(engine), "self_review")
    engine.advance(review, "submit", "huang.lei", REVIEW)
    refused(store, review, lambda: engine.sign(review, "zhou.jie"), RoleNotAllowed,
            f"case {review}: cannot sign in state under_review: the next sign-off is by 客服部经理(cs_manager) or "
            f"副总经理(deputy_gm); zhou.jie is not")
    engine.sign(review, "zheng.hai")
    engine.sign(review, "he.jianguo")
    refused(store, review, lambda: engine.advance(review, "archive", "huang.lei"), RoleNotAllowed,
            f"case {review}: cannot archive in state accepted: huang.lei has none of the roles allowed: "
            f"客服专员(cs_agent), 客服助理(cs_assistant)")


def test_self_review_may_be_waived_only_by_cs_manager_with_a_reason(engine, store):
    review = child(store, cause_found(engine), "self_review")
    refused(store, review, lambda: engine.advance(review, "waive", "he.jianguo", {"waive_reason": "x"}),
            RoleNotAllowed, f"case {review}: cannot waive in state pending: he.jianguo has none of the roles "
                            f"allowed: 客服部经理(cs_manager)")
    refused(store, review, lambda: engine.advance(review, "waive", "zheng.hai"), MissingFields,
            f"case {review}: cannot waive in state pending: missing required: waive_reason "
            f"(set with --set waive_reason=…)")
    engine.advance(review, "waive", "zheng.hai", {"waive_reason": "施工队责任，按施工合同处理"})
    assert engine.read_case(review).state == "waived"


# -- follow-up visit --------------------------------------------------------------------------

def test_follow_up_visit_is_opened_when_a_complaint_is_closed(engine, store):
    valid = cause_found(engine)
    engine.sign(valid, "zheng.hai")
    engine.advance(valid, "customer_accepts", "huang.lei", {"customer_signature": "张三"})
    engine.advance(valid, "assign_responsibility", "zheng.hai", {"responsibility_code": "D"})
    engine.advance(valid, "decide_penalty", "zheng.hai", {"penalty_decision": "按施工合同处理"})
    assert [wf for _, wf in children(store, valid)] == ["self_review"]              # not before closing
    engine.advance(valid, "summarize", "zhou.jie", {"summary": "已处理"})
    visit = child(store, valid, "followup_visit")
    case = engine.read_case(visit)
    assert (case.state, case.parent_case) == ("scheduled", valid)
    assert case.data == {"form_no": "TS-2025-001", "customer_name": "张三", "phone": "13812345678",
                         "category": "quality", "complaint_valid": True}
    # an unjustified complaint, answered tactfully, is visited too
    invalid = closed_invalid(engine)
    assert engine.read_case(child(store, invalid, "followup_visit")).data["complaint_valid"] is False


def test_follow_up_visit_records_the_result_and_satisfaction(engine, store):
    visit = visit_for(engine, store)
    claim(engine, visit, "zhao.min")            # only the assigned 客服专人 calls [000 §二.3]
    refused(store, visit, lambda: engine.advance(visit, "record_visit", "zhao.min", {"visit_result": "已回访"}),
            MissingFields, f"case {visit}: cannot record_visit in state scheduled: missing required: satisfaction "
                           f"(set with --set satisfaction=…)")
    refused(store, visit, lambda: engine.advance(visit, "record_visit", "huang.lei",
                                                 {"visit_result": "已回访", "satisfaction": "satisfied"}),
            RoleNotAllowed, f"case {visit}: cannot record_visit in state scheduled: huang.lei has none of the roles "
                            f"allowed: 客服专员(cs_agent), 客服助理(cs_assistant)")
    engine.advance(visit, "record_visit", "zhao.min", {"visit_result": "防水已重做，无渗漏", "satisfaction": "satisfied",
                                                       "suggestions": "希望施工前多沟通"})
    case = engine.read_case(visit)
    assert (case.state, case.data["satisfaction"]) == ("completed", "satisfied")
    assert escalations(store, visit) == [] and notices(store, visit) == []


def test_dissatisfied_customer_at_follow_up_is_escalated_to_cs_manager(engine, store):
    visit = visit_for(engine, store)
    claim(engine, visit, "wang.fang")
    engine.advance(visit, "record_visit", "wang.fang", {"visit_result": "仍有渗水", "satisfaction": "very_dissatisfied"})
    assert escalations(store, visit) == ["回访顾客对投诉处理不满意"]
    assert notices(store, visit) == [("cs_manager", "回访顾客对投诉处理不满意，请跟进")]


def test_follow_up_is_given_up_only_by_cs_supervisor_after_three_failed_attempts(engine, store):
    visit = visit_for(engine, store)
    claim(engine, visit, "zhao.min")
    for n in (1, 2):
        engine.advance(visit, "attempt_failed", "zhao.min", {"attempt_note": f"第{n}次致电无人接听"})
        refused(store, visit, lambda: engine.advance(visit, "give_up", "zhou.jie"), GuardFailed,
                f"case {visit}: cannot give_up in state scheduled: 联系次数不足，请继续尝试回访")
    engine.advance(visit, "attempt_failed", "zhao.min", {"attempt_note": "第3次致电无人接听"})
    refused(store, visit, lambda: engine.advance(visit, "give_up", "zhao.min"), RoleNotAllowed,
            f"case {visit}: cannot give_up in state scheduled: zhao.min has none of the roles allowed: "
            f"客服主管(cs_supervisor)")
    engine.advance(visit, "give_up", "zhou.jie", {"attempt_note": "三次联系未果"})
    case = engine.read_case(visit)
    assert (case.state, case.data["attempts"]) == ("unreachable", 3)
