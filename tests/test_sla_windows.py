"""SLA compliance per window (#15): a clock that restarts cannot hide a breach.

The refund's 每位签字人24小时 restarts on every signature. Counted per clock
(the last window only) a refund whose second signer took two days was "met";
counted per window it has one breached window out of four.
"""

from __future__ import annotations

import importlib.util

import sqlalchemy as sa

from caseflow.runtime.sweep import sweep
from caseflow.sla.compliance import compliance
from caseflow.store.migrate import MIGRATIONS
from caseflow.store.tables import sla_windows
from caseflow.values import parse_datetime
from tests.helpers import refund_to_signing

WINDOW = ("case_id", "clock", "opened_by", "due_at", "breached_at", "closed_at", "outcome")


def _windows(store, cid=None):
    q = sa.select(sla_windows).order_by(sla_windows.c.id)
    if cid:
        q = q.where(sla_windows.c.case_id == cid)
    with store.engine.connect() as conn:
        return [{k: r._mapping[k] for k in WINDOW} for r in conn.execute(q)]


def _overdue(run):
    return [r["id"] for r in run("--json", "list", "--overdue").json()]


def _signoff_row(run):
    rows = run("--json", "report", "sla", "--workflow", "refund", "--month", "2025-03").json()
    return next(r for r in rows if r["sla"] == "signoff_24h")


def _restart_case(engine, clock):
    """Signing opens at 03-03 10:00; the second signer is two days late; the rest sign in time."""
    cid = refund_to_signing(engine)
    clock.set("2025-03-03 11:00")
    engine.sign(cid, "lin.xiao")
    clock.set("2025-03-05 12:00")
    return cid


def test_the_restart_case_reports_its_breach(engine, store, clock, run):
    cid = _restart_case(engine, clock)
    assert sweep(engine, engine.now()).breached == 1           # escalation written
    clock.set("2025-03-05 12:30")
    engine.sign(cid, "gao.feng")                                # restarts the clock
    clock.set("2025-03-05 13:00")
    engine.sign(cid, "liang.yong")
    clock.set("2025-03-05 14:00")
    engine.sign(cid, "zhang.wei")                               # approved: the clock stops in time
    assert engine.read_case(cid).state == "approved"
    assert [(w["opened_by"], w["outcome"]) for w in _windows(store, cid)] == [
        ("start", "met"), ("restart", "breached"), ("restart", "met"), ("restart", "met")]
    row = _signoff_row(run)
    assert {k: row[k] for k in ("month", "windows", "met", "breached", "overdue", "running", "clocks",
                                "clocks_breached", "on_time_pct")} == {
        "month": "2025-03", "windows": 4, "met": 3, "breached": 1, "overdue": 0, "running": 0, "clocks": 1,
        "clocks_breached": 1, "on_time_pct": 75.0}
    text = run("report", "sla", "--workflow", "refund").stdout
    assert "每位签字人24小时" in text and "曾超时时钟" in text and "75.0" in text


def test_list_overdue_and_the_report_agree_before_and_after_a_sweep(engine, store, clock, run):
    cid = _restart_case(engine, clock)
    on_time = refund_to_signing(engine)                          # opened at 03-05 12:00: within time
    before = _signoff_row(run)
    assert _overdue(run) == [cid]
    assert (before["overdue"], before["breached"], before["running"]) == (1, 1, 1)
    sweep(engine, engine.now())
    after = _signoff_row(run)
    assert _overdue(run) == [cid]
    assert {k: after[k] for k in ("overdue", "breached", "running", "met")} == \
        {k: before[k] for k in ("overdue", "breached", "running", "met")}
    engine.sign(cid, "gao.feng")                                 # the late window ends, a new one opens
    assert _overdue(run) == []
    now = _signoff_row(run)
    assert (now["overdue"], now["breached"], now["running"], now["windows"]) == (0, 1, 2, 4)
    assert on_time not in _overdue(run)


def test_sla_status_is_the_same_report(engine, clock, run):
    _restart_case(engine, clock)
    assert run("--json", "sla", "status", "--workflow", "refund").json() == \
        run("--json", "report", "sla", "--workflow", "refund").json() == compliance(engine, "refund")
    assert run("sla", "status").stdout == run("report", "sla").stdout
    bad = run("report", "sla", "--month", "2025-13")
    assert (bad.exit_code, bad.stderr.strip()) == (2, "error: --month '2025-13': expected YYYY-MM, e.g. 2025-03")


def test_a_stop_after_the_deadline_without_a_sweep_is_late(engine, store, clock):
    cid = _restart_case(engine, clock)
    engine.sign(cid, "gao.feng")                                 # nobody swept: still a missed window
    assert [w["outcome"] for w in _windows(store, cid)][:2] == ["met", "late"]
    row = next(r for r in compliance(engine, "refund") if r["sla"] == "signoff_24h")
    assert (row["breached"], row["clocks_breached"]) == (1, 1)


def test_existing_databases_get_their_windows_from_the_audit_log(engine, store, clock):
    """The migration's backfill rebuilds, from the log alone, the windows the engine wrote."""
    cid = _restart_case(engine, clock)
    sweep(engine, engine.now())
    clock.set("2025-03-05 12:30")
    engine.sign(cid, "gao.feng")
    other = refund_to_signing(engine)
    engine.advance(other, "withdraw", "wang.fang", {"withdraw_reason": "客户改主意"})
    written = _windows(store)
    spec = importlib.util.spec_from_file_location("m0002", MIGRATIONS / "versions" / "0003_sla_windows.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with store.engine.begin() as conn:
        conn.execute(sla_windows.delete())
        module._backfill(conn)
    def same_time(rows):      # the revision writes the whole-second text of its day (…:00Z); same instants
        return [{k: parse_datetime(v) if k.endswith("_at") and v else v for k, v in w.items()} for w in rows]

    rebuilt, written = same_time(_windows(store)), same_time(written)
    order = lambda w: (w["case_id"], w["clock"], str(w["closed_at"] or "~"))  # noqa: E731
    assert sorted(rebuilt, key=order) == sorted(written, key=order) and len(written) == 4
