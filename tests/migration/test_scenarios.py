"""Moving open cases of the shipped refund and complaint workflows to v2 variants, on SQLite and PostgreSQL.

Each scenario opens cases in telling states under v1, checks the dry-run verdict of each,
runs the plan, and checks that exactly the migratable cases moved, that the others stay on v1
and keep working, that moved cases follow v2, that `audit verify` is clean, and that `revert`
brings back v1 behaviour.
"""

from __future__ import annotations

import json

import pytest

from caseflow.audit.verify import verify
from caseflow.errors import GuardFailed, InvalidData, MigrationRefused, NotPermitted, WrongState
from caseflow.migration.revert import revert
from caseflow.migration.run import dry_run, migrate

from ..helpers import SIGNERS, open_complaint, open_refund, refund_to_signing, sign_all
from .support import on_version, plan, timer_due

BOSS = "zhang.wei"            # 公司领导: can_migrate in the shipped org chart


def verdicts(report) -> dict[str, str]:
    return {v.case_id: v.verdict for v in report.verdicts}


def assert_clean(engine) -> None:
    report = verify(engine.store, catalog=engine.catalog)
    assert report.ok, [str(p) for p in report.problems]


def refund_to_applying(engine) -> str:
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    engine.advance(cid, "explain", "lin.xiao", {"reason": "客户资金周转困难", "responsibility": "客户原因"})
    return cid


# -- refund v2: an added 财务审核 step between applying and signing ------------------------------

def test_added_review_step(engine, tmp_path, clock):
    fresh = open_refund(engine)
    applying = refund_to_applying(engine)
    waiting = refund_to_signing(engine)                      # in signing, nobody signed yet
    signed = refund_to_signing(engine)
    engine.sign(signed, "lin.xiao")
    approved = refund_to_signing(engine)
    sign_all(engine, approved)
    paid = refund_to_signing(engine)
    sign_all(engine, paid)
    engine.advance(paid, "pay", "cao.ying", {"payment_ref": "PAY-1"})
    v1 = engine.catalog.get("refund").sha256
    p = plan(engine, tmp_path, "review", "refund")
    clock.advance(hours=1)

    report = dry_run(engine, p, BOSS)
    assert verdicts(report) == {fresh: "migratable", applying: "migratable", waiting: "elsewhere",
                                signed: "forbidden", approved: "forbidden"}      # the paid one is closed
    by_id = {v.case_id: v for v in report.verdicts}
    assert by_id[waiting].landed == "reviewing" and by_id[waiting].target == "signing"
    assert by_id[signed].refused.event == "sign"
    assert "nothing to sign in 财务审核(reviewing)" in by_id[signed].refused.reason
    assert on_version(engine, fresh) == (v1, "requested")       # a dry run changes no case

    done = migrate(engine, p, BOSS, note="新增财务审核")
    assert sorted(done.migrated) == sorted([fresh, applying])
    assert on_version(engine, applying) == (p.new.sha256, "applying")
    for cid in (waiting, signed, approved):
        assert on_version(engine, cid)[0] == v1
    assert_clean(engine)

    # the moved case follows v2: apply leads to 财务审核, which finance passes on to signing
    assert engine.advance(applying, "apply", "lin.xiao", {"refund_amount": "20000.00"})["state"] == "reviewing"
    with pytest.raises(WrongState):
        engine.sign(applying, "lin.xiao")
    engine.advance(applying, "review", "cao.ying")
    sign_all(engine, applying)
    # the ones that stayed keep working under v1
    engine.sign(signed, "gao.feng")
    engine.sign(waiting, "lin.xiao")
    assert engine.advance(approved, "pay", "cao.ying", {"payment_ref": "PAY-2"})["state"] == "paid"
    assert_clean(engine)


def test_lands_elsewhere_move_puts_the_case_where_its_history_leads(engine, tmp_path):
    waiting = refund_to_signing(engine)
    p = plan(engine, tmp_path, "review", "refund", lands_elsewhere="move")
    assert migrate(engine, p, BOSS).migrated == [waiting]
    assert on_version(engine, waiting) == (p.new.sha256, "reviewing")
    engine.advance(waiting, "review", "cao.ying")
    assert_clean(engine)


