"""`caseflow export --format xes|ocel|csv` and `caseflow export verify` (#15).

Refunds covering every step of refund.yaml are exported; pm4py (a test-only
dependency, AGPL: never imported by caseflow) reads the XES and the OCEL back
and discovers the refund process with exactly the YAML's activities, in the
log's order even where rows share a timestamp. An unmasked export verifies;
one edited row is named.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from caseflow.catalog import Catalog
from tests.conftest import IN_CI
from tests.helpers import open_refund, refund_to_signing, sign_all

EXPLAIN = {"reason": "客户资金周转困难", "responsibility": "客户原因"}


def _pm4py():
    try:
        import pm4py
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true but pm4py is missing: .ci/run installs tests/requirements-mining.txt")
        pytest.skip("pm4py not installed (pip install -r tests/requirements-mining.txt)")
    return pm4py


def yaml_activities(d) -> set[str]:
    """What the workflow file declares: opening, every transition, a signature per role, rejection."""
    acts = {"open"} | {t.event for t in d.transitions}
    for t in d.transitions:
        if t.signoffs:
            acts |= {f"sign:{r}" for r in t.signoffs.roles}
            if t.signoffs.reject_to:
                acts |= {f"reject:{r}" for r in t.signoffs.roles}
    return acts


def refunds(engine, clock) -> list[str]:
    """Three refunds: path A paid, path B with a staff fault and a rejection by each signer, a withdrawal."""
    a = refund_to_signing(engine)
    sign_all(engine, a)
    engine.advance(a, "pay", "cao.ying", {"payment_ref": "FK-1"})
    clock.advance(hours=1)
    b = open_refund(engine, work_started=True)
    engine.advance(b, "start_after_work", "wang.fang")
    engine.advance(b, "measure", "song.tao", {"completed_work_value": "6000.00"})
    engine.advance(b, "confirm_charge", "tang.liang", {"final_charge": "7500.00"})
    engine.advance(b, "sign_termination", "lin.xiao")
    engine.advance(b, "explain", "lin.xiao", {**EXPLAIN, "responsibility_code": "A4", "responsible_person": "xu.peng"})
    engine.advance(b, "decide_penalty", "zheng.hai", {"penalty_decision": "罚款200元"})
    engine.advance(b, "apply", "lin.xiao")
    signers = ["lin.xiao", "luo.jun", "liang.yong", "zhang.wei"]
    for n, who in enumerate(signers):              # each signer in turn rejects once, then all sign
        for earlier in signers[:n]:
            engine.sign(b, earlier)
        engine.sign(b, who, reject=True, note="金额需复核")
        engine.advance(b, "apply", "lin.xiao")
    sign_all(engine, b)
    engine.advance(b, "pay", "peng.xue", {"payment_ref": "FK-2"})
    clock.advance(hours=1)
    c = open_refund(engine)
    engine.advance(c, "withdraw", "wang.fang", {"withdraw_reason": "客户改主意"})
    return [a, b, c]


@pytest.fixture
def exported(engine, clock, run, tmp_path):
    cases = refunds(engine, clock)

    def _export(fmt: str, name: str, *extra: str) -> Path:
        out = tmp_path / name
        r = run("--as", "jiang.wen", "export", "--format", fmt, "--workflow", "refund", "-o", str(out), *extra)
        assert (r.exit_code, r.stderr.strip()) == (0, f"wrote {out}"), r.stderr
        return out
    return cases, _export


def _refund_def(shipped_catalog: Catalog):
    return shipped_catalog.get("refund")


def test_xes_reads_back_in_pm4py_with_exactly_the_yaml_activities(exported, shipped_catalog):
    pm4py = _pm4py()
    cases, export = exported
    path = export("xes", "refund.xes", "--unmask")
    df = pm4py.read_xes(str(path))
    assert set(df["case:concept:name"]) == set(cases)
    net, _, _ = pm4py.discover_petri_net_inductive(df)
    found = {t.label for t in net.transitions if t.label is not None}
    assert found == yaml_activities(_refund_def(shipped_catalog))
    assert not {a for a in found if a.startswith(("sla", "notify", "timer", "decision"))}
    for _, trace in df.groupby("case:concept:name", sort=False):        # pm4py's time order = the log's order
        seqs = [int(s) for s in trace.sort_values("time:timestamp", kind="stable")["caseflow:seq"]]
        assert seqs == sorted(seqs)
    first = df[df["case:concept:name"] == cases[0]]
    signed = first[first["concept:name"].str.startswith("sign:")]
    assert list(signed["org:role"]) == ["handler", "middle_manager", "district_lead", "company_leader"]
    text = path.read_text(encoding="utf-8")
    assert 'xes.version="1849-2016"' in text and 'prefix="caseflow"' in text
    assert '.000Z"' in text and "caseflow:hash" in text


def test_ocel_json_and_sqlite_read_back_with_cases_people_orders_and_bookkeeping(exported, shipped_catalog):
    pm4py = _pm4py()
    cases, export = exported
    for name in ("refund.jsonocel", "refund.sqlite"):
        path = export("ocel", name)
        ocel = pm4py.read_ocel2_json(str(path)) if name.endswith("jsonocel") else pm4py.read_ocel2_sqlite(str(path))
        types = set(ocel.objects["ocel:type"])
        assert {"refund", "person", "order", "sla"} <= types
        assert set(ocel.objects[ocel.objects["ocel:type"] == "refund"]["ocel:oid"]) == set(cases)
        flat = pm4py.ocel_flattening(ocel, "refund")
        assert set(flat["concept:name"]) == yaml_activities(_refund_def(shipped_catalog))
    doc = json.loads((export("ocel", "again.jsonocel")).read_text(encoding="utf-8"))
    assert all("hash" not in {a["name"] for a in e["attributes"]} for e in doc["events"])    # masked: no hashes
    opened = next(e for e in doc["events"] if e["id"] == f"{cases[0]}:1")
    changes = json.loads(next(a["value"] for a in opened["attributes"] if a["name"] == "changes"))
    assert changes["customer_name"] == [None, "王**"]


def test_csv_is_one_line_per_activity_masked_like_audit(exported, run):
    cases, export = exported
    path = export("csv", "refund.csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert "hash" not in rows[0] and rows[0]["activity"] == "open" and rows[0]["timestamp"].endswith("Z")
    assert "王建国" not in path.read_text(encoding="utf-8")
    audit = run("--json", "audit", "--workflow", "refund").json()
    opened = next(r for r in audit if r["case_id"] == rows[0]["case_id"] and r["seq"] == 1)
    assert json.loads(rows[0]["changes"]) == opened["changes"]          # the same masking as `audit`
    books = [b for r in rows if r["bookkeeping"] for b in json.loads(r["bookkeeping"])]
    assert {b["kind"] for b in books} >= {"sla", "notify", "decision"}
    assert len(rows) + len(books) == len(audit)                         # every row is there, once


@pytest.mark.parametrize("fmt,name", [("xes", "log.xes"), ("ocel", "log.jsonocel"), ("ocel", "log.sqlite"),
                                      ("csv", "log.csv")])
def test_export_verify_passes_a_clean_export_and_names_the_first_edited_row(exported, run, fmt, name):
    cases, export = exported
    path = export(fmt, name, "--unmask")
    ok = run("export", "verify", str(path))
    assert ok.exit_code == 0 and ok.stdout.startswith("ok: every chain intact — 3 cases"), ok.stdout
    _edit_refund_amount(path, cases[1])
    bad = run("--json", "export", "verify", str(path))
    assert bad.exit_code == 1
    report = bad.json()
    assert report["first_broken"]["case_id"] == cases[1] and report["problems"][0]["kind"] == "edited"
    text = run("export", "verify", str(path)).stdout
    assert f"first broken row: {cases[1]} row {report['first_broken']['seq']}" in text


def test_a_masked_export_cannot_be_verified_and_says_so(exported, run):
    _, export = exported
    path = export("xes", "masked.xes")
    r = run("export", "verify", str(path))
    assert r.exit_code == 1
    assert "rows carry no hash (a masked export cannot be verified; export with --unmask)" in r.stdout


def test_filters_and_refusals(engine, clock, run, tmp_path):
    refunds(engine, clock)
    none = run("export", "--format", "csv", "--workflow", "refund", "--until", "2025-03-02").stdout
    assert none.splitlines()[1:] == []
    assert run("export", "--format", "csv", "--workflow", "refunds").exit_code == 4
    assert run("export").exit_code == 2
    denied = run("--as", "wang.fang", "export", "--format", "xes", "--unmask")
    assert denied.exit_code == 1 and "may not see personal data unmasked" in denied.stderr
    junk = tmp_path / "junk.xes"
    junk.write_text("<log><trace>", encoding="utf-8")
    r = run("export", "verify", str(junk))
    assert r.exit_code == 2 and r.stderr.startswith(f"error: {junk}: not a caseflow xes export")


def _edit_refund_amount(path: Path, case_id: str) -> None:
    """Change the amount paid, 20000.00 → 86000.00, in the case's first row, keeping its hash."""
    if path.suffix == ".sqlite":
        db = sqlite3.connect(path)
        with db:
            table = db.execute("SELECT ocel_type_map FROM event_map_type WHERE ocel_type = 'open'").fetchone()[0]
            db.execute(f'UPDATE "event_{table}" SET changes = replace(changes, \'20000.00\', \'86000.00\') '
                       f"WHERE case_id = ?", (case_id,))
        db.close()
        return
    text = path.read_text(encoding="utf-8")
    marker = text.index(f'"id": "{case_id}:1"' if path.suffix == ".jsonocel" else case_id)
    at = text.index("20000.00", marker)
    path.write_text(text[:at] + "86000.00" + text[at + 8:], encoding="utf-8")


def test_ocel_links_a_spawned_case_to_its_parent(engine, run):
    from tests.scenarios.test_linked_cases import closed_valid
    parent = closed_valid(engine)
    doc = json.loads(run("export", "--format", "ocel").stdout)
    spawned = [o for o in doc["objects"] if {"objectId": parent, "qualifier": "spawned_by"} in o["relationships"]]
    assert {o["type"] for o in spawned} >= {"followup_visit"}
    assert next(o for o in doc["objects"] if o["id"] == parent)["type"] == "complaint"
    complaint_events = {e["type"] for e in doc["events"] if {"objectId": parent, "qualifier": "case"}
                        in e["relationships"]}
    assert "reject" not in complaint_events and not complaint_events & {"spawn", "notify", "sla", "decision"}
