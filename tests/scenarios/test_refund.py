"""退单 / 退费 — the rules of processes.md §2, one test per rule (source 001 §四.2).

Every refusal is checked for the exception class, the exact operator line and an
unchanged case row and audit log (style.md §8). The 24-hour signer SLA lives in
test_deadlines.py.
"""

from __future__ import annotations

import json

from caseflow.errors import GuardFailed, MissingFields, RoleNotAllowed, SignoffRefused, UsageError, WrongState

from ..conftest import audit_rows
from ..helpers import SIGNERS, open_complaint, open_refund, refund_to_signing, sign_all
from .common import decisions, notices, path_taken, refused

EXPLAIN = {"reason": "客户资金周转困难", "responsibility": "客户原因，无员工责任"}


# -- helpers --------------------------------------------------------------------------------

def after_work_to_applying(engine, paid: str = "20000.00", charge: str = "7500.00") -> str:
    """Path B (work started) up to 填写退费申请单."""
    cid = open_refund(engine, work_started=True, amount_paid=paid)
    engine.advance(cid, "start_after_work", "wang.fang")
    engine.advance(cid, "measure", "song.tao", {"completed_work_value": "6000.00"})
    engine.advance(cid, "confirm_charge", "tang.liang", {"final_charge": charge})
    engine.advance(cid, "sign_termination", "lin.xiao")
    engine.advance(cid, "explain", "lin.xiao", EXPLAIN)
    return cid


def before_work_to_explaining(engine) -> str:
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    return cid


# -- canonical ids -----------------------------------------------------------------------------

BEFORE_APPROVAL = ["requested", "measuring", "confirming_charge", "terminating", "explaining", "applying", "signing"]
SPEC_EDGES = {   # processes.md §2 "States and events": (state, event) → target
    ("requested", "start_before_work"): "terminating", ("requested", "start_after_work"): "measuring",
    ("measuring", "measure"): "confirming_charge", ("confirming_charge", "confirm_charge"): "terminating",
    ("terminating", "sign_termination"): "explaining", ("explaining", "explain"): "applying",
    ("applying", "apply"): "signing", ("signing", "approve"): "approved", ("approved", "pay"): "paid",
    **{(s, "withdraw"): "withdrawn" for s in BEFORE_APPROVAL},
}
MONEY = ["contract_amount", "amount_paid", "completed_work_value", "final_charge", "refund_amount"]


def test_refund_uses_the_canonical_ids_with_chinese_labels(engine):
    d = engine.catalog.get("refund")
    edges = {(s, t.event): t.to for t in d.transitions for s in t.sources}
    assert {k: edges.get(k) for k in SPEC_EDGES} == SPEC_EDGES
    assert ("approved", "withdraw") not in edges and ("paid", "withdraw") not in edges
    assert sorted(s for s, st in d.states.items() if st.final) == ["paid", "withdrawn"]
    assert all(st.label_zh for st in d.states.values()) and all(t.label_zh for t in d.transitions)
    assert {"order_no", "customer_name", "work_started", "reason", "responsibility", *MONEY} <= set(d.fields)
    assert [d.fields[f].get("format") for f in MONEY] == ["money"] * len(MONEY)
    approve = next(t for t in d.transitions if t.event == "approve")
    assert approve.signoffs is not None
    assert (approve.signoffs.roles, approve.signoffs.order, approve.signoffs.distinct_people,
            approve.signoffs.reject_to) == (("handler", "middle_manager", "district_lead", "company_leader"),
                                            "sequential", True, "applying")


# -- the two paths ----------------------------------------------------------------------------

def test_refund_before_work_follows_path_a_to_paid(engine, store):
    cid = refund_to_signing(engine, refund_amount="18000.00")
    sign_all(engine, cid)
    engine.advance(cid, "pay", "cao.ying", {"payment_ref": "FK-0310"})
    case = engine.read_case(cid)
    assert case.state == "paid"
    assert case.data["path"] == "before_work" and case.data["refund_amount"] == "18000.00"
    assert path_taken(store, cid) == ["requested", "terminating", "explaining", "applying", "signing",
                                      "approved", "paid"]


