"""`audit verify` proves the whole case: every attack of issue #14 is named, on SQLite and PostgreSQL.

Each test plays one attack from outside the engine (tamper.py), the way a
database owner would, and checks that `verify` names the case and what
differs, in the mode docs/security.md says covers it. The figures at the end
of the run count them (security: tamper_cases_tried / tamper_cases_caught).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from caseflow.audit.chain import row_hash
from caseflow.audit.keys import mac
from caseflow.audit.verify import record_checkpoint, verify
from caseflow.catalog import SHIPPED, Catalog
from caseflow.errors import EvidenceMismatch
from caseflow.runtime.engine import Engine
from caseflow.runtime.sweep import sweep

from ..conftest import audit_rows, case_row
from ..helpers import open_complaint, open_refund, refund_to_signing
from .tamper import caught, drop_triggers, sql, tampering

HOLDER = {"name": "李娜", "id_number": "110101199001011234", "birth_date": "1990-01-01",
          "phone": "13900000001", "tier": "vip"}
AT_OPEN = ("name", "phone")       # the rest is given at issue (processes.md §3)


def card(engine: Engine, **holder: str) -> str:
    person = {**HOLDER, **holder}
    cid = engine.open("member_card", "xie.na", {k: person[k] for k in AT_OPEN})["id"]
    engine.advance(cid, "issue", "xie.na", {**{k: v for k, v in person.items() if k not in AT_OPEN},
                                            "member_id": f"M-{cid}", "card_no": f"C-{cid}",
                                            "same_day_cash": "300.00", "in_person": "true"})
    return cid


def buy(engine: Engine, cid: str, amount: str) -> None:
    engine.advance(cid, "purchase", "xie.na", {"amount": amount, "special_goods": "false",
                                               "promotion": "false", "items": "1"})       # all in cash


def messages(report, where: str) -> list[str]:
    return [p.message for p in report.problems if p.where == where]


def penalised_refund(engine: Engine) -> str:
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    engine.advance(cid, "explain", "lin.xiao", {"reason": "未按约定出图影响施工", "responsibility": "设计师失职",
                                                "responsibility_code": "A4", "responsible_person": "xu.peng"})
    return cid


# -- a clean database ---------------------------------------------------------------------------

def test_a_clean_database_of_every_process_verifies_ok(run, store, shipped_catalog):
    assert run("demo").exit_code == 0
    report = verify(store, catalog=shipped_catalog)
    assert report.problems == [] and report.cases > 5
    r = run("audit", "verify")
    assert (r.exit_code, r.stdout.startswith("ok: audit log intact")) == (0, True), r.stdout


# -- the case row ------------------------------------------------------------------------------

def test_edited_case_data_is_named_with_the_field(engine, store):
    cid = refund_to_signing(engine)
    data = json.loads(case_row(store, cid)["data"])
    with tampering(store) as conn:
        sql(conn, "UPDATE cases SET data = :d WHERE id = :id",
            d=json.dumps({**data, "refund_amount": "86000.00"}, ensure_ascii=False), id=cid)
    report = caught(store, where=cid, kind="data")
    assert messages(report, cid) == ["case data differs from what its history records in refund_amount "
                                     "(the case row was edited, or rows were deleted)"]


def test_forged_signatures_are_named_and_one_real_sign_does_not_fire_the_approval(engine, store):
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao")
    real = json.loads(case_row(store, cid)["signoffs"])
    forged = real + [{"role": "middle_manager", "by": "gao.feng", "at": real[0]["at"]},
                     {"role": "district_lead", "by": "liang.yong", "at": real[0]["at"]}]
    with tampering(store) as conn:
        sql(conn, "UPDATE cases SET signoffs = :s WHERE id = :id", s=json.dumps(forged), id=cid)
    report = caught(store, where=cid, kind="signoffs")
    assert messages(report, cid) == [
        "sign-offs in the case row (lin.xiao as handler, gao.feng as middle_manager, liang.yong as district_lead) "
        "are not the ones its history records (lin.xiao as handler)"]
    before = audit_rows(store, cid)
    with pytest.raises(EvidenceMismatch) as refused:
        engine.sign(cid, "zhang.wei")
    assert str(refused.value) == (f"case {cid}: cannot sign in state signing: the sign-offs in the case row are "
                                  f"not the ones its audit log records; nothing was signed (run caseflow audit verify)")
    assert case_row(store, cid)["state"] == "signing" and audit_rows(store, cid) == before


def test_a_deleted_tail_that_kept_the_state_is_named_without_a_checkpoint(engine, store):
    cid = card(engine)
    buy(engine, cid, "1000.00")
    rows = audit_rows(store, cid)
    last_purchase = max(r["seq"] for r in rows if r["event"] == "purchase")
    with tampering(store) as conn:
        sql(conn, "DELETE FROM audit WHERE case_id = :id AND seq >= :seq", id=cid, seq=last_purchase)
    report = caught(store, where=cid, kind="truncated")
    assert any(m.startswith(f"case row is at version {case_row(store, cid)['version']} but its history ends at "
                            f"version {case_row(store, cid)['version'] - 1}") for m in messages(report, cid))


def test_a_deleted_latest_penalty_decision_is_named(engine, store):
    cid = penalised_refund(engine)
    with tampering(store) as conn:
        sql(conn, "DELETE FROM audit WHERE case_id = :id AND kind = 'decision'", id=cid)
    report = caught(store, where="decision_counts", kind="counters")
    assert messages(report, "decision_counts") == [
        "decision counter penalty (2025-03) for one key is 1 but the log records 0 counting decision(s): "
        "the counter was reset or edited"]


# -- definitions -------------------------------------------------------------------------------

def test_an_edited_old_definition_is_named_and_no_case_runs_under_it(store, shipped_catalog, clock, tmp_path):
    old_dir = tmp_path / "old"
    shutil.copytree(SHIPPED, old_dir)
    (old_dir / "refund.yaml").write_text((SHIPPED / "refund.yaml").read_text(encoding="utf-8") + "\n# v1\n",
                                         encoding="utf-8")
    old = Engine(store, Catalog.load(old_dir), clock)
    cid = refund_to_signing(old)
    sha = case_row(store, cid)["definition"]
    with tampering(store) as conn:
        text = (old_dir / "refund.yaml").read_text(encoding="utf-8").replace("min_signers", "min_signers")
        sql(conn, "UPDATE definitions SET text = :t WHERE sha256 = :s", t=text + "# approve needs nobody\n", s=sha)
    report = caught(store, where="definitions", kind="definition")
    assert messages(report, "definitions") == [f"stored text of refund version {sha[:12]} does not hash to its "
                                               f"key (the definition was edited in the database)"]
    current = Engine(store, Catalog.load(SHIPPED), clock)
    with pytest.raises(EvidenceMismatch, match="does not hash to its key"):
        current.sign(cid, "lin.xiao")


def test_rows_naming_a_definition_nobody_stored_are_named(engine, store):
    cid = open_complaint(engine)
    last = audit_rows(store, cid)[-1]
    forged = {k: v for k, v in last.items() if k not in ("id", "hash", "mac")}
    forged.update(seq=last["seq"] + 1, kind="escalation", event="escalate", definition="f" * 64,
                  note="forged", prev_hash=last["hash"], from_state=None, to_state=None)
    forged["hash"] = row_hash(forged)
    with tampering(store) as conn:
        cols = ", ".join(forged)
        sql(conn, f"INSERT INTO audit ({cols}) VALUES ({', '.join(':' + k for k in forged)})", **forged)
    report = caught(store, where=cid, kind="definition")
    assert f"audit rows name definition version {'f' * 12}, which no stored definition has (forged rows, or " \
           f"the definition row was deleted)" in messages(report, cid)


# -- org charts and calendars ----------------------------------------------------------------------

@pytest.mark.parametrize("column, edit", [
    ("org_text", lambda text: text.replace("can_audit: true", "can_audit: false")),    # an auditor loses the role
    ("calendars_text", lambda text: text + "\n# 2025-03-04 declared a holiday\n"),      # a calendar moved
])
def test_an_edited_org_or_calendar_text_is_named(engine, store, column, edit):  # noqa: ANN001
    cid = open_complaint(engine)
    assert verify(store).ok                                 # clean first
    with tampering(store) as conn:
        version, sha, text = sql(conn, f"SELECT id, sha256, {column} FROM orgs ORDER BY id DESC").first()
        assert edit(text) != text
        sql(conn, f"UPDATE orgs SET {column} = :t WHERE id = :id", t=edit(text), id=version)
    report = caught(store, where="orgs", kind="org")
    assert messages(report, "orgs") == [f"stored org chart version {version} ({sha[:12]}) does not hash to its key "
                                        f"(its org.yaml or calendars.yaml text was edited in the database)"]
    assert not report.ok and cid


def test_rows_naming_an_org_version_nobody_stored_are_named(engine, store):
    cid = open_complaint(engine)
    with tampering(store) as conn:
        sql(conn, "DELETE FROM orgs")
    report = caught(store, where=cid, kind="org")
    assert [m for m in messages(report, cid) if "org chart version" in m] == [
        f"audit rows name org chart version {engine.org_sha[:12]}, which no stored org chart has (forged rows, "
        f"or the org version was deleted)"]


# -- timers, counters, unique keys ----------------------------------------------------------------

def test_a_breach_flipped_to_met_is_named(engine, store, clock):
    clock.set("2025-03-03 10:00")
    cid = open_complaint(engine, received_at="2025-03-03T10:00")
    clock.set("2025-03-05 10:00")
    sweep(engine, engine.now())
    with tampering(store) as conn:
        sql(conn, "UPDATE timers SET status = 'met' WHERE case_id = :id AND status = 'breached'", id=cid)
    report = caught(store, where=cid, kind="timer")
    assert "clock forward_2wh is met in the timers table but its history says breached" in messages(report, cid)


def test_a_reset_penalty_counter_is_named(engine, store):
    penalised_refund(engine)
    with tampering(store) as conn:
        sql(conn, "DELETE FROM decision_counts")
    report = caught(store, where="decision_counts", kind="counters")
    assert messages(report, "decision_counts") == [
        "decision counter penalty (2025-03) for one key is 0 but the log records 1 counting decision(s): "
        "the counter was reset or edited"]


def test_deleted_unique_keys_are_named_without_the_id_number(engine, store, shipped_catalog):
    cid = card(engine)
    with tampering(store) as conn:
        sql(conn, "DELETE FROM case_keys WHERE case_id = :id AND field = 'id_number'", id=cid)
    report = caught(store, where=cid, kind="keys", catalog=shipped_catalog)
    assert messages(report, cid) == [f"unique id_number of open case {cid} is missing from case_keys: "
                                     f"a second case could take it"]
    assert HOLDER["id_number"] not in str(report.as_dict())


# -- the guards and the checkpoints ---------------------------------------------------------------

def test_dropped_triggers_are_named(engine, store):
    open_complaint(engine)
    drop_triggers(store)
    report = caught(store, where="guards", kind="guards")
    assert any("append-only trigger(s) missing or disabled: " in m for m in messages(report, "guards"))


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)   # grants are PostgreSQL's
def test_a_write_grant_on_the_log_is_named_on_postgresql(engine, store):
    assert store.backend.name == "postgresql"
    open_complaint(engine)
    with store.engine.begin() as conn:
        sql(conn, "GRANT UPDATE, DELETE ON audit TO PUBLIC")
    report = caught(store, where="guards", kind="guards")
    assert "role PUBLIC may DELETE audit: the log is append-only" in messages(report, "guards")


def test_deleted_checkpoints_are_named_against_the_anchor_file(engine, store, tmp_path, run):
    open_complaint(engine)
    anchor = tmp_path / "anchor.jsonl"
    for _ in range(2):
        assert run("--as", "jiang.wen", "audit", "checkpoint", "--anchor", str(anchor)).exit_code == 0
    assert verify(store, anchor=str(anchor)).problems == []
    with tampering(store) as conn:
        sql(conn, "DELETE FROM checkpoints")
    report = caught(store, where="checkpoints", kind="shrunk", anchor=str(anchor))
    assert messages(report, "checkpoints") == ["checkpoint chain shrank: 2 anchored checkpoint(s) missing (1, 2); "
                                               "the database has 0, the last at id 0"]
    r = run("audit", "verify", "--anchor", str(anchor))
    assert r.exit_code == 1 and "✘ checkpoints: checkpoint chain shrank" in r.stdout


# -- the keyed chain ------------------------------------------------------------------------------

def _append_forged_purchase(store, cid: str) -> None:
    """A forged row with a recomputed hash, and the case row to match: invisible to a plain chain."""
    last = audit_rows(store, cid)[-1]
    row = case_row(store, cid)
    forged = {k: v for k, v in last.items() if k not in ("id", "hash", "mac")}
    data = json.loads(row["data"])
    forged.update(seq=last["seq"] + 1, kind="transition", event="grant_bonus", from_state=row["state"],
                  to_state=row["state"], note="forged", prev_hash=last["hash"], case_version=row["version"] + 1,
                  changes=json.dumps({"points": [data["points"], data["points"] + 5000]}, sort_keys=True,
                                     separators=(",", ":")))
    forged["hash"] = row_hash(forged)
    with tampering(store) as conn:
        sql(conn, f"INSERT INTO audit ({', '.join(forged)}) VALUES ({', '.join(':' + k for k in forged)})", **forged)
        sql(conn, "UPDATE cases SET data = :d, version = :v, audit_seq = :s, audit_hash = :h WHERE id = :id",
            d=json.dumps({**data, "points": data["points"] + 5000}, ensure_ascii=False, sort_keys=True),
            v=row["version"] + 1, s=forged["seq"], h=forged["hash"], id=cid)


def test_rows_appended_with_recomputed_hashes_pass_unkeyed_and_are_caught_with_the_key(
        store, shipped_catalog, clock, tmp_path, monkeypatch):
    key = tmp_path / "audit.key"
    key.write_text("k" * 32)
    monkeypatch.setenv("CASEFLOW_AUDIT_KEY_FILE", str(key))
    engine = Engine(store, shipped_catalog, clock)
    cid = card(engine)
    assert verify(store).ok and verify(store).keyed
    _append_forged_purchase(store, cid)
    monkeypatch.delenv("CASEFLOW_AUDIT_KEY_FILE")
    assert verify(store).ok                                     # without the key nobody can tell
    monkeypatch.setenv("CASEFLOW_AUDIT_KEY_FILE", str(key))
    report = caught(store, where=cid, kind="unkeyed")
    last = audit_rows(store, cid)[-1]["seq"]
    assert messages(report, cid) == [f"row {last} carry no valid MAC under the audit key (appended or rewritten "
                                     f"by someone without the key)"]


def test_every_row_and_checkpoint_carries_a_mac_under_the_key(store, shipped_catalog, clock, tmp_path, monkeypatch):
    key = tmp_path / "audit.key"
    key.write_bytes(b"0123456789abcdef0123")
    monkeypatch.setenv("CASEFLOW_AUDIT_KEY_FILE", str(key))
    engine = Engine(store, shipped_catalog, clock)
    cid = card(engine)
    cp = record_checkpoint(store, "jiang.wen")
    assert cp["mac"] == mac(b"0123456789abcdef0123", cp["digest"])
    assert all(r["mac"] == mac(b"0123456789abcdef0123", r["hash"]) for r in audit_rows(store, cid))


def test_the_audit_key_file_must_exist_and_be_long_enough(run, tmp_path, monkeypatch):
    short = tmp_path / "short.key"
    short.write_text("abc")
    monkeypatch.setenv("CASEFLOW_AUDIT_KEY_FILE", str(short))
    r = run("audit", "verify")
    assert (r.exit_code, r.stderr.strip()) == (2, f"error: CASEFLOW_AUDIT_KEY_FILE: the audit key in {short} is "
                                                  f"shorter than 16 bytes")
    monkeypatch.setenv("CASEFLOW_AUDIT_KEY_FILE", str(Path(tmp_path) / "missing.key"))
    assert run("audit", "verify").exit_code == 2
