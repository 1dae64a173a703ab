"""The audit trail an auditor can trust: append-only in the database, tamper-evident,
queryable, exportable, with personal data masked unless an authorised user unmasks.

Tampering tests go around the engine, straight to the tables, the way someone
with database access would: they drop the append-only triggers first and then
edit, delete, insert and reorder rows; `caseflow audit verify` must name each one.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from caseflow.audit.chain import row_hash
from caseflow.audit.verify import verify
from caseflow.errors import TransitionRefused, WrongState
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.tables import audit

from .conftest import audit_rows, snapshot
from .security.tamper import restore_triggers

COMPLAINT = {"form_no": "TS-2025-031", "customer_name": "张三", "phone": "13812345678",
             "address": "上海市浦东新区世纪大道100号", "channel": "phone", "category": "quality",
             "description": "卫生间防水层漏水，回电13812345678", "severity": "normal",
             "received_at": "2025-03-03T09:30"}


def open_complaint(engine: Engine, **extra: str) -> str:
    return engine.open("complaint", "wang.fang", {**COMPLAINT, **extra})["id"]


def complaint_to_implementing(engine: Engine, **extra: str) -> str:
    """受理 → 投诉判断 → 展开调查 → 提出处理方案 → 经理批示 → 实施处理方案: a history of 8+ rows."""
    cid = open_complaint(engine, **extra)
    engine.advance(cid, "assess", "wang.fang")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    engine.advance(cid, "find_cause", "tang.liang", {"root_cause": "防水层施工不规范", "responsible_person": "xu.peng",
                                                     "solution": "返工重做防水"})
    engine.sign(cid, "zheng.hai", note="同意返工")
    return cid


def close_complaint(engine: Engine, cid: str) -> None:
    engine.advance(cid, "customer_accepts", "wang.fang", {"customer_signature": "张三"})
    engine.advance(cid, "assign_responsibility", "zheng.hai", {"responsibility_code": "B1"})
    engine.advance(cid, "decide_penalty", "zheng.hai", {"penalty_decision": "罚款200元", "penalty_fine": "200"})
    engine.advance(cid, "summarize", "zhou.jie", {"summary": "已返工，顾客满意"})


# -- going around the engine ----------------------------------------------------------------

def drop_triggers(store: Store, table: str = "audit") -> None:
    """What an intruder with database access does first."""
    with store.engine.begin() as conn:
        for ddl in store.backend.drop_append_only_ddl(table):
            conn.exec_driver_sql(ddl)


def sql(store: Store, text: str, **params: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(text), params)


def set_seq(store: Store, cid: str, old: int, new: int) -> None:
    sql(store, "UPDATE audit SET seq = :new WHERE case_id = :cid AND seq = :old", cid=cid, old=old, new=new)


def problems(store: Store) -> list[str]:
    restore_triggers(store)          # a careful intruder puts the guards back
    return [str(p) for p in verify(store).problems]


def verify_cli(run: Any, store: Store | None = None) -> tuple[int, list[str]]:
    if store is not None:
        restore_triggers(store)
    r = run("audit", "verify")
    return r.exit_code, [line[2:] for line in r.stdout.splitlines() if line.startswith("✘ ")]


# -- append-only, enforced by the database --------------------------------------------------

@pytest.mark.parametrize("statement", ["UPDATE audit SET note = 'x'", "DELETE FROM audit",
                                       "UPDATE attempts SET reason = 'x'", "DELETE FROM attempts",
                                       "UPDATE checkpoints SET actor = 'x'", "DELETE FROM checkpoints"])
def test_plain_sql_update_and_delete_on_the_log_are_refused_by_the_database(engine, store, run, statement):
    cid = open_complaint(engine)
    with pytest.raises(WrongState):
        engine.advance(cid, "accept", "liu.yang")                       # an attempts row
    assert run("--as", "jiang.wen", "audit", "checkpoint").exit_code == 0
    before = snapshot(store, cid)
    with pytest.raises(sa.exc.DBAPIError) as caught:
        sql(store, statement)
    assert "append-only" in str(caught.value)
    assert snapshot(store, cid) == before
    assert verify(store).ok


# -- verify: intact -------------------------------------------------------------------------

def test_intact_log_verifies_with_exit_0(engine, run):
    cid = complaint_to_implementing(engine)
    close_complaint(engine, cid)
    invalid = open_complaint(engine, form_no="TS-2025-032")
    engine.advance(invalid, "assess", "wang.fang")
    engine.advance(invalid, "reject", "wang.fang", {"assessment_note": "属正常现象"})
    engine.advance(invalid, "close", "wang.fang", {"reply_note": "已电话婉转答复"})
    assert run("--as", "jiang.wen", "audit", "checkpoint").exit_code == 0
    r = run("audit", "verify")
    assert r.exit_code == 0, r.stdout
    assert r.stdout.startswith("ok: audit log intact — ")
    body = run("--json", "audit", "verify").json()
    assert body["ok"] is True and body["problems"] == [] and body["checkpoints"] == 1
    assert body["cases"] >= 4                 # two complaints plus their self-review / follow-up cases


# -- verify: tampered rows ------------------------------------------------------------------

def test_verify_names_an_edited_row(engine, store, run):
    cid = complaint_to_implementing(engine)
    drop_triggers(store)
    sql(store, "UPDATE audit SET actor = 'li.qiang' WHERE case_id = :cid AND seq = 3", cid=cid)
    code, lines = verify_cli(run, store)
    assert code == 1
    assert lines == [f"{cid}: row 3 edited (hash mismatch)"]


def test_verify_names_a_row_rewritten_with_a_recomputed_hash(engine, store):
    cid = complaint_to_implementing(engine)
    row = audit_rows(store, cid)[2]
    forged = {**row, "note": "顾客同意撤诉"}
    drop_triggers(store)
    sql(store, "UPDATE audit SET note = :note, hash = :h WHERE id = :id", note=forged["note"],
        h=row_hash(forged), id=row["id"])
    assert problems(store) == [f"{cid}: row 3 rewritten (its hash was recomputed, but row 4 still links to "
                               f"the original), or row 4 forged"]


def test_verify_names_a_deleted_row(engine, store, run):
    cid = complaint_to_implementing(engine)
    drop_triggers(store)
    sql(store, "DELETE FROM audit WHERE case_id = :cid AND seq = 4", cid=cid)
    code, lines = verify_cli(run, store)
    assert code == 1
    assert lines == [f"{cid}: row 4 missing (seq gap 3→5)"]


def test_verify_names_the_deleted_first_rows(engine, store):
    cid = complaint_to_implementing(engine)
    drop_triggers(store)
    sql(store, "DELETE FROM audit WHERE case_id = :cid AND seq <= 2", cid=cid)
    assert problems(store) == [f"{cid}: rows 1–2 missing (history starts at seq 3)"]


def test_verify_names_an_inserted_row(engine, store, run):
    cid = complaint_to_implementing(engine)
    rows = audit_rows(store, cid)
    drop_triggers(store)
    for seq in range(len(rows), 2, -1):              # make room at seq 3, one row at a time
        set_seq(store, cid, seq, seq + 1)
    fake = {k: v for k, v in rows[2].items() if k not in ("id", "hash")}
    fake.update(seq=3, kind="transition", event="reject", note="投诉不成立", prev_hash=rows[1]["hash"])
    fake["hash"] = row_hash(fake)
    with store.engine.begin() as conn:
        conn.execute(audit.insert().values(**fake))
    code, lines = verify_cli(run, store)
    assert code == 1
    assert f"{cid}: row 3 inserted (row 4 links past it to row 2)" in lines
    assert f"{cid}: row 4 was row 3 (renumbered: a row was inserted before it)" in lines


def test_verify_names_reordered_rows(engine, store, run):
    cid = complaint_to_implementing(engine)
    drop_triggers(store)
    set_seq(store, cid, 2, -2)
    set_seq(store, cid, 3, 2)
    set_seq(store, cid, -2, 3)
    code, lines = verify_cli(run, store)
    assert code == 1
    assert lines == [f"{cid}: rows reordered (row 2 was row 3, row 3 was row 2)"]


def test_verify_names_a_whole_history_deleted_since_the_checkpoint(engine, store, run):
    cid = complaint_to_implementing(engine)
    other = open_complaint(engine, form_no="TS-2025-040")
    assert run("--as", "jiang.wen", "audit", "checkpoint").exit_code == 0
    drop_triggers(store)
    sql(store, "DELETE FROM audit WHERE case_id = :cid", cid=cid)
    sql(store, "DELETE FROM cases WHERE id = :cid", cid=cid)      # and hide the case itself
    code, lines = verify_cli(run, store)
    assert code == 1
    assert lines == [f"{cid}: case {cid} history deleted since checkpoint 1",
                     f"{cid}: the work queues hold case {cid}, which has no case row"]     # its rows left behind
    assert other not in " ".join(lines)


def test_verify_without_checkpoint_still_sees_a_case_without_history(engine, store):
    cid = open_complaint(engine)
    drop_triggers(store)
    sql(store, "DELETE FROM audit WHERE case_id = :cid", cid=cid)
    assert problems(store) == [f"{cid}: case {cid} has no audit history"]


def test_verify_names_a_truncated_tail_since_the_checkpoint(engine, store, run):
    cid = complaint_to_implementing(engine)
    n = len(audit_rows(store, cid))
    assert run("audit", "checkpoint").exit_code == 0
    drop_triggers(store)
    sql(store, "DELETE FROM audit WHERE case_id = :cid AND seq > :keep", cid=cid, keep=n - 2)
    found = problems(store)
    assert f"{cid}: history truncated since checkpoint 1: rows {n - 1}–{n} missing" in found


def test_verify_sees_a_case_row_that_disagrees_with_its_history(engine, store):
    cid = complaint_to_implementing(engine)
    sql(store, "UPDATE cases SET state = 'closed' WHERE id = :cid", cid=cid)     # cases is not append-only
    assert problems(store) == [next(
        f"{cid}: case is in state 'closed' but its history ends in 'implementing' (row {r['seq']}): "
        f"the case row or the log's tail was changed"
        for r in reversed(audit_rows(store, cid)) if r["to_state"] == "implementing")]


def test_verify_sees_history_whose_case_row_was_deleted(engine, store):
    cid = open_complaint(engine)
    sql(store, "DELETE FROM cases WHERE id = :cid", cid=cid)
    assert problems(store) == [f"{cid}: audit history of case {cid} has no case row (case row deleted)"]


def test_verify_names_edited_and_deleted_attempts(engine, store):
    cid = open_complaint(engine)
    for who in ("liu.yang", "zhou.jie", "huang.lei"):           # three refused attempts
        with pytest.raises(WrongState):
            engine.advance(cid, "accept", who)
    drop_triggers(store, "attempts")
    sql(store, "UPDATE attempts SET actor = 'wang.fang' WHERE id = 1")
    sql(store, "DELETE FROM attempts WHERE id = 2")
    assert problems(store) == ["attempts: attempt 1 edited (hash mismatch)",
                               "attempts: attempt 3 does not link to the one before it: attempts deleted "
                               "after attempt 1, or attempt 3 forged"]


def test_verify_sees_an_edited_checkpoint_and_an_unknown_expected_digest(engine, store, run):
    open_complaint(engine)
    digest = run("--json", "audit", "checkpoint").json()["digest"]
    assert run("audit", "verify", "--expect", digest).exit_code == 0
    drop_triggers(store, "checkpoints")
    sql(store, "UPDATE checkpoints SET heads = '{}' WHERE id = 1")
    assert problems(store) == ["checkpoints: checkpoint 1 does not verify: it was edited, or an earlier "
                               "checkpoint was deleted"]
    r = run("audit", "verify", "--expect", "ab" * 32)
    assert r.exit_code == 1
    assert "✘ checkpoints: no checkpoint has digest abababababababab…: the checkpoint chain was rewritten, " \
           "or the digest is from another database" in r.stdout


def test_checkpoints_are_chained(engine, store, run):
    open_complaint(engine)
    first = run("--json", "--as", "jiang.wen", "audit", "checkpoint").json()
    second = run("--json", "--as", "wei.hua", "audit", "checkpoint").json()
    assert second["prev"] == first["digest"] and second["id"] == first["id"] + 1
    drop_triggers(store, "checkpoints")
    sql(store, "DELETE FROM checkpoints WHERE id = 1")
    assert problems(store) == ["checkpoints: checkpoint 2 does not verify: it was edited, or an earlier "
                               "checkpoint was deleted (checkpoint id gap 0→2)"]


# -- query and export -----------------------------------------------------------------------

def test_audit_filters_by_case_actor_event_and_time(engine, run, clock):
    a = complaint_to_implementing(engine)
    clock.advance(days=3)
    b = open_complaint(engine, form_no="TS-2025-050")
    engine.advance(b, "assess", "chen.jing")
    rows = run("audit", "--case", b, "--format", "json").json()
    assert {r["case_id"] for r in rows} == {b} and [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["event"] for r in run("audit", "--actor", "chen.jing", "--format", "json").json()] == ["assess"]
    accepts = run("audit", "--event", "accept", "--workflow", "complaint", "--format", "json").json()
    assert [(r["case_id"], r["from_zh"], r["to_zh"]) for r in accepts] == [(a, "投诉判断", "展开调查")]
    since = run("audit", "--since", "2025-03-05", "--format", "json").json()
    assert {r["case_id"] for r in since} == {b}
    until = run("audit", "--until", "2025-03-03", "--workflow", "complaint", "--format", "json").json()
    assert {r["case_id"] for r in until} == {a}                        # a bare date includes that day
    lines = run("audit", "--case", a, "--format", "jsonl").stdout.splitlines()
    assert [json.loads(x)["seq"] for x in lines] == list(range(1, len(lines) + 1))


def test_audit_table_has_chinese_labels_and_attempts_are_listed(engine, run):
    cid = complaint_to_implementing(engine)
    with pytest.raises(TransitionRefused):
        engine.advance(cid, "customer_accepts", "cao.ying")
    table = run("audit", "--case", cid).stdout
    assert "案件" in table and "投诉成立，转责任部门" in table and "投诉判断→展开调查" in table
    assert "王芳(wang.fang)" in table
    tried = run("audit", "--attempts", "--format", "json").json()
    assert [(t["case_id"], t["actor"], t["error"]) for t in tried] == [(cid, "cao.ying", "RoleNotAllowed")]


def test_listing_options_do_not_apply_to_subcommands(engine, run):
    r = run("audit", "--case", "COM-1", "verify")
    assert (r.exit_code, r.stderr.strip()) == (
        2, "error: --case is an option of the listing; it does not apply to `caseflow audit verify`")


def test_audit_of_an_unknown_case_is_not_found(engine, run):
    r = run("audit", "--case", "COM-NOPE")
    assert (r.exit_code, r.stderr.strip()) == (4, "error: case 'COM-NOPE' not found")


def test_csv_export_round_trips_json_fields_and_chinese_text(engine, store, run):
    cid = complaint_to_implementing(engine, description="墙面开裂，“急”")
    r = run("--as", "jiang.wen", "audit", "--case", cid, "--format", "csv", "--unmask")
    assert r.exit_code == 0, r.stderr
    exported = list(csv.DictReader(io.StringIO(r.stdout)))
    stored = audit_rows(store, cid)[:-1]                     # the last row records this very unmasking
    assert [int(x["seq"]) for x in exported] == [s["seq"] for s in stored]
    for x, s in zip(exported, stored):
        assert json.loads(x["changes"]) == json.loads(s["changes"])
        assert json.loads(x["roles"]) == json.loads(s["roles"])
        assert (x["note"] or None) == s["note"] and x["hash"] == s["hash"]
    assert json.loads(exported[0]["changes"])["description"] == [None, "墙面开裂，“急”"]
    assert exported[0]["event_zh"] == "立案" and exported[0]["to_zh"] == "受理"


def test_csv_bom_option_for_spreadsheets(engine, run, tmp_path):
    cid = open_complaint(engine)
    plain = run("audit", "--case", cid, "--format", "csv")
    assert not plain.stdout.startswith("\ufeff") and plain.stdout.startswith("id,case_id,seq,")
    out = tmp_path / "审计.csv"
    r = run("audit", "--case", cid, "--format", "csv", "--bom", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["case_id"] == cid and rows[0]["event_zh"] == "立案"
    bad = run("audit", "--format", "json", "--bom")
    assert (bad.exit_code, bad.stderr.strip()) == (2, "error: --bom applies to --format csv only")


# -- personal data --------------------------------------------------------------------------

def test_personal_data_is_masked_in_every_format(engine, run):
    cid = complaint_to_implementing(engine)
    close_complaint(engine, cid)
    for fmt in ("table", "json", "jsonl", "csv"):
        out = run("audit", "--format", fmt).stdout
        assert "13812345678" not in out and "张三" not in out and "世纪大道100号" not in out, fmt
        assert fmt == "table" or "138****5678" in out, fmt          # the table clips long cells
    first = run("audit", "--case", cid, "--format", "json").json()[0]
    assert first["changes"]["customer_name"] == [None, "张*"]
    assert first["changes"]["phone"] == [None, "138****5678"]
    assert first["changes"]["address"] == [None, "上海市浦东新****"]
    assert first["changes"]["description"] == [None, "卫生间防水层漏水，回电138****5678"]   # free text too


def test_unauthorised_unmask_is_refused_and_recorded(engine, store, run):
    cid = complaint_to_implementing(engine)
    before = snapshot(store, cid)
    r = run("--as", "wang.fang", "audit", "--case", cid, "--unmask")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.strip() == ("error: wang.fang may not see personal data unmasked: no role with can_unmask "
                                "in org.yaml (holds: 客服专员(cs_agent))")
    assert snapshot(store, cid) == before
    tried = run("audit", "--attempts", "--format", "json").json()
    assert [(t["actor"], t["event"], t["error"]) for t in tried] == [("wang.fang", "unmask", "NotPermitted")]
    anonymous = run("--as", "", "audit", "--unmask")
    assert (anonymous.exit_code, anonymous.stderr.strip()) == (
        1, "error: no user given: pass --as USER or set CASEFLOW_USER")


def test_authorised_unmask_shows_personal_data_and_logs_one_row_per_case_shown(engine, store, run):
    a = complaint_to_implementing(engine)
    b = open_complaint(engine, form_no="TS-2025-060", phone="13900001111")
    before_a, before_b = len(audit_rows(store, a)), len(audit_rows(store, b))
    r = run("--as", "jiang.wen", "audit", "--workflow", "complaint", "--unmask", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert "13812345678" in r.stdout and "13900001111" in r.stdout
    for cid, n in ((a, before_a), (b, before_b)):
        rows = audit_rows(store, cid)
        assert len(rows) == n + 1
        last = rows[-1]
        assert (last["kind"], last["actor"], last["note"]) == (
            "unmask", "jiang.wen", "personal data shown unmasked (caseflow audit --format json)")
        assert last["to_state"] == engine.read_case(cid).state
    # nothing personal in the rows shown: nothing to log
    run("--as", "jiang.wen", "audit", "--event", "assess", "--unmask", "--format", "json")
    assert len(audit_rows(store, a)) == before_a + 1
    assert verify(store).ok


# -- the chain itself, for any history ------------------------------------------------------

def _chain(notes: list[str]) -> list[dict[str, Any]]:
    """A case's rows as `audit.append` would write them."""
    from caseflow.audit.chain import GENESIS
    rows, prev = [], GENESIS
    for seq, note in enumerate(notes, 1):
        row = {"case_id": "COM-PROP", "seq": seq, "workflow": "complaint", "definition": "d" * 64,
               "kind": "transition", "event": "revise", "from_state": "proposing", "to_state": "proposing",
               "actor": "zheng.hai", "roles": '["cs_manager"]', "changes": "{}", "note": note,
               "effective_at": "2025-03-03T02:00:00Z", "recorded_at": "2025-03-03T02:00:01Z", "prev_hash": prev}
        row["hash"] = prev = row_hash(row)
        rows.append(row)
    return rows