def test_refund_after_work_needs_site_measure_and_engineering_charge(engine, store):
    cid = open_refund(engine, work_started=True)
    engine.advance(cid, "start_after_work", "huang.lei")
    refused(store, cid, lambda: engine.advance(cid, "measure", "song.tao"), MissingFields,
            f"case {cid}: cannot measure in state measuring: missing required: completed_work_value "
            f"(set with --set completed_work_value=…)")
    refused(store, cid, lambda: engine.advance(cid, "measure", "tang.liang", {"completed_work_value": "6000"}),
            RoleNotAllowed, f"case {cid}: cannot measure in state measuring: tang.liang has none of the "
                            f"roles allowed: 监理(site_supervisor)")
    engine.advance(cid, "measure", "song.tao", {"completed_work_value": "6000.00"})
    refused(store, cid, lambda: engine.advance(cid, "confirm_charge", "tang.liang"), MissingFields,
            f"case {cid}: cannot confirm_charge in state confirming_charge: missing required: "
            f"input final_charge (set with --set final_charge=…)")
    refused(store, cid, lambda: engine.advance(cid, "confirm_charge", "song.tao", {"final_charge": "7500"}),
            RoleNotAllowed, f"case {cid}: cannot confirm_charge in state confirming_charge: song.tao has "
                            f"none of the roles allowed: 工程部(engineering)")
    engine.advance(cid, "confirm_charge", "tang.liang", {"final_charge": "7500.00"})
    engine.advance(cid, "sign_termination", "lin.xiao")
    engine.advance(cid, "explain", "lin.xiao", EXPLAIN)
    engine.advance(cid, "apply", "lin.xiao")
    sign_all(engine, cid)
    engine.advance(cid, "pay", "peng.xue", {"payment_ref": "FK-0311"})
    case = engine.read_case(cid)
    assert case.data["path"] == "after_work"
    assert (case.data["completed_work_value"], case.data["final_charge"]) == ("6000.00", "7500.00")
    assert path_taken(store, cid) == ["requested", "measuring", "confirming_charge", "terminating",
                                      "explaining", "applying", "signing", "approved", "paid"]


def test_path_is_chosen_at_the_start_by_work_started(engine, store):
    started = open_refund(engine, work_started=True)
    refused(store, started, lambda: engine.advance(started, "start_before_work", "wang.fang"), GuardFailed,
            f"case {started}: cannot start_before_work in state requested: 已开工的订单须走已开工退单流程")
    not_started = open_refund(engine)
    refused(store, not_started, lambda: engine.advance(not_started, "start_after_work", "wang.fang"),
            GuardFailed, f"case {not_started}: cannot start_after_work in state requested: "
                         f"未开工的订单须走未开工退单流程")


def test_case_remembers_its_path_and_refuses_the_other_paths_events(engine, store):
    a = open_refund(engine)
    engine.advance(a, "start_before_work", "wang.fang")
    assert engine.read_case(a).data["path"] == "before_work"
    for event, who in [("measure", "song.tao"), ("confirm_charge", "tang.liang"),
                       ("start_after_work", "wang.fang")]:
        label = engine.read_case(a).definition.event_label(event)
        refused(store, a, lambda: engine.advance(a, event, who), WrongState,  # noqa: B023  (called at once, in the loop)
                f"case {a}: cannot {event} in state terminating: {label} is not possible in "
                f"签订合同终止协议(terminating); possible now: sign_termination, withdraw")

    b = open_refund(engine, work_started=True)
    engine.advance(b, "start_after_work", "wang.fang")
    assert engine.read_case(b).data["path"] == "after_work"
    refused(store, b, lambda: engine.advance(b, "start_before_work", "wang.fang"), WrongState,
            f"case {b}: cannot start_before_work in state measuring: 未开工退单(start_before_work) is not "
            f"possible in 监理现场确定工程量(measuring); possible now: measure, withdraw")
    refused(store, b, lambda: engine.advance(b, "sign_termination", "lin.xiao"), WrongState,
            f"case {b}: cannot sign_termination in state measuring: 与业主签订合同终止协议(sign_termination) "
            f"is not possible in 监理现场确定工程量(measuring); possible now: measure, withdraw")
    # the path is not something an operator can rewrite later
    refused(store, b, lambda: engine.advance(b, "measure", "song.tao", {"completed_work_value": "1",
                                                                         "path": "before_work"}),
            UsageError, "--set path: not accepted by event 'measure' (it accepts: completed_work_value)")


