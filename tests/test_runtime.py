"""The operator's contract: what advance/sign/open do, and what a refusal leaves behind.

Every refusal is checked three ways (style.md §8): the exit code, the exact
one-line message, and an unchanged case row and audit log.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from caseflow.catalog import SHIPPED, Catalog
from caseflow.errors import StaleCase
from caseflow.runtime.engine import Engine
from caseflow.store.locks import NOTICE

from .conftest import snapshot
from .helpers import open_refund, race_two, refund_to_signing


def refused(run, store, cid, *args, code, message):
    """Run a CLI action that must be refused and prove nothing changed."""
    before = snapshot(store, cid) if cid else None
    r = run(*args)
    assert r.exit_code == code, r.stderr
    assert r.stderr.strip() == message
    assert r.stdout == ""
    if cid:
        assert snapshot(store, cid) == before


def test_open_prints_case_id_and_initial_state(run, engine):
    r = run("--as", "wang.fang", "--json", "open", "refund", "--set", "order_no=D-1",
            "--set", "customer_name=王建国", "--set", "contract_amount=80000", "--set", "amount_paid=20000",
            "--set", "work_started=false")
    assert r.exit_code == 0, r.stderr
    body = r.json()
    assert body["workflow"] == "refund" and body["state"] == "requested"
    assert engine.read_case(body["id"]).data["amount_paid"] == "20000.00"


def test_refused_wrong_state(run, engine, store):
    cid = open_refund(engine)
    refused(run, store, cid, "--as", "cao.ying", "advance", cid, "pay", code=1,
            message=f"error: case {cid}: cannot pay in state requested: 财务退款(pay) is not possible in "
                    f"申请退单(requested); possible now: start_after_work, start_before_work, withdraw")


def test_refused_unknown_event_suggests_the_nearest(run, engine, store):
    cid = open_refund(engine)
    refused(run, store, cid, "--as", "wang.fang", "advance", cid, "start_befor_work", code=1,
            message=f"error: case {cid}: cannot start_befor_work in state requested: unknown event "
                    f"'start_befor_work' (did you mean 'start_before_work'?); possible now: "
                    f"start_after_work, start_before_work, withdraw")


def test_refused_wrong_role(run, engine, store):
    cid = open_refund(engine)
    refused(run, store, cid, "--as", "cao.ying", "advance", cid, "start_before_work", code=1,
            message=f"error: case {cid}: cannot start_before_work in state requested: cao.ying has none "
                    f"of the roles allowed: 客服专员(cs_agent), 经手人(handler)")


def test_refused_failing_guard_names_the_guard(run, engine, store):
    cid = open_refund(engine, work_started=True)
    refused(run, store, cid, "--as", "wang.fang", "advance", cid, "start_before_work", code=1,
            message=f"error: case {cid}: cannot start_before_work in state requested: "
                    f"已开工的订单须走已开工退单流程")


def test_refused_missing_field(run, engine, store):
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    refused(run, store, cid, "--as", "lin.xiao", "advance", cid, "explain", "--set", "reason=资金困难",
            code=1, message=f"error: case {cid}: cannot explain in state explaining: missing required: "
                            f"responsibility (set with --set responsibility=…)")


@pytest.mark.parametrize("pair, message", [
    ("reason", "--set 'reason': expected KEY=VALUE"),
    ("payment_ref=P1", "--set payment_ref: not accepted by event 'explain' (it accepts: reason, "
                       "responsibility, responsibility_code, responsible_person)"),
    ("responsibilty=x", "--set responsibilty: not accepted by event 'explain' (did you mean 'responsibility'?)"),
    ("responsibility_code=Z9", "--set responsibility_code: 'Z9' is not one of A1, A2, A3, A4, A5, B1, B2, "
                               "B3, B4, B5, B6, C, D"),
])
def test_refused_malformed_set(run, engine, store, pair, message):
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    refused(run, store, cid, "--as", "lin.xiao", "advance", cid, "explain", "--set", pair,
            code=2, message=f"error: {message}")


@pytest.mark.parametrize("amount, why", [
    ("-5", "'-5' is negative; amounts are ≥ 0"),
    ("12.345", "'12.345' has more than 2 decimal places"),
    ("NaN", "'NaN' is not an amount (write e.g. 1200.50)"),
    ("1e400", "'1e400' is not an amount (write e.g. 1200.50)"),
    ("12,50", "'12,50' is not an amount (a comma only separates thousands, as in 1,200.50; write decimals "
              "with a point: 12.50)"),
    ("十元", "'十元' is not an amount (write e.g. 1200.50)"),
])
def test_refused_bad_amounts(run, engine, store, amount, why):
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao", reject=True, note="金额有误")
    refused(run, store, cid, "--as", "lin.xiao", "advance", cid, "apply", "--set", f"refund_amount={amount}",
            code=2, message=f"error: --set refund_amount: {why}")


def test_refund_amount_above_paid_is_refused_by_guard(run, engine, store):
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao", reject=True, note="金额有误")
    refused(run, store, cid, "--as", "lin.xiao", "advance", cid, "apply", "--set", "refund_amount=20000.01",
            code=1, message=f"error: case {cid}: cannot apply in state applying: 退款金额不能超过已付金额")


def test_refused_out_of_order_signer(run, engine, store):
    cid = refund_to_signing(engine)
    refused(run, store, cid, "--as", "gao.feng", "sign", cid, code=1,
            message=f"error: case {cid}: cannot sign in state signing: the next sign-off is by "
                    f"经手人(handler); gao.feng is not")


def test_refused_repeated_signer(run, engine, store):
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao")
    engine.sign(cid, "luo.jun")              # middle_manager, also a district_lead
    refused(run, store, cid, "--as", "luo.jun", "sign", cid, code=1,
            message=f"error: case {cid}: cannot sign in state signing: luo.jun already signed as "
                    f"装修中层(middle_manager); each sign-off needs a different person")


def test_refused_advance_on_a_signoff_transition_points_to_sign(run, engine, store):
    cid = refund_to_signing(engine)
    refused(run, store, cid, "--as", "lin.xiao", "advance", cid, "approve", code=1,
            message=f"error: case {cid}: cannot approve in state signing: needs sign-offs; next: "
                    f"经手人(handler) (use: caseflow sign {cid})")


def test_refused_unknown_case(run, engine):
    refused(run, None, None, "--as", "wang.fang", "advance", "REF-NOPE", "withdraw", code=4,
            message="error: case 'REF-NOPE' not found")


def test_refused_unknown_user(run, engine, store):
    cid = open_refund(engine)
    refused(run, store, cid, "--as", "mallory", "advance", cid, "withdraw", code=1,
            message="error: unknown user 'mallory': not in org.yaml")
    refused(run, store, cid, "--as", "", "advance", cid, "withdraw", code=1,
            message="error: no user given: pass --as USER or set CASEFLOW_USER")


def test_refused_attempts_are_recorded_in_the_attempts_log(engine, store, run):
    import sqlalchemy as sa

    from caseflow.store.tables import attempts
    cid = open_refund(engine)
    run("--as", "cao.ying", "advance", cid, "start_before_work")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(attempts)).all()
    assert [(r.case_id, r.event, r.actor, r.error) for r in rows] == [
        (cid, "start_before_work", "cao.ying", "RoleNotAllowed")]


def test_show_lists_allowed_events_and_what_is_missing(run, engine):
    cid = open_refund(engine)
    body = run("--as", "wang.fang", "--json", "show", cid).json()
    assert body["state"] == "requested" and body["definition"] == engine.read_case(cid).definition.sha256
    events = {e["event"]: e for e in body["events"]}
    assert events["start_before_work"]["allowed"] is True
    assert events["start_after_work"] == {**events["start_after_work"], "allowed": False,
                                          "missing": ["guard: 未开工的订单须走未开工退单流程"]}
    assert events["withdraw"]["missing"] == ["fields: withdraw_reason (give with --set)"]
    assert body["pending_signoff"] is None
    as_finance = run("--as", "cao.ying", "--json", "show", cid).json()
    assert {e["event"]: e["missing"][0] for e in as_finance["events"]}["start_before_work"] == \
        "role: one of 客服专员(cs_agent), 经手人(handler)"


def test_show_tells_who_must_sign_next(run, engine):
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao")
    body = run("--as", "gao.feng", "--json", "show", cid).json()
    assert body["pending_signoff"]["role"] == "middle_manager"
    assert [(s["role"], s["by"]) for s in body["signoffs"]] == [("handler", "lin.xiao")]


def test_show_masks_personal_data(run, engine):
    cid = open_refund(engine)
    assert run("--as", "wang.fang", "--json", "show", cid).json()["data"]["customer_name"] == "王**"


def test_history_json_shape(run, engine):
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang", note="客户来电")
    rows = run("--as", "wang.fang", "--json", "history", cid).json()
    assert [(r["seq"], r["event"], r["from"], r["to"], r["actor"]) for r in rows] == [
        (1, "open", None, "requested", "wang.fang"), (2, "start_before_work", "requested", "terminating",
                                                      "wang.fang")]
    assert rows[1]["note"] == "客户来电" and set(rows[0]) >= {"at", "recorded_at"}


def test_list_json_shape(run, engine):
    a, b = open_refund(engine), open_refund(engine)
    engine.advance(b, "start_before_work", "wang.fang")
    rows = run("--json", "list", "--workflow", "refund", "--state", "terminating").json()
    assert [(r["id"], r["workflow"], r["state"]) for r in rows] == [(b, "refund", "terminating")]
    assert {r["id"] for r in run("--json", "list").json()} >= {a, b}


def test_case_keeps_running_under_the_version_it_was_opened_with(tmp_path, store, clock):
    wf = tmp_path / "workflows"
    shutil.copytree(SHIPPED, wf)
    v1 = Engine(store, Catalog.load(wf), clock)
    old = open_refund(v1)
    text = (wf / "refund.yaml").read_text(encoding="utf-8")
    stricter = text.replace('      - expr: "!work_started"\n',
                            '      - expr: "amount_paid < yuan(1000)"\n        message: 新规则：大额退单须走另一流程\n'
                            '      - expr: "!work_started"\n', 1)
    assert stricter != text
    (wf / "refund.yaml").write_text(stricter, encoding="utf-8")
    v2 = Engine(store, Catalog.load(wf), clock)
    new = open_refund(v2)
    assert v2.read_case(old).definition.sha256 != v2.read_case(new).definition.sha256
    assert v2.advance(old, "start_before_work", "wang.fang")["state"] == "terminating"
    with pytest.raises(Exception) as info:
        v2.advance(new, "start_before_work", "wang.fang")
    assert "新规则" in str(info.value)


def test_two_writers_on_the_same_case_one_wins_the_other_is_stale(store, shipped_catalog, clock):
    seed = Engine(store, shipped_catalog, clock)
    cid = open_refund(seed)
    results = race_two(store, shipped_catalog, clock, lambda eng: eng.advance(cid, "start_before_work", "wang.fang"))
    stale = [r for r in results if isinstance(r, StaleCase)]
    assert len(stale) == 1 and str(stale[0]) == f"case {cid} was changed by someone else; retry"
    history = seed.read_case(cid)
    assert history.state == "terminating" and history.version == 2


def test_two_cli_processes_one_succeeds_the_other_exits_3(db_url, engine, tmp_path):
    import os
    import subprocess
    import sys
    cid = open_refund(engine)
    driver = Path(__file__).with_name("race_driver.py")
    env = {**os.environ, "CASEFLOW_DB": db_url, "CASEFLOW_WORKFLOWS": str(SHIPPED),
           "RACE_DIR": str(tmp_path), "RACE_N": "2", "CASEFLOW_USER": "wang.fang"}
    procs = [subprocess.Popen([sys.executable, str(driver), "advance", cid, "start_before_work"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    # (a process that queued over a second for the other's write lock says so first: store/locks.py)
    outcomes = sorted((p.wait(60), p.stderr.read().replace(NOTICE + "\n", "").strip()) for p in procs)
    assert outcomes == [(0, ""), (3, f"error: case {cid} was changed by someone else; retry")]
    snap = engine.read_case(cid)
    assert snap.state == "terminating" and snap.version == 2
    from .conftest import audit_rows
    assert [r["event"] for r in audit_rows(engine.store, cid)] == ["open", "start_before_work"]