def test_revert_restores_v1_behaviour(engine, tmp_path):
    applying = refund_to_applying(engine)
    moved_on = refund_to_applying(engine)
    v1 = engine.catalog.get("refund").sha256
    p = plan(engine, tmp_path, "review", "refund")
    run = migrate(engine, p, BOSS)
    engine.advance(moved_on, "apply", "lin.xiao", {"refund_amount": "20000.00"})      # now in v2's reviewing
    back = revert(engine, run.run, BOSS)
    assert back.migrated == [applying]
    assert "advanced under the new version" in back.failed[moved_on]
    assert on_version(engine, applying) == (v1, "applying")
    assert on_version(engine, moved_on) == (p.new.sha256, "reviewing")
    assert engine.advance(applying, "apply", "lin.xiao", {"refund_amount": "20000.00"})["state"] == "signing"
    sign_all(engine, applying)
    assert_clean(engine)


# -- refund v2: refund_amount renamed refund_total (a data transform) ------------------------------

def test_renamed_field_needs_the_transform(engine, tmp_path):
    signed = refund_to_signing(engine, "15000.00")
    engine.sign(signed, "lin.xiao")
    fresh = open_refund(engine)
    without = dry_run(engine, plan(engine, tmp_path, "rename", "refund"), BOSS)
    assert verdicts(without) == {signed: "forbidden", fresh: "migratable"}
    refused = next(v for v in without.verdicts if v.case_id == signed).refused
    assert (refused.event, refused.reason) == ("apply", "NEW requires refund_total for apply")

    p = plan(engine, tmp_path, "rename", "refund", transforms={"refund_total": "refund_amount"})
    assert sorted(migrate(engine, p, BOSS).migrated) == sorted([signed, fresh])
    case = engine.read_case(signed)
    assert case.data["refund_total"] == "15000.00" and "refund_amount" not in case.data
    assert [s["by"] for s in case.signoffs] == ["lin.xiao"]          # the signature collected so far is kept
    for who, _ in SIGNERS[1:]:
        engine.sign(signed, who)
    assert engine.advance(signed, "pay", "cao.ying", {"payment_ref": "PAY-9"})["state"] == "paid"
    assert_clean(engine)


def test_signoffs_clear_drops_the_signatures_collected_so_far(engine, tmp_path):
    signed = refund_to_signing(engine)
    engine.sign(signed, "lin.xiao")
    p = plan(engine, tmp_path, "rename", "refund", transforms={"refund_total": "refund_amount"}, signoffs="clear")
    migrate(engine, p, BOSS)
    assert engine.read_case(signed).signoffs == []
    sign_all(engine, signed)                         # the handler signs again, under v2
    assert_clean(engine)


# -- complaint v2: a changed guard and a shorter first-response SLA ----------------------------------

def test_changed_guard_and_recomputed_deadline(engine, tmp_path, clock):
    major = open_complaint(engine, severity="major", form_no="TS-1")
    normal_invalid = open_complaint(engine, form_no="TS-2")
    major_invalid = open_complaint(engine, severity="major", form_no="TS-3")
    for cid in (normal_invalid, major_invalid):
        engine.advance(cid, "assess", "wang.fang")
        engine.advance(cid, "reject", "wang.fang", {"assessment_note": "不属于公司责任"})
    p = plan(engine, tmp_path, "strict", "complaint")
    report = dry_run(engine, p, BOSS)
    assert verdicts(report) == {major: "migratable", normal_invalid: "migratable", major_invalid: "forbidden"}
    by_id = {v.case_id: v for v in report.verdicts}
    assert by_id[major_invalid].refused.event == "reject"
    assert "重大投诉不得直接判定不成立" in by_id[major_invalid].refused.reason
    # received at 10:00 Shanghai: v1 answers within 24 hours, v2 within 12
    assert {c.name: c.due_at for c in by_id[major].clocks.values()}["respond_24h"] == "2025-03-03T14:00:00.000Z"
    assert json.dumps(report.as_dict(), ensure_ascii=False)       # the verdicts serialise for --json

    migrate(engine, p, BOSS)
    assert timer_due(engine, major, "respond_24h") == "2025-03-03T14:00:00.000Z"
    engine.advance(major, "assess", "wang.fang")
    with pytest.raises(GuardFailed, match="重大投诉不得直接判定不成立"):     # v2's guard, for the moved case
        engine.advance(major, "reject", "wang.fang", {"assessment_note": "x"})
    engine.advance(major_invalid, "close", "wang.fang", {"reply_note": "已婉转答复"})   # stayed on v1, still works
    assert_clean(engine)


# -- complaint v2: the state escalated (中层确定最终方案) removed ---------------------------------------

def complaint_to_implementing(engine, form_no: str) -> str:
    cid = open_complaint(engine, form_no=form_no)
    engine.advance(cid, "assess", "wang.fang")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    engine.advance(cid, "find_cause", "tang.liang", {"root_cause": "防水施工不规范", "responsible_person": "xu.peng",
                                                     "solution": "重做防水"})
    engine.sign(cid, "zheng.hai")
    return cid