notes = st.lists(st.text(min_size=1, max_size=12), min_size=3, max_size=12)


@given(notes=notes, data=st.data())
def test_any_edit_to_any_row_is_named(notes, data):
    from caseflow.audit.verify import check_case
    rows = _chain(notes)
    i = data.draw(st.integers(0, len(rows) - 1))
    field = data.draw(st.sampled_from(["note", "actor", "to_state", "changes", "effective_at"]))
    new = data.draw(st.text(min_size=1, max_size=8).filter(lambda v: v != rows[i][field]))
    rows[i] = {**rows[i], field: new}
    assert [p.message for p in check_case("COM-PROP", rows)] == [f"row {i + 1} edited (hash mismatch)"]


@given(notes=notes, data=st.data())
def test_any_deleted_inner_row_is_named(notes, data):
    from caseflow.audit.verify import check_case
    rows = _chain(notes)
    i = data.draw(st.integers(1, len(rows) - 2))
    del rows[i]
    assert [p.message for p in check_case("COM-PROP", rows)] == [f"row {i + 1} missing (seq gap {i}→{i + 2})"]


@given(notes=notes, data=st.data())
def test_any_swap_of_two_rows_is_named(notes, data):
    from caseflow.audit.verify import check_case
    rows = _chain(notes)
    i, j = sorted(data.draw(st.lists(st.integers(0, len(rows) - 1), min_size=2, max_size=2, unique=True)))
    rows[i], rows[j] = {**rows[j], "seq": i + 1}, {**rows[i], "seq": j + 1}
    assert [p.message for p in check_case("COM-PROP", rows)] == [
        f"rows reordered (row {i + 1} was row {j + 1}, row {j + 1} was row {i + 1})"]


