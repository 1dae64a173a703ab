"""Every deadline in the source documents, run with the simulated clock and the sweeper.

The calendar facts these rely on (mainland China, 2025): Spring Festival is
Jan 28–Feb 4 off, with Sun Jan 26 and Sat Feb 8 working (调休); National Day is
Oct 1–8 off, with Sun Sep 28 and Sat Oct 11 working; working hours are
09:00–12:00 and 13:30–18:00 (calendars.yaml). Each test moves the clock to
just before and just after a deadline and runs the sweeper as cron would
(`caseflow.runtime.sweep.sweep` is what `caseflow sla run` calls). Times are Shanghai.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from caseflow.errors import GuardFailed
from caseflow.runtime.sweep import SweepReport, sweep
from caseflow.sla.clocks import ts
from caseflow.store.tables import cases, timers
from caseflow.views.cases import list_cases

from ..conftest import audit_rows, shanghai
from ..helpers import open_complaint, refund_to_signing
from .common import notices

CAUSE = {"root_cause": "防水层施工不规范", "solution": "重做卫生间防水层", "responsible_person": "huang.lei"}
DESK = "xie.na"
HOLDER = {"name": "李娜", "id_number": "110101199001011234", "birth_date": "1990-01-01",
          "phone": "13900000001"}
CASH = {"vip": "300.00", "gold": "6000.00", "platinum": "10000.00"}


# -- helpers --------------------------------------------------------------------------------

def sweep_at(engine, clock, when: str) -> SweepReport:
    """Run the sweeper as cron would at local time `when`."""
    clock.set(when)
    return sweep(engine, engine.now())


def timer(store, cid: str, name: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(timers).where(timers.c.case_id == cid, timers.c.name == name)).one()
    return dict(row._mapping)


def due(store, cid: str, name: str) -> str:
    return timer(store, cid, name)["due_at"]


def at(local: str) -> str:
    """Shanghai local time as the timers table stores it."""
    return ts(shanghai(local))


def log(store, cid: str, *kinds: str) -> list[tuple[str, str, str]]:
    return [(r["kind"], r["event"], r["note"]) for r in audit_rows(store, cid) if r["kind"] in kinds]


def escalations(store, cid: str) -> list[str]:
    return [note for _, _, note in log(store, cid, "escalation")]


def complaint_at(engine, clock, when: str) -> str:
    """A complaint received and registered at local time `when`."""
    clock.set(when)
    return open_complaint(engine, received_at=when.replace(" ", "T"))


def overdue(engine) -> set[str]:
    return {r["id"] for r in list_cases(engine, overdue=True)}


# -- complaint: forward within 2 working hours [002 §4.5.2] ---------------------------------

FORWARD = [
    ("2025-03-07 17:00", "2025-03-10 10:00"),   # an ordinary weekend
    ("2025-03-03 11:00", "2025-03-03 14:30"),   # the lunch break does not count
    ("2025-01-24 17:00", "2025-01-26 10:00"),   # Sunday Jan 26 is an adjusted working day
    ("2025-01-27 17:00", "2025-02-05 10:00"),   # Spring Festival, Jan 28–Feb 4
    ("2025-02-07 17:00", "2025-02-08 10:00"),   # Saturday Feb 8 is an adjusted working day
    ("2025-09-30 17:00", "2025-10-09 10:00"),   # National Day, Oct 1–8
    ("2025-10-10 17:00", "2025-10-11 10:00"),   # Saturday Oct 11 is an adjusted working day
]


@pytest.mark.parametrize("received, deadline", FORWARD, ids=[f[0] for f in FORWARD])
def test_complaint_not_forwarded_within_2_working_hours_is_escalated(engine, store, clock, received, deadline):
    cid = complaint_at(engine, clock, received)
    assert due(store, cid, "forward_2wh") == at(deadline)
    sweep_at(engine, clock, deadline)
    assert timer(store, cid, "forward_2wh")["status"] == "running"
    assert "投诉未在2个工作小时内转交责任部门" not in escalations(store, cid)
    sweep_at(engine, clock, f"{deadline}:01")
    assert timer(store, cid, "forward_2wh")["status"] == "breached"
    assert "投诉未在2个工作小时内转交责任部门" in escalations(store, cid)
    assert ("cs_supervisor", "投诉未在2个工作小时内转交责任部门") in notices(store, cid)
    assert cid in overdue(engine)


def test_complaint_forwarded_within_2_working_hours_meets_the_sla(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-01-24 17:00")
    clock.set("2025-01-26 09:59")                 # the adjusted working Sunday
    engine.advance(cid, "assess", "zhao.min")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    assert timer(store, cid, "forward_2wh")["status"] == "met"
    assert ("sla", "forward_2wh", "met: stopped with 1m of working time to spare") in log(store, cid, "sla")
    sweep_at(engine, clock, "2025-01-27 12:00")
    assert "投诉未在2个工作小时内转交责任部门" not in escalations(store, cid)


def test_unjustified_complaint_is_answered_not_forwarded_so_rejecting_it_also_meets_the_sla(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-03-03 10:00")
    engine.advance(cid, "assess", "zhao.min")
    clock.set("2025-03-03 11:00")
    engine.advance(cid, "reject", "wang.fang", {"assessment_note": "属正常材料色差"})
    assert timer(store, cid, "forward_2wh")["status"] == "met"


# -- complaint: respond within 24 hours [001 §一.3 助理 E] --------------------------------------

def test_customer_gets_a_response_within_24_hours_with_warnings_at_50_and_80_percent(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-01-24 17:00")
    assert due(store, cid, "respond_24h") == at("2025-01-25 17:00")     # clock time: Saturday counts
    sweep_at(engine, clock, "2025-01-25 05:00")
    assert log(store, cid, "sla_warning") == []
    sweep_at(engine, clock, "2025-01-25 05:01")
    assert log(store, cid, "sla_warning") == [
        ("sla_warning", "respond_24h", "50% of 24 hours used; due 2025-01-25 17:00")]
    sweep_at(engine, clock, "2025-01-25 12:13")
    assert log(store, cid, "sla_warning")[-1][2] == "80% of 24 hours used; due 2025-01-25 17:00"
    sweep_at(engine, clock, "2025-01-25 17:00")
    assert timer(store, cid, "respond_24h")["status"] == "running"
    sweep_at(engine, clock, "2025-01-25 17:01")
    assert timer(store, cid, "respond_24h")["status"] == "breached"
    assert "投诉受理超过24小时未回应顾客" in escalations(store, cid)
    assert ("cs_supervisor", "投诉受理已超过24小时未回应，请督办") in notices(store, cid)


def test_24_hours_to_respond_count_from_receipt_not_from_registration(engine, store, clock):
    clock.set("2025-03-03 15:00")
    cid = open_complaint(engine, received_at="2025-03-03T09:00")
    assert timer(store, cid, "respond_24h")["started_at"] == at("2025-03-03 09:00")
    assert due(store, cid, "respond_24h") == at("2025-03-04 09:00")
    clock.set("2025-03-04 08:59")
    engine.advance(cid, "assess", "zhao.min")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    assert timer(store, cid, "respond_24h")["status"] == "met"


def test_response_after_24_hours_is_recorded_as_missed_even_if_the_sweeper_never_ran(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-03-03 10:00")
    engine.advance(cid, "assess", "zhao.min")
    clock.set("2025-03-04 11:00")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    assert timer(store, cid, "respond_24h")["status"] == "late"
    assert ("sla", "respond_24h", "missed: stopped 1h 00m after the deadline") in log(store, cid, "sla")
    assert cid not in overdue(engine)             # answered now: late, but no longer overdue


# -- complaint: department result within 2 working days [002 §4.5.2] ---------------------------

def test_department_result_overdue_after_2_working_days_chases_handler_and_apologises(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-01-27 09:30")
    engine.advance(cid, "assess", "zhao.min")
    clock.set("2025-01-27 10:00")                 # the Monday before Spring Festival
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    # 6.5 h on Jan 27, nothing Jan 28–Feb 4, 7.5 h on Feb 5, the last hour on Feb 6.
    assert due(store, cid, "dept_result_2wd") == at("2025-02-06 10:00")
    sweep_at(engine, clock, "2025-02-06 10:00")
    assert timer(store, cid, "dept_result_2wd")["status"] == "running"
    before = len(escalations(store, cid))
    sweep_at(engine, clock, "2025-02-06 10:01")
    assert timer(store, cid, "dept_result_2wd")["status"] == "breached"
    assert escalations(store, cid)[before:] == ["催促处理人：责任部门未在2个工作日内返回处理结果",
                                                "已向顾客说明问题正在处理之中，并致歉"]
    assert ("cs_agent", "责任部门超时未返回结果：请联系处理人询问进展，并告知顾客正在处理、表示歉意") \
        in notices(store, cid)


def test_department_result_within_2_working_days_counts_the_adjusted_working_saturday(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-10-10 09:00")
    engine.advance(cid, "assess", "zhao.min")
    clock.set("2025-10-10 10:00")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    assert due(store, cid, "dept_result_2wd") == at("2025-10-13 10:00")   # Fri 6.5 h + Sat Oct 11 7.5 h + 1 h
    clock.set("2025-10-13 09:30")
    engine.advance(cid, "find_cause", "tang.liang", CAUSE)
    assert timer(store, cid, "dept_result_2wd")["status"] == "met"
    sweep_at(engine, clock, "2025-10-14 09:00")
    assert not any("2个工作日" in e for e in escalations(store, cid))


# -- complaint: a solution within 24 hours, executed within 24 hours [001 §四.1] ------------------

def test_solution_must_be_found_within_24_hours_of_the_investigation_starting(engine, store, clock):
    late = complaint_at(engine, clock, "2025-03-03 09:00")
    engine.advance(late, "assess", "zhao.min")
    clock.set("2025-03-03 10:00")
    engine.advance(late, "accept", "wang.fang", {"responsible_dept": "engineering"})
    on_time = complaint_at(engine, clock, "2025-03-03 10:00")
    engine.advance(on_time, "assess", "zhao.min")
    engine.advance(on_time, "accept", "wang.fang", {"responsible_dept": "engineering"})
    clock.set("2025-03-04 09:00")
    engine.advance(on_time, "find_cause", "tang.liang", CAUSE)
    engine.sign(on_time, "zheng.hai")             # 经理批示: leaves 提出处理方案
    assert timer(store, on_time, "solution_24h")["status"] == "met"
    sweep_at(engine, clock, "2025-03-04 10:01")
    assert timer(store, late, "solution_24h")["status"] == "breached"
    assert "未在24小时内确定解决方案" in escalations(store, late)
    assert ("cs_manager", "投诉未在24小时内确定解决方案") in notices(store, late)
    assert "未在24小时内确定解决方案" not in escalations(store, on_time)


def test_approved_solution_must_be_executed_within_24_hours(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-03-03 09:00")
    engine.advance(cid, "assess", "zhao.min")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    engine.advance(cid, "find_cause", "tang.liang", CAUSE)
    clock.set("2025-03-03 16:00")
    engine.sign(cid, "zheng.hai")
    assert due(store, cid, "execute_24h") == at("2025-03-04 16:00")
    sweep_at(engine, clock, "2025-03-04 16:01")
    assert "批准的处理方案未在24小时内执行" in escalations(store, cid)
    assert ("cs_manager", "处理方案未在24小时内执行完毕") in notices(store, cid)
    clock.set("2025-03-04 17:00")
    engine.advance(cid, "customer_accepts", "huang.lei", {"customer_signature": "张三"})
    assert timer(store, cid, "execute_24h")["status"] == "late"


# -- self-review within 3 days [001 §四.1] ---------------------------------------------------

def self_review_of(store, complaint: str) -> str:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(cases.c.id).where(cases.c.parent_case == complaint,
                                                        cases.c.workflow == "self_review")).scalar_one()


def test_self_review_is_due_3_calendar_days_after_the_cause_is_found_even_over_national_day(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-09-30 09:00")
    engine.advance(cid, "assess", "zhao.min")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    clock.set("2025-09-30 10:00")
    engine.advance(cid, "find_cause", "tang.liang", CAUSE)
    review = self_review_of(store, cid)
    assert due(store, review, "submit_3d") == at("2025-10-03 10:00")    # days, not working days
    sweep_at(engine, clock, "2025-10-03 10:01")
    assert timer(store, review, "submit_3d")["status"] == "breached"
    assert escalations(store, review) == ["责任人未在3日内提交书面检查"]
    assert ("cs_manager", "责任人未在3日内提交书面检查") in notices(store, review)


def test_self_review_handed_in_within_3_days_meets_the_sla(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-03-03 09:00")
    engine.advance(cid, "assess", "zhao.min")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    engine.advance(cid, "find_cause", "tang.liang", CAUSE)
    review = self_review_of(store, cid)
    clock.set("2025-03-06 08:00")
    engine.advance(review, "submit", "huang.lei", {"review_text": "未按工艺做闭水试验，今后严格执行"})
    assert timer(store, review, "submit_3d")["status"] == "met"


# -- member card ----------------------------------------------------------------------------

def card(engine, clock, when: str, tier: str = "vip") -> str:
    clock.set(when)
    cid = engine.open("member_card", DESK, {"name": HOLDER["name"], "phone": HOLDER["phone"]})["id"]
    engine.advance(cid, "issue", DESK, {"tier": tier, "birth_date": HOLDER["birth_date"],
                                        "id_number": HOLDER["id_number"], "member_id": f"M-{cid}",
                                        "card_no": f"C-{cid}", "same_day_cash": CASH[tier], "in_person": "true"})
    return cid


def buy(engine, clock, cid: str, when: str, amount: str = "100.00") -> None:
    clock.set(when)
    engine.advance(cid, "purchase", DESK, {"amount": amount, "special_goods": "false", "promotion": "false",
                                           "items": "1"})                       # all in cash


def state(engine, cid: str) -> str:
    return engine.read_case(cid).state


def test_lost_card_not_replaced_within_7_days_stays_reported_and_the_vip_desk_follows_up(engine, store, clock):
    cid = card(engine, clock, "2025-09-01 10:00")
    clock.set("2025-09-28 10:00")
    engine.advance(cid, "report_lost", DESK)
    assert due(store, cid, "lost_card_7d") == at("2025-10-05 10:00")    # calendar days, holiday or not
    sweep_at(engine, clock, "2025-10-05 10:00")
    assert timer(store, cid, "lost_card_7d")["status"] == "running"
    sweep_at(engine, clock, "2025-10-05 10:01")
    assert timer(store, cid, "lost_card_7d")["status"] == "fired"
    assert state(engine, cid) == "lost"
    assert "挂失已满7日未办理补卡手续，挂失继续有效" in escalations(store, cid)
    assert ("vip_desk", "挂失已满7日未办理补卡，请联系持卡人") in notices(store, cid)


def test_lost_card_replaced_within_7_days_stops_the_clock(engine, store, clock):
    cid = card(engine, clock, "2025-09-01 10:00")
    clock.set("2025-09-28 10:00")
    engine.advance(cid, "report_lost", DESK)
    clock.set("2025-10-04 15:00")
    engine.advance(cid, "replace", DESK, {"in_person": "true", "id_number_shown": HOLDER["id_number"]})
    assert timer(store, cid, "lost_card_7d")["status"] == "stopped"
    sweep_at(engine, clock, "2025-10-06 10:00")
    assert "挂失已满7日未办理补卡手续，挂失继续有效" not in escalations(store, cid)


def test_card_expires_one_year_after_issue(engine, store, clock):
    cid = card(engine, clock, "2025-02-08 10:00", tier="gold")        # issued on an adjusted working Saturday
    assert due(store, cid, "card_expiry") == at("2026-02-08 10:00")
    sweep_at(engine, clock, "2026-02-08 10:00")
    assert state(engine, cid) == "active"
    sweep_at(engine, clock, "2026-02-08 10:01")
    assert state(engine, cid) == "expired"
    assert timer(store, cid, "card_expiry")["status"] == "fired"
    assert [r["event"] for r in audit_rows(store, cid) if r["kind"] == "transition"][-1] == "expire"


def test_vip_card_unused_for_a_year_becomes_inactive_instead(engine, store, clock):
    cid = card(engine, clock, "2025-03-03 10:00")
    sweep_at(engine, clock, "2026-03-03 10:01")
    assert state(engine, cid) == "inactive"


def expired_vip_with_upgrade_points(engine, clock) -> str:
    """A vip card with 1000 upgrade points (earned within the last 90 working days) that has expired."""
    cid = card(engine, clock, "2025-03-03 10:00")
    buy(engine, clock, cid, "2026-02-20 10:00", amount="10000.00")      # 1 point per full 10 yuan
    sweep_at(engine, clock, "2026-03-03 10:00:30")
    assert state(engine, cid) == "expired"
    return cid


def test_upgrade_is_possible_within_30_days_after_expiry(engine, store, clock):
    cid = expired_vip_with_upgrade_points(engine, clock)
    assert due(store, cid, "upgrade_window") == at("2026-04-02 10:00:30")
    clock.set("2026-04-01 10:00")
    engine.advance(cid, "upgrade", DESK)
    assert (state(engine, cid), engine.read_case(cid).data["tier"]) == ("active", "gold")
    assert timer(store, cid, "upgrade_window")["status"] == "stopped"


def test_upgrade_not_taken_within_30_days_after_expiry_is_forfeited(engine, store, clock):
    cid = expired_vip_with_upgrade_points(engine, clock)
    sweep_at(engine, clock, "2026-04-02 10:01")
    assert engine.read_case(cid).data["upgrade_forfeited"] is True
    assert "有效期截止日后30天内未办理升级，视为自动放弃" in escalations(store, cid)
    with pytest.raises(GuardFailed) as refused:
        engine.advance(cid, "upgrade", DESK)
    assert refused.value.reason == "已超过有效期截止日后30天，视为自动放弃升级"


def inactive_card(engine, clock) -> str:
    cid = card(engine, clock, "2024-01-31 10:00")
    sweep_at(engine, clock, "2025-01-31 10:00:30")
    assert state(engine, cid) == "inactive"
    return cid


def test_inactive_card_can_be_reactivated_within_a_month(engine, store, clock):
    cid = inactive_card(engine, clock)
    assert due(store, cid, "inactive_1m") == at("2025-02-28 10:00:30")  # Jan 31 + 1 month: end of February
    clock.set("2025-02-28 10:00")
    engine.advance(cid, "reactivate", DESK, {"same_day_cash": "200.00", "in_person": "true"})
    assert state(engine, cid) == "active"
    assert timer(store, cid, "inactive_1m")["status"] == "stopped"


def test_inactive_card_not_reactivated_within_a_month_is_cancelled(engine, store, clock):
    cid = inactive_card(engine, clock)
    sweep_at(engine, clock, "2025-02-28 10:00")
    assert state(engine, cid) == "inactive"
    sweep_at(engine, clock, "2025-02-28 10:01")
    assert state(engine, cid) == "cancelled"
    with store.engine.connect() as conn:
        left = conn.execute(sa.select(timers.c.name).where(timers.c.case_id == cid,
                                                           timers.c.next_at.is_not(None))).all()
    assert left == []                             # a closed card has no clock left to fire


def test_points_are_cleared_after_90_working_days_without_a_purchase_each_purchase_restarting_the_count(
        engine, store, clock):
    cid = card(engine, clock, "2025-09-01 10:00")
    # End of the 90th working day: National Day off, Sep 28 and Oct 11 worked.
    assert due(store, cid, "points_clearing") == at("2026-01-12 18:00")
    buy(engine, clock, cid, "2025-10-11 10:00", amount="500.00")        # on the adjusted working Saturday
    assert engine.read_case(cid).data["points"] == 50
    assert due(store, cid, "points_clearing") == at("2026-02-14 18:00")  # itself an adjusted Saturday
    sweep_at(engine, clock, "2026-01-12 18:01")
    assert engine.read_case(cid).data["points"] == 50
    sweep_at(engine, clock, "2026-02-14 18:00")
    assert engine.read_case(cid).data["points"] == 50
    sweep_at(engine, clock, "2026-02-14 18:01")
    assert engine.read_case(cid).data["points"] == 0
    assert "连续90个工作日无消费，积分清零" in escalations(store, cid)
    buy(engine, clock, cid, "2026-02-24 10:00")
    assert timer(store, cid, "points_clearing")["status"] == "running"   # a purchase re-arms a fired clock


# -- refund sign-offs and the follow-up visit (the shipped designers' defaults) --------------

def test_refund_signatures_not_complete_within_24_hours_are_chased(engine, store, clock):
    clock.set("2025-03-07 15:00")
    cid = refund_to_signing(engine)
    sweep_at(engine, clock, "2025-03-08 03:01")
    assert log(store, cid, "sla_warning") == [
        ("sla_warning", "signoff_24h", "50% of 24 hours used; due 2025-03-08 15:00")]
    sweep_at(engine, clock, "2025-03-08 15:01")
    assert "退费申请签字超过24小时未完成" in escalations(store, cid)
    assert ("cs_supervisor", "退费申请签字超时，请催办") in notices(store, cid)


def test_each_refund_signer_has_24_hours_from_the_previous_signature(engine, store, clock):
    clock.set("2025-03-07 15:00")
    cid = refund_to_signing(engine)
    clock.set("2025-03-08 14:00")
    engine.sign(cid, "lin.xiao")                  # 经手人, on the 23rd hour
    assert due(store, cid, "signoff_24h") == at("2025-03-09 14:00")
    sweep_at(engine, clock, "2025-03-08 15:01")   # the first deadline has passed, the clock restarted
    assert "退费申请签字超过24小时未完成" not in escalations(store, cid)
    sweep_at(engine, clock, "2025-03-09 14:01")
    assert "退费申请签字超过24小时未完成" in escalations(store, cid)


def test_refund_rejected_by_a_signer_starts_a_fresh_24_hours_when_it_comes_back(engine, store, clock):
    clock.set("2025-03-03 10:00")
    cid = refund_to_signing(engine)
    clock.set("2025-03-03 12:00")
    engine.sign(cid, "lin.xiao", reject=True, note="金额有误")
    assert timer(store, cid, "signoff_24h")["status"] == "met"
    clock.set("2025-03-04 09:00")
    engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "19000.00"})
    assert (timer(store, cid, "signoff_24h")["status"], due(store, cid, "signoff_24h")) == \
        ("running", at("2025-03-05 09:00"))


def test_followup_visit_not_made_within_7_days_of_closing_is_escalated(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-03-03 09:00")
    engine.advance(cid, "assess", "zhao.min")
    engine.advance(cid, "reject", "wang.fang", {"assessment_note": "属正常材料色差"})
    clock.set("2025-03-03 11:00")
    engine.advance(cid, "close", "wang.fang", {"reply_note": "已电话说明"})
    with store.engine.connect() as conn:
        visit = conn.execute(sa.select(cases.c.id).where(cases.c.parent_case == cid)).scalar_one()
    assert due(store, visit, "visit_7d") == at("2025-03-10 11:00")
    sweep_at(engine, clock, "2025-03-10 11:01")
    assert escalations(store, visit) == ["投诉结案后7日内未完成回访"]


def test_every_timer_fires_once_however_often_the_sweeper_runs(engine, store, clock):
    cid = complaint_at(engine, clock, "2025-03-03 10:00")
    first = sweep_at(engine, clock, "2025-03-05 10:00")
    assert first.breached == 2                     # respond_24h and forward_2wh
    for minutes in (0, 1, 60):
        clock.now += timedelta(minutes=minutes)
        assert sweep(engine, engine.now()).handled == 0
    breaches = [e for _, e, n in log(store, cid, "sla") if n.startswith("breached")]
    assert breaches == ["forward_2wh", "respond_24h"]     # oldest deadline first