def test_removed_state(engine, tmp_path):
    investigating = open_complaint(engine, form_no="TS-10")
    engine.advance(investigating, "assess", "wang.fang")
    engine.advance(investigating, "accept", "wang.fang", {"responsible_dept": "engineering"})
    escalated = complaint_to_implementing(engine, "TS-11")
    engine.advance(escalated, "customer_rejects", "wang.fang", {"customer_feedback": "不接受"})
    answered = complaint_to_implementing(engine, "TS-12")
    engine.advance(answered, "customer_rejects", "wang.fang", {"customer_feedback": "不接受"})
    engine.advance(answered, "final_offer", "gao.feng", {"final_solution": "赔偿并重做"})

    default = dry_run(engine, plan(engine, tmp_path, "removed", "complaint"), BOSS)
    assert verdicts(default) == {investigating: "migratable", escalated: "elsewhere", answered: "forbidden"}
    refused = next(v for v in default.verdicts if v.case_id == answered).refused
    assert refused.event == "final_offer" and "not possible" in refused.reason

    p = plan(engine, tmp_path, "removed", "complaint", states={"escalated": "final_answer"})
    report = migrate(engine, p, BOSS)
    assert sorted(report.migrated) == sorted([investigating, escalated])
    assert on_version(engine, escalated) == (p.new.sha256, "final_answer")
    engine.advance(escalated, "customer_accepts", "lin.xiao", {"customer_signature": "张三"})
    engine.advance(answered, "customer_accepts", "lin.xiao", {"customer_signature": "张三"})   # v1, still works
    assert_clean(engine)


# -- policy and permission -----------------------------------------------------------------------------

def test_refuse_policy_migrates_nothing(engine, tmp_path):
    fresh = open_refund(engine)
    signed = refund_to_signing(engine)
    engine.sign(signed, "lin.xiao")
    p = plan(engine, tmp_path, "review", "refund", cannot_migrate="refuse")
    with pytest.raises(MigrationRefused, match="1 of 2 case"):
        migrate(engine, p, BOSS)
    assert on_version(engine, fresh)[0] == p.old.sha256


def test_only_can_migrate_may_run_and_the_refusal_is_recorded(engine, tmp_path):
    open_refund(engine)
    p = plan(engine, tmp_path, "review", "refund")
    with pytest.raises(NotPermitted, match="can_migrate"):
        migrate(engine, p, "jiang.wen")                    # an auditor may dry-run, not move cases
    assert dry_run(engine, p, "jiang.wen").counts()["migratable"] == 1
    with pytest.raises(NotPermitted):
        dry_run(engine, p, "wang.fang")
    import sqlalchemy as sa

    from caseflow.store.tables import attempts
    with engine.store.engine.connect() as conn:
        found = conn.execute(sa.select(attempts.c.actor, attempts.c.event, attempts.c.error)).all()
    assert ("jiang.wen", "migrate run", "NotPermitted") in found
    assert ("wang.fang", "migrate dry-run", "NotPermitted") in found


def test_a_case_moved_back_is_judged_from_its_last_migrate_row(engine, tmp_path, clock):
    applying = refund_to_applying(engine)
    p = plan(engine, tmp_path, "review", "refund")
    revert(engine, migrate(engine, p, BOSS).run, BOSS)
    clock.advance(hours=1)
    again = dry_run(engine, p, BOSS)
    assert verdicts(again) == {applying: "migratable"}
    engine.advance(applying, "apply", "lin.xiao", {"refund_amount": "20000.00"})      # v1: straight to signing
    engine.sign(applying, "lin.xiao")
    refused = dry_run(engine, p, BOSS).verdicts[0].refused
    assert (refused.event, refused.actor) == ("sign", "lin.xiao")
    assert_clean(engine)


# -- member card: unique keys and a running timer survive the move --------------------------------------

def test_unique_keys_and_clocks_follow_the_moved_case(engine, tmp_path):
    from ..scenarios.test_member_card import HOLDER, OTHER, apply_for, issue
    card = apply_for(engine)
    issue(engine, card)
    p = plan(engine, tmp_path, "same", "member_card")
    report = migrate(engine, p, BOSS)
    assert report.migrated == [card]
    assert report.verdicts[0].clocks                     # the points timer started at issue runs on under v2
    assert_clean(engine)                                 # keys, clocks and chain as the log says
    other = apply_for(engine, **OTHER)
    with pytest.raises(InvalidData, match="already belongs to open case"):      # the ID number is still taken
        issue(engine, other, id_number=HOLDER["id_number"])