def test_handler_signs_termination_explains_responsibility_and_applies(engine, store):
    cid = before_work_to_explaining(engine)
    refused(store, cid, lambda: engine.advance(cid, "explain", "lin.xiao", {"reason": "资金困难"}),
            MissingFields, f"case {cid}: cannot explain in state explaining: missing required: "
                           f"responsibility (set with --set responsibility=…)")
    refused(store, cid, lambda: engine.advance(cid, "explain", "wang.fang", EXPLAIN), RoleNotAllowed,
            f"case {cid}: cannot explain in state explaining: wang.fang has none of the roles allowed: "
            f"经手人(handler)")
    engine.advance(cid, "explain", "lin.xiao", EXPLAIN)
    refused(store, cid, lambda: engine.advance(cid, "apply", "lin.xiao"), MissingFields,
            f"case {cid}: cannot apply in state applying: missing required: refund_amount "
            f"(set with --set refund_amount=…)")
    engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "20000"})
    case = engine.read_case(cid)
    assert case.state == "signing"
    assert {k: case.data[k] for k in ("reason", "responsibility", "refund_amount")} == {
        **EXPLAIN, "refund_amount": "20000.00"}


# -- the sign-off chain -------------------------------------------------------------------------

def test_refund_before_work_needs_four_distinct_signers_in_order(engine, store):
    cid = refund_to_signing(engine)
    # out of order: the middle manager cannot sign before the handler
    refused(store, cid, lambda: engine.sign(cid, "gao.feng"), RoleNotAllowed,
            f"case {cid}: cannot sign in state signing: the next sign-off is by 经手人(handler); "
            f"gao.feng is not")
    # signing is a sign-off, not an ordinary advance
    refused(store, cid, lambda: engine.advance(cid, "approve", "lin.xiao"), RoleNotAllowed,
            f"case {cid}: cannot approve in state signing: needs sign-offs; next: 经手人(handler) "
            f"(use: caseflow sign {cid})")
    engine.sign(cid, "lin.xiao")
    engine.sign(cid, "luo.jun")                        # 装修中层, who is also a 区主力
    refused(store, cid, lambda: engine.sign(cid, "luo.jun"), SignoffRefused,
            f"case {cid}: cannot sign in state signing: luo.jun already signed as 装修中层(middle_manager); "
            f"each sign-off needs a different person")
    refused(store, cid, lambda: engine.sign(cid, "zhang.wei"), RoleNotAllowed,
            f"case {cid}: cannot sign in state signing: the next sign-off is by 区主力(district_lead); "
            f"zhang.wei is not")
    engine.sign(cid, "liang.yong")
    case = engine.read_case(cid)
    assert case.state == "signing"
    assert [(s["role"], s["by"]) for s in case.signoffs] == [
        ("handler", "lin.xiao"), ("middle_manager", "luo.jun"), ("district_lead", "liang.yong")]
    result = engine.sign(cid, "zhang.wei")
    assert result["fired"] is True and engine.read_case(cid).state == "approved"
    signed = [r["actor"] for r in audit_rows(store, cid) if r["kind"] == "signoff"]
    assert signed == ["lin.xiao", "luo.jun", "liang.yong", "zhang.wei"]
    assert ("finance", "退费申请已逐级签字完毕，请办理退款") in notices(store, cid)


def test_refund_after_work_uses_the_same_four_signer_chain(engine, store):
    cid = after_work_to_applying(engine)
    engine.advance(cid, "apply", "lin.xiao")
    refused(store, cid, lambda: engine.sign(cid, "liang.yong"), RoleNotAllowed,
            f"case {cid}: cannot sign in state signing: the next sign-off is by 经手人(handler); "
            f"liang.yong is not")
    sign_all(engine, cid)
    assert engine.read_case(cid).state == "approved"