@given(notes=notes)
def test_an_untouched_chain_verifies(notes):
    from caseflow.audit.verify import check_case
    assert check_case("COM-PROP", _chain(notes)) == []


@given(notes=notes, data=st.data())
def test_any_row_inserted_into_the_chain_is_named(notes, data):
    from caseflow.audit.verify import check_case
    rows = _chain(notes)
    i = data.draw(st.integers(0, len(rows) - 1))             # the forged row becomes row i + 1
    forged = {**rows[i], "note": "伪造", "prev_hash": rows[i - 1]["hash"] if i else rows[0]["prev_hash"]}
    forged["hash"] = row_hash(forged)
    rows = rows[:i] + [forged] + [{**r, "seq": r["seq"] + 1} for r in rows[i:]]
    found = [p.message for p in check_case("COM-PROP", rows)]
    to = f"row {i}" if i else "the start of the chain"
    assert f"row {i + 1} inserted (row {i + 2} links past it to {to})" in found
    assert all("inserted" in m or "renumbered: a row was inserted before it" in m for m in found)


@given(notes=notes, data=st.data())
def test_a_row_inserted_with_a_used_seq_is_named(notes, data):
    from caseflow.audit.verify import check_case
    rows = _chain(notes)
    i = data.draw(st.integers(0, len(rows) - 1))
    forged = {**rows[i], "note": rows[i]["note"] + "（改）"}
    forged["hash"] = row_hash(forged)
    rows.insert(i + 1, forged)                    # possible once the unique constraint is dropped too
    assert f"row {i + 1} appears twice (a row was inserted with a used seq)" in [
        p.message for p in check_case("COM-PROP", rows)]
