"""Money, sizes, `--data` files and years: hostile values get one line and change nothing (issue #14, Input).

Each attack of the issue's Input paragraph runs through the CLI on SQLite and
PostgreSQL; the figures at the end of the run count them (security:
inputs_tried / inputs_handled, hostile.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from caseflow.store.tables import attempts, audit, cases
from caseflow.values import STRING_MAX, ValueProblem, parse_money

from ..conftest import case_row, snapshot
from .hostile import expect, handled

REFUND = ("--set", "order_no=D1", "--set", "customer_name=王建国", "--set", "amount_paid=100.00",
          "--set", "work_started=false")
COMMA = "a comma only separates thousands, as in 1,200.50; write decimals with a point: 12.50"


def _count(store, table) -> int:  # noqa: ANN001
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _reasons(store) -> list[str]:  # noqa: ANN001
    with store.engine.connect() as conn:
        return [r.reason for r in conn.execute(sa.select(attempts.c.reason).order_by(attempts.c.id))]


def _open_refund(run, amount: str, *more: str):  # noqa: ANN001, ANN202
    return run("--as", "wang.fang", "--json", "open", "refund", *REFUND, "--set", f"contract_amount={amount}", *more)


# -- money -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, stored", [
    ("1,000.50", "1000.50"), ("1,234,567.89", "1234567.89"), ("１２３", "123.00"), ("１,２３４．５", "1234.50"),
    ("-0", "0.00"), ("-0.00", "0.00"), ("12", "12.00"), (" 8.5 ", "8.50")])
def test_money_takes_digits_one_point_and_thousands_commas(text, stored):
    assert handled(str(parse_money(text)) == stored)


@pytest.mark.parametrize("text", ["12,50", "1,2,3", "𝟏𝟐𝟑", "١٢٣", "1,00.5", "1.000,50", "1,000,00", "12.", ".5",
                                  "1e3", "1_000", "+5", "--5", "1.2.3", "NaN", "Infinity"])
def test_money_refuses_anything_else_in_one_line(text):
    with pytest.raises(ValueProblem) as refused:
        parse_money(text)
    assert handled("\n" not in str(refused.value) and "is not an amount" in str(refused.value))


@pytest.mark.parametrize("amount", ["12,50", "1,2,3", "𝟏𝟐𝟑"])
def test_a_decimal_comma_or_odd_digits_on_the_command_line_change_nothing(run, store, amount):
    r = _open_refund(run, amount)
    hint = COMMA if "," in amount else "write e.g. 1200.50"
    expect(r, 2, f"error: --set contract_amount: {amount!r} is not an amount ({hint})\n")
    assert _count(store, cases) == 0
    assert _reasons(store) == [f"--set contract_amount: {amount!r} is not an amount ({hint})"]


def test_thousands_commas_and_negative_zero_are_stored_as_plain_amounts(run, store):
    r = run("--as", "wang.fang", "--json", "open", "refund", "--set", "order_no=D1", "--set", "customer_name=王",
            "--set", "contract_amount=1,000.50", "--set", "amount_paid=-0.00", "--set", "work_started=false")
    assert r.exit_code == 0, r.stderr
    data = json.loads(case_row(store, r.json()["id"])["data"])
    assert handled((data["contract_amount"], data["amount_paid"]) == ("1000.50", "0.00"))


def _data(tmp_path: Path, value: object, name: str = "d.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


REFUND_DATA = {"order_no": "D1", "customer_name": "王建国", "amount_paid": "100.00", "work_started": False}


def test_data_files_follow_the_same_money_rule(run, store, tmp_path):
    ok = _data(tmp_path, {**REFUND_DATA, "contract_amount": "1,000.50", "amount_paid": "-0"})
    r = run("--as", "wang.fang", "--json", "open", "refund", "--data", str(ok))
    assert r.exit_code == 0, r.stderr
    data = json.loads(case_row(store, r.json()["id"])["data"])
    assert handled((data["contract_amount"], data["amount_paid"]) == ("1000.50", "0.00"))
    bad = _data(tmp_path, {**REFUND_DATA, "contract_amount": "12,50"}, "bad.json")
    expect(run("--as", "wang.fang", "open", "refund", "--data", str(bad)), 2,
           f"error: --data contract_amount: '12,50' is not an amount ({COMMA})\n")
    assert _count(store, cases) == 1


def test_import_rows_follow_the_same_money_rule(run, store, tmp_path):
    path = tmp_path / "refunds.jsonl"
    path.write_text(json.dumps({**REFUND_DATA, "contract_amount": "1,000.50"}) + "\n"
                    + json.dumps({**REFUND_DATA, "order_no": "D2", "contract_amount": "12,50"}) + "\n",
                    encoding="utf-8")
    r = run("--as", "wang.fang", "import", "refund", str(path))
    expect(r, 1, f"error: line 2: contract_amount: '12,50' is not an amount ({COMMA})\n")
    with store.engine.connect() as conn:
        stored = [json.loads(d)["contract_amount"] for d in conn.execute(sa.select(cases.c.data)).scalars()]
    assert stored == ["1000.50"]
    csv = tmp_path / "refunds.csv"
    csv.write_text("order_no,customer_name,contract_amount,amount_paid,work_started\n"
                   'D3,王,"2,000.00",-0,false\nD4,王,"1,2,3",1,false\n', encoding="utf-8")
    r = run("--as", "wang.fang", "import", "refund", str(csv))
    expect(r, 1, f"error: line 3: contract_amount: '1,2,3' is not an amount ({COMMA})\n")


# -- sizes -----------------------------------------------------------------------------------------

def test_a_note_over_the_text_limit_is_refused_and_recorded(run, store):
    r = _open_refund(run, "1", "--note", "x" * 120_000)
    expect(r, 2, f"error: --note is 120,000 characters; the limit is {STRING_MAX:,}\n")
    assert _count(store, cases) == 0
    assert _reasons(store) == [f"--note is 120,000 characters; the limit is {STRING_MAX:,}"]


def test_a_note_over_the_limit_on_advance_and_sign_changes_nothing(run, store):
    from ..conftest import snapshot
    cid = _open_refund(run, "1").json()["id"]
    before = snapshot(store, cid)
    expect(run("--as", "wang.fang", "advance", cid, "start_before_work", "--note", "长" * 10_001), 2,
           "error: --note is 10,001 characters; the limit is 10,000\n")
    assert snapshot(store, cid) == before


def test_a_field_value_over_the_text_limit_is_refused(run, store):
    expect(run("--as", "wang.fang", "open", "refund", "--set", "order_no=" + "x" * 100_000, "--set",
               "customer_name=王", "--set", "contract_amount=1", "--set", "amount_paid=1", "--set",
               "work_started=false"), 2, f"error: --set order_no: value is 100,000 characters; the limit is "
                                         f"{STRING_MAX:,}\n")
    assert _count(store, cases) == 0


def _refused_file(run, store, path: Path, why: str) -> None:  # noqa: ANN001
    expect(run("--as", "wang.fang", "open", "refund", "--data", str(path)), 2, f"error: --data {path}: {why}\n")
    assert _count(store, cases) == 0
    assert _reasons(store)[-1] == f"--data {path}: {why}"       # an open refused: recorded as an attempt


def test_data_files_too_deep_duplicated_or_too_large_are_refused(run, store, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    _refused_file(run, store, deep, "nesting deeper than 64 levels")
    deep_object = tmp_path / "deep_object.json"
    deep_object.write_text('{"order_no": ' + '{"a": ' * 65 + "1" + "}" * 66)
    _refused_file(run, store, deep_object, "nesting deeper than 64 levels")
    duplicate = tmp_path / "dup.json"
    duplicate.write_text('{"order_no": "a", "order_no": "b"}')
    _refused_file(run, store, duplicate, "duplicate key 'order_no' (JSON keeps only the last; give each field once)")
    long_text = _data(tmp_path, {**REFUND_DATA, "order_no": "x" * (STRING_MAX + 1)}, "long.json")
    _refused_file(run, store, long_text, f"order_no is {STRING_MAX + 1:,} characters; the limit is {STRING_MAX:,}")
    huge = tmp_path / "huge.json"
    with huge.open("w") as f:
        f.write('{"order_no": "' + "x" * 100_000_000 + '"}')       # the issue's 100 MB string
    _refused_file(run, store, huge, "file is over 1,000,000 bytes (the limit)")


def test_data_files_that_are_not_regular_files_are_refused_without_waiting(run, store, tmp_path):
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    _refused_file(run, store, zero, "not a regular file (a device)")
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    _refused_file(run, store, fifo, "not a regular file (a FIFO)")


def test_a_json_lines_row_over_the_size_limit_is_refused_and_the_next_row_opens(run, store, tmp_path):
    path = tmp_path / "rows.jsonl"
    with path.open("w", encoding="utf-8") as f:
        f.write('{"order_no": "' + "x" * 3_000_000 + '"}\n')
        f.write("[" * 100 + "]" * 100 + "\n")
        f.write('{"order_no": "a", "order_no": "b"}\n')
        f.write(json.dumps({**REFUND_DATA, "contract_amount": "5.00"}) + "\n")
    r = run("--as", "wang.fang", "--json", "import", "refund", str(path))
    assert r.exit_code == 1
    assert handled([x["message"] for x in r.json()["refusals"]] == [
        "the line is over 1,000,000 characters (the limit)", "nesting deeper than 64 levels",
        "duplicate key 'order_no' (JSON keeps only the last; give each field once)"])
    assert [x["line"] for x in r.json()["cases"]] == [4]


# -- years and zones -------------------------------------------------------------------------------

ISSUE = ("--set", "id_number=110101199001011234", "--set", "tier=vip", "--set", "member_id=M-1",
         "--set", "card_no=C-1", "--set", "same_day_cash=300", "--set", "in_person=true")


@pytest.mark.parametrize("birth", ["3000-01-01", "0999-12-31", "0001-01-01"])
def test_a_date_outside_the_supported_years_exits_2_naming_the_field_not_the_value(run, store, birth):
    opened = run("--as", "xie.na", "--json", "open", "member_card", "--set", "name=李娜", "--set", "phone=13900000001")
    cid = opened.json()["id"]
    before = case_row(store, cid)
    r = run("--as", "xie.na", "advance", cid, "issue", *ISSUE, "--set", f"birth_date={birth}")   # given at issue
    expect(r, 2, "error: --set birth_date: the value is outside the years 1900–2999\n")
    assert birth not in r.stderr and case_row(store, cid) == before


@pytest.mark.parametrize("received", ["9999-12-31T23:00", "0001-01-01T00:00"])
def test_a_time_outside_the_supported_years_exits_2(run, store, received, tmp_path):
    r = run("--as", "wang.fang", "--json", "audit", "--since", received)
    expect(r, 2, f"error: --since: {received!r} is outside the years 1900–2999\n")
    data = _data(tmp_path, {"form_no": "T1", "customer_name": "张", "phone": "1", "address": "x", "channel": "phone",
                            "category": "quality", "description": "d", "severity": "normal",
                            "received_at": received + ":00Z"})
    expect(run("--as", "wang.fang", "open", "complaint", "--data", str(data)), 2,
           f"error: --data received_at: {received + ':00Z'!r} is outside the years 1900–2999\n")
    assert _count(store, cases) == 0


def test_a_time_without_offset_in_a_data_file_is_read_in_the_workflows_zone(run, store, tmp_path):
    data = _data(tmp_path, {"form_no": "T1", "customer_name": "张", "phone": "1", "address": "x", "channel": "phone",
                            "category": "quality", "description": "d", "severity": "normal",
                            "received_at": "2025-03-03T09:00"})
    r = run("--as", "wang.fang", "--json", "open", "complaint", "--data", str(data))
    assert r.exit_code == 0, r.stderr
    stored = json.loads(case_row(store, r.json()["id"])["data"])["received_at"]
    assert handled(stored == "2025-03-03T01:00:00.000Z")         # 09:00 in Shanghai, as --set reads it


# -- lengths: the same limits on SQLite and PostgreSQL ----------------------------------------------

def test_a_unique_value_longer_than_its_key_column_is_refused_on_both_backends(run, store):
    cid = run("--as", "xie.na", "--json", "open", "member_card", "--set", "name=李娜",
              "--set", "phone=13900000001").json()["id"]
    before = snapshot(store, cid)
    issue = [a for pair in zip(ISSUE[::2], ISSUE[1::2]) if not pair[1].startswith("id_number=") for a in pair]
    r = run("--as", "xie.na", "advance", cid, "issue", *issue, "--set", "birth_date=1990-01-01",
            "--set", "id_number=" + "1" * 600)                                      # given at issue
    why = "id_number is 600 characters; a unique field holds at most 512"
    expect(r, 1, starts="error: ")
    assert r.stderr.rstrip().endswith(why) and "1" * 600 not in r.stderr
    assert snapshot(store, cid) == before and _reasons(store)[-1].endswith(why)


def test_an_unknown_user_id_of_any_length_is_one_refusal_on_both_backends(run, store):
    expect(run("--as", "u" * 70, "list"), 1, f"error: unknown user {'u' * 64!r}… (70 characters): not in org.yaml\n")
    assert len(_reasons(store)) == 1


def test_a_now_without_offset_is_read_in_the_workflows_zone(run, store):
    r = run("--as", "wang.fang", "--json", "--now", "2025-03-03T10:00", "open", "refund", *REFUND,
            "--set", "contract_amount=1")
    assert r.exit_code == 0, r.stderr
    assert handled(case_row(store, r.json()["id"])["created_at"] == "2025-03-03T02:00:00.000Z")   # 10:00 Shanghai


@pytest.mark.parametrize("raw, why", [("[" * 5000 + "]" * 5000, "nesting deeper than 64 levels"),
                                      ('{"a": 1, "a": 2}', "duplicate key 'a' (JSON keeps only the last; give "
                                                           "each field once)")])
def test_a_typed_json_value_is_checked_like_a_data_file(raw, why):
    from zoneinfo import ZoneInfo

    from caseflow.values import parse_input
    with pytest.raises(ValueProblem) as refused:
        parse_input(raw, {"type": "object" if raw.startswith("{") else "array"}, ZoneInfo("Asia/Shanghai"))
    assert handled(str(refused.value) == why)


@pytest.mark.parametrize("args", [("show", "{id}"), ("history", "{id}"), ("advance", "{id}", "explain"),
                                  ("sign", "{id}"), ("claim", "{id}"), ("assign", "{id}", "lin.xiao"),
                                  ("list", "--assignee", "{user}"), ("--as", "{user}", "inbox")])
def test_an_over_long_case_id_or_user_is_not_found_in_one_short_line(run, store, args) -> None:  # noqa: ANN001
    """A 5,000-character case id or user id is looked up like any other (not found, exit 4 / unknown user,
    exit 1) on both backends, and the line names it cut to 64 characters with its length."""
    long_id, long_user = "R" * 5000, "u" * 5000
    before = _count(store, cases), _count(store, audit)
    r = run(*[a.format(id=long_id, user=long_user) for a in args])
    if "{id}" in args:
        expect(r, 4, f"error: case {'R' * 64!r}… (5,000 characters) not found\n")
    else:
        expect(r, 1, f"error: unknown user {'u' * 64!r}… (5,000 characters): not in org.yaml\n")
    assert (_count(store, cases), _count(store, audit)) == before