def test_any_signer_may_reject_with_a_note_which_returns_to_applying_and_clears_signatures(engine, store):
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao")
    engine.sign(cid, "gao.feng")
    refused(store, cid, lambda: engine.sign(cid, "liang.yong", reject=True), SignoffRefused,
            f"case {cid}: cannot reject in state signing: a rejection needs --note saying why")
    engine.sign(cid, "liang.yong", reject=True, note="退款金额需与工程部再核对")
    case = engine.read_case(cid)
    assert case.state == "applying" and case.signoffs == []
    rejection = next(r for r in audit_rows(store, cid) if r["kind"] == "reject")
    assert (rejection["kind"], rejection["actor"], rejection["note"]) == (
        "reject", "liang.yong", "退款金额需与工程部再核对")
    # re-applying starts the chain again from the handler
    engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "19000.00"})
    refused(store, cid, lambda: engine.sign(cid, "liang.yong"), RoleNotAllowed,
            f"case {cid}: cannot sign in state signing: the next sign-off is by 经手人(handler); "
            f"liang.yong is not")
    sign_all(engine, cid)
    assert engine.read_case(cid).state == "approved"
    # the last signer may reject too
    other = refund_to_signing(engine)
    for who, _ in SIGNERS[:3]:
        engine.sign(other, who)
    engine.sign(other, "ma.zhiyuan", reject=True, note="责任说明不清")
    assert (engine.read_case(other).state, engine.read_case(other).signoffs) == ("applying", [])


def test_finance_pays_only_after_the_fourth_signature(engine, store):
    cid = refund_to_signing(engine)
    for who, _ in SIGNERS[:3]:
        engine.sign(cid, who)
        refused(store, cid, lambda: engine.advance(cid, "pay", "cao.ying", {"payment_ref": "FK-1"}), WrongState,
                f"case {cid}: cannot pay in state signing: 财务退款(pay) is not possible in 逐级签字(signing); "
                f"possible now: approve, withdraw")
    engine.sign(cid, "zhang.wei")
    refused(store, cid, lambda: engine.advance(cid, "pay", "zhang.wei", {"payment_ref": "FK-1"}), RoleNotAllowed,
            f"case {cid}: cannot pay in state approved: zhang.wei has none of the roles allowed: 财务部(finance)")
    refused(store, cid, lambda: engine.advance(cid, "pay", "cao.ying"), MissingFields,
            f"case {cid}: cannot pay in state approved: missing required: payment_ref "
            f"(set with --set payment_ref=…)")
    engine.advance(cid, "pay", "cao.ying", {"payment_ref": "FK-0312"})
    case = engine.read_case(cid)
    assert case.state == "paid" and case.data["payment_ref"] == "FK-0312"
    assert case.data["paid_at"] == "2025-03-03T02:00:00.000Z"


# -- amounts ----------------------------------------------------------------------------------

def test_refund_amount_cannot_exceed_amount_paid(engine, store):
    cid = before_work_to_explaining(engine)
    engine.advance(cid, "explain", "lin.xiao", EXPLAIN)
    refused(store, cid, lambda: engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "20000.01"}),
            GuardFailed, f"case {cid}: cannot apply in state applying: 退款金额不能超过已付金额")
    engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "20000.00"})
    assert engine.read_case(cid).data["refund_amount"] == "20000.00"


def test_after_work_refund_is_paid_minus_final_charge(engine, store):
    cid = after_work_to_applying(engine, paid="20000.00", charge="7654.32")
    case = engine.read_case(cid)
    assert (case.data["computed_refund"], case.data["refund_amount"]) == ("12345.68", "12345.68")
    # a different amount without a written reason is refused
    refused(store, cid, lambda: engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "13000.00"}),
            GuardFailed, f"case {cid}: cannot apply in state applying: "
                         f"退款金额与“已付−最终收费”不一致时须填写调整说明")
    engine.advance(cid, "apply", "lin.xiao")
    sign_all(engine, cid)
    engine.advance(cid, "pay", "cao.ying", {"payment_ref": "FK-0313"})
    assert engine.read_case(cid).data["refund_amount"] == "12345.68"


