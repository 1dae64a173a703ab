"""Every sign-off row says who signed and in which ONE role, under one event name (#15).

罗军 (luo.jun) is both 装修中层 and 区主力: the log must say which of the two
he signed a refund in, because after approval the case keeps no sign-offs and
the log is the only record of the four-eyes chain.
"""

from __future__ import annotations

import json

from caseflow.audit import chain
from caseflow.audit.chain import Entry
from tests.conftest import audit_rows
from tests.helpers import refund_to_signing, sign_all


def _signatures(store, cid):
    return [(r["kind"], r["event"], r["actor"], json.loads(r["roles"])) for r in audit_rows(store, cid)
            if r["kind"] in ("signoff", "reject")]


def test_luo_jun_signs_as_middle_manager_and_the_log_says_so(engine, store, run):
    cid = refund_to_signing(engine)
    sign_all(engine, cid, [("lin.xiao", "handler"), ("luo.jun", "middle_manager"),
                           ("liang.yong", "district_lead"), ("zhang.wei", "company_leader")])
    assert engine.read_case(cid).state == "approved" and engine.read_case(cid).signoffs == []
    assert _signatures(store, cid) == [("signoff", "sign", "lin.xiao", ["handler"]),
                                       ("signoff", "sign", "luo.jun", ["middle_manager"]),
                                       ("signoff", "sign", "liang.yong", ["district_lead"]),
                                       ("signoff", "sign", "zhang.wei", ["company_leader"])]
    approve = next(r for r in audit_rows(store, cid) if r["kind"] == "transition" and r["event"] == "approve")
    assert json.loads(approve["roles"]) == ["company_leader"]        # the last signer's one role

    text = run("report", "signoffs", "--workflow", "refund").stdout
    assert "✔ 装修中层  罗军(luo.jun)" in text and "district_lead" not in text
    assert "✔ 区主力  梁勇(liang.yong)" in text


def test_luo_jun_signs_as_district_lead_when_the_middle_manager_signed_before(engine, store, run):
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao")
    engine.sign(cid, "gao.feng")
    engine.sign(cid, "luo.jun")
    assert _signatures(store, cid)[-1] == ("signoff", "sign", "luo.jun", ["district_lead"])
    rounds = run("--json", "report", "signoffs").json()
    assert [(s["by"], s["role"], s["role_zh"]) for s in rounds[0]["signatures"]] == [
        ("lin.xiao", "handler", "经手人"), ("gao.feng", "middle_manager", "装修中层"),
        ("luo.jun", "district_lead", "区主力")]


def test_a_rejection_records_the_one_role_it_was_given_in(engine, store, run):
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao")
    engine.sign(cid, "luo.jun", reject=True, note="退款金额有误")
    assert _signatures(store, cid)[-1] == ("reject", "reject", "luo.jun", ["middle_manager"])
    text = run("report", "signoffs").stdout
    assert "✘ 装修中层  罗军(luo.jun)" in text and "驳回：退款金额有误" in text


def test_audit_event_sign_finds_every_signature(engine, store, run):
    first = refund_to_signing(engine)
    sign_all(engine, first)
    second = refund_to_signing(engine, refund_amount="10000.00")
    engine.sign(second, "lin.xiao")
    engine.sign(second, "gao.feng", reject=True, note="金额不对")
    rows = run("--json", "audit", "--event", "sign").json()
    assert [(r["case_id"], r["actor"], r["roles"]) for r in rows] == [
        (first, "lin.xiao", ["handler"]), (first, "gao.feng", ["middle_manager"]),
        (first, "liang.yong", ["district_lead"]), (first, "zhang.wei", ["company_leader"]),
        (second, "lin.xiao", ["handler"])]
    rejected = run("--json", "audit", "--event", "reject").json()
    assert [(r["case_id"], r["actor"], r["roles"]) for r in rejected] == [(second, "gao.feng", ["middle_manager"])]


def test_rows_written_before_keep_their_shape_and_readers_still_name_the_role(engine, store, run):
    """Old rows: intermediate signatures as `approve` with the signer's whole role set."""
    cid = refund_to_signing(engine)
    snap = engine.read_case(cid)
    legacy = [Entry("signoff", "approve", "signing", "signing", "lin.xiao", ["handler"]),
              Entry("signoff", "approve", "signing", "signing", "luo.jun", ["district_lead", "middle_manager"]),
              Entry("reject", "reject", "signing", "applying", "liang.yong", ["district_lead"], {}, "重填")]
    with store.write() as conn:
        chain.append(conn, case_id=cid, workflow="refund", definition=snap.definition.sha256, entries=legacy,
                     effective_at="2025-03-03T02:00:00Z")
    rows = run("--json", "audit", "--event", "sign").json()
    assert [(r["event"], r["actor"]) for r in rows] == [("approve", "lin.xiao"), ("approve", "luo.jun")]
    rounds = run("--json", "report", "signoffs").json()
    assert [(s["by"], s["role"], s["role_zh"]) for s in rounds[0]["signatures"]] == [
        ("lin.xiao", "handler", "经手人"), ("luo.jun", "middle_manager", "装修中层")]
    assert rounds[0]["rejection"]["role_zh"] == "区主力"