def test_a_signer_may_override_the_after_work_amount_with_a_note(engine, store):
    cid = after_work_to_applying(engine, paid="20000.00", charge="7500.00")
    engine.advance(cid, "apply", "lin.xiao")
    engine.sign(cid, "lin.xiao")
    engine.sign(cid, "gao.feng", reject=True, note="公司承担部分拆除费用，退款调整为13000元")
    engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "13000.00",
                                              "override_note": "中层批示：公司承担拆除费500元"})
    sign_all(engine, cid)
    engine.advance(cid, "pay", "cao.ying", {"payment_ref": "FK-0314"})
    case = engine.read_case(cid)
    assert (case.data["refund_amount"], case.data["computed_refund"]) == ("13000.00", "12500.00")
    assert case.data["override_note"] == "中层批示：公司承担拆除费500元"
    applied = [json.loads(r["changes"]) for r in audit_rows(store, cid) if r["event"] == "apply"]
    assert applied[-1]["refund_amount"] == ["12500.00", "13000.00"]


def test_after_work_refund_is_never_negative_when_the_charge_exceeds_payment(engine, store):
    cid = after_work_to_applying(engine, paid="5000.00", charge="7500.00")
    case = engine.read_case(cid)
    assert (case.data["refund_amount"], case.data["balance_due"]) == ("0.00", "2500.00")
    assert ("finance", "已开工退单：最终收费超过已付款，业主应补交差额") in notices(store, cid)
    refused(store, cid, lambda: engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "-1"}), UsageError,
            "--set refund_amount: '-1' is negative; amounts are ≥ 0")


def test_money_is_exact_decimal_yuan_never_float(engine, store):
    cid = open_refund(engine, contract_amount="80000.1", amount_paid="0.30")
    case = engine.read_case(cid)
    assert (case.data["contract_amount"], case.data["amount_paid"]) == ("80000.10", "0.30")
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    engine.advance(cid, "explain", "lin.xiao", EXPLAIN)
    refused(store, cid, lambda: engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "0.305"}),
            UsageError, "--set refund_amount: '0.305' has more than 2 decimal places")
    engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "0.3"})   # 0.1 + 0.2 is exactly 0.30 here
    assert engine.read_case(cid).data["refund_amount"] == "0.30"


# -- withdrawal -------------------------------------------------------------------------------

WALK_B = [("start_after_work", "wang.fang", {}), ("measure", "song.tao", {"completed_work_value": "6000"}),
          ("confirm_charge", "tang.liang", {"final_charge": "7500"}), ("sign_termination", "lin.xiao", {}),
          ("explain", "lin.xiao", EXPLAIN), ("apply", "lin.xiao", {})]


def test_customer_may_withdraw_from_any_state_before_approved(engine, store):
    for steps in range(len(WALK_B) + 1):
        cid = open_refund(engine, work_started=True)
        for event, who, sets in WALK_B[:steps]:
            engine.advance(cid, event, who, sets)
        if steps == len(WALK_B):
            engine.sign(cid, "lin.xiao")                 # even part-way through the sign-offs
        state = engine.read_case(cid).state
        refused(store, cid, lambda: engine.advance(cid, "withdraw", "wang.fang"), MissingFields,  # noqa: B023  (called at once)
                f"case {cid}: cannot withdraw in state {state}: missing required: withdraw_reason "
                f"(set with --set withdraw_reason=…)")
        engine.advance(cid, "withdraw", "wang.fang", {"withdraw_reason": "客户决定继续施工"})
        assert engine.read_case(cid).state == "withdrawn", state
    assert state == "signing"


def test_withdrawal_is_refused_once_approved_and_is_by_customer_service(engine, store):
    cid = refund_to_signing(engine)
    refused(store, cid, lambda: engine.advance(cid, "withdraw", "lin.xiao", {"withdraw_reason": "x"}),
            RoleNotAllowed, f"case {cid}: cannot withdraw in state signing: lin.xiao has none of the roles "
                            f"allowed: 客服专员(cs_agent)")
    sign_all(engine, cid)
    refused(store, cid, lambda: engine.advance(cid, "withdraw", "wang.fang", {"withdraw_reason": "太晚了"}),
            WrongState, f"case {cid}: cannot withdraw in state approved: 客户撤回退单(withdraw) is not possible "
                        f"in 待退款(approved); possible now: pay")


# -- roles ----------------------------------------------------------------------------------

def test_whoever_fires_a_refund_event_must_hold_an_allowed_role(engine, store):
    cid = open_refund(engine)
    refused(store, cid, lambda: engine.advance(cid, "start_before_work", "cao.ying"), RoleNotAllowed,
            f"case {cid}: cannot start_before_work in state requested: cao.ying has none of the roles allowed: "
            f"客服专员(cs_agent), 经手人(handler)")
    engine.advance(cid, "start_before_work", "shen.jia")         # 沈佳 is sales_dept AND handler
    refused(store, cid, lambda: engine.advance(cid, "sign_termination", "wang.fang"), RoleNotAllowed,
            f"case {cid}: cannot sign_termination in state terminating: wang.fang has none of the roles allowed: "
            f"经手人(handler)")
    assert json.loads(audit_rows(store, cid)[-1]["roles"]) == ["handler"]


# -- penalty table ----------------------------------------------------------------------------

def test_refund_traced_to_a_staff_fault_feeds_the_penalty_table(engine, store):
    cid = before_work_to_explaining(engine)
    refused(store, cid, lambda: engine.advance(cid, "explain", "lin.xiao",
                                               {**EXPLAIN, "responsibility_code": "A4"}),
            GuardFailed, f"case {cid}: cannot explain in state explaining: 注明员工责任类别时须填写责任人")
    engine.advance(cid, "explain", "lin.xiao", {"reason": "未按约定出图影响施工", "responsibility": "设计师失职",
                                                "responsibility_code": "A4", "responsible_person": "xu.peng"})
    case = engine.read_case(cid)
    assert case.data["penalty_tier"] == "fine_200"
    assert decisions(store, cid) == [{"count": 1, "outcome": {"penalty_tier": "fine_200",
                                                              "penalty_zh": "当月第一次：试用员工罚款200元"},
                                      "counted_by": "responsible_person", "period": "2025-03"}]
    refused(store, cid, lambda: engine.advance(cid, "decide_penalty", "lin.xiao", {"penalty_decision": "罚款200元"}),
            RoleNotAllowed, f"case {cid}: cannot decide_penalty in state applying: lin.xiao has none of the roles "
                            f"allowed: 客服部经理(cs_manager)")
    engine.advance(cid, "decide_penalty", "zheng.hai", {"penalty_decision": "罚款200元"})
    assert engine.read_case(cid).data["penalty_decision"] == "罚款200元"

    # a refund without a staff fault records that, and counts nobody
    clean = before_work_to_explaining(engine)
    engine.advance(clean, "explain", "lin.xiao", EXPLAIN)
    assert decisions(store, clean) == [{"count": None, "outcome": {"penalty_tier": "none",
                                                                   "penalty_zh": "无员工责任"}}]
    refused(store, clean, lambda: engine.advance(clean, "decide_penalty", "zheng.hai",
                                                 {"penalty_decision": "罚款"}),
            GuardFailed, f"case {clean}: cannot decide_penalty in state applying: 本次退单未注明员工责任")


def test_refund_and_complaint_offences_add_up_in_the_same_monthly_count(engine, store):
    """B5 "致使客户投诉或退单": one person, one count per month, whichever process found the fault."""
    refund = before_work_to_explaining(engine)
    engine.advance(refund, "explain", "lin.xiao", {"reason": "监理未及时上报", "responsibility": "监理失职",
                                                   "responsibility_code": "B5", "responsible_person": "han.bing"})
    complaint = open_complaint(engine)
    engine.advance(complaint, "assess", "wang.fang")
    engine.advance(complaint, "accept", "wang.fang", {"responsible_dept": "site_supervisor"})
    engine.advance(complaint, "find_cause", "song.tao", {"root_cause": "监理未到场", "responsible_person": "han.bing",
                                                         "solution": "返工"})
    engine.sign(complaint, "zheng.hai")
    engine.advance(complaint, "customer_accepts", "huang.lei", {"customer_signature": "张三"})
    engine.advance(complaint, "assign_responsibility", "zheng.hai",
                   {"responsibility_code": "B6"})
    assert [d["count"] for d in decisions(store, refund) + decisions(store, complaint)] == [1, 2]
    assert engine.read_case(complaint).data["penalty_tier"] == "probation_extended"

