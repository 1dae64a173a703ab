"""`caseflow import`: many cases from a spreadsheet, each opened exactly as `caseflow open` would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa

from caseflow.catalog import SHIPPED
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.tables import attempts, case_keys, cases

from .conftest import audit_rows

REFUND_HEADER = "order_no,customer_name,contract_amount,amount_paid,work_started\n"
CARD = {"name": "李娜", "id_number": "110101199001011234", "birth_date": "1990-01-01", "phone": "13900000001",
        "tier": "vip"}


def _count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _refusals(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [r.reason for r in conn.execute(sa.select(attempts.c.reason).where(attempts.c.event == "import"))]


def test_a_bad_row_is_refused_with_its_line_and_the_others_are_opened(run, store: Store, engine: Engine,
                                                                    tmp_path: Path) -> None:
    path = tmp_path / "refunds.csv"
    path.write_text(REFUND_HEADER + "D-1,王建国,86000,20000,false\n"
                    "D-2,李四,八万,1,false\n"                       # line 3: not an amount
                    "\n"
                    'D-3,"张三",1000,100,true\n', encoding="utf-8")
    r = run("--as", "wang.fang", "--json", "import", "refund", str(path))
    assert r.exit_code == 1
    assert "error: line 3: contract_amount: '八万' is not an amount" in r.stderr
    report = r.json()
    assert [c["line"] for c in report["cases"]] == [2, 5] and report["refused"] == 1
    assert _count(store, cases) == 2
    assert _refusals(store) == ["line 3: contract_amount: '八万' is not an amount (write e.g. 1200.50)"]
    # audited exactly as a single open: same kinds of rows, same chain
    single = engine.open("refund", "wang.fang", {"order_no": "D-9", "customer_name": "王建国",
                                                 "contract_amount": "86000", "amount_paid": "20000",
                                                 "work_started": "false"})["id"]
    imported = [(a["kind"], a["event"], a["to_state"], a["seq"]) for a in audit_rows(store, report["cases"][0]["id"])]
    assert imported == [(a["kind"], a["event"], a["to_state"], a["seq"]) for a in audit_rows(store, single)]
    assert run("audit", "verify").exit_code == 0


def test_json_lines_are_typed_data_and_a_broken_line_is_refused(run, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "refunds.jsonl"
    good = {"order_no": "D-1", "customer_name": "王建国", "contract_amount": "86000.00", "amount_paid": "20000.00",
            "work_started": False}
    path.write_text(json.dumps(good, ensure_ascii=False) + "\n{not json\n"
                    + json.dumps({**good, "order_no": "D-2", "work_started": "no"}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    r = run("--as", "wang.fang", "import", "refund", str(path))
    assert r.exit_code == 1
    assert "error: line 2: not JSON" in r.stderr
    assert "error: line 3: cannot open refund: data would be invalid: work_started: must be of type boolean" in r.stderr
    assert r.stdout.startswith("opened 1 refund case(s)")
    assert _count(store, cases) == 1


def _cards_taken_at_open(tmp_path: Path) -> Path:
    """A designer's variant of member_card that takes the holder's details (unique id_number) at open.
    The shipped one takes them at issue (processes.md §3), so no unique value is given at open there."""
    d = tmp_path / "workflows"
    shutil.copytree(SHIPPED, d)
    card = d / "member_card.yaml"
    text = card.read_text(encoding="utf-8")
    assert "open_accepts: [name, phone]\n" in text
    card.write_text(text.replace("open_accepts: [name, phone]\n",
                                 "open_accepts: [name, phone, id_number, birth_date, tier]\n"), encoding="utf-8")
    return d


def test_a_unique_value_twice_in_one_file_opens_only_the_first(run, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "cards.jsonl"
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in
                              [CARD, {**CARD, "name": "李娜娜"}, {**CARD, "id_number": "140105198506061111"}])
                    + "\n", encoding="utf-8")
    r = run("--as", "xie.na", "--json", "import", "member_card", str(path), "--batch", "2",
            workflows=_cards_taken_at_open(tmp_path))
    assert r.exit_code == 1
    assert "error: line 2: " in r.stderr and "already belongs to open case" in r.stderr
    report = r.json()
    assert [c["line"] for c in report["cases"]] == [1, 3] and report["batches"] == 2
    assert _count(store, cases) == 2 and _count(store, case_keys) == 2


def test_someone_who_may_not_open_imports_nothing(run, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "refunds.csv"
    path.write_text(REFUND_HEADER + "D-1,王建国,86000,20000,false\n", encoding="utf-8")
    r = run("--as", "tang.liang", "import", "refund", str(path))
    assert r.exit_code == 1 and r.stderr.startswith("error: ") and "none of the roles allowed" in r.stderr
    assert _count(store, cases) == 0
    assert run("--as", "wang.fang", "import", "refund", str(tmp_path / "missing.csv")).exit_code == 2


def test_an_over_long_csv_cell_refuses_its_row_and_keeps_the_others(run, store: Store, tmp_path: Path) -> None:
    """A cell longer than csv's default field limit (131,072) is one refused row, not the end of the import;
    a cell longer than a whole --data file (1 MB) stops the reading there, and the rows before it are kept."""
    path = tmp_path / "refunds.csv"
    path.write_text(REFUND_HEADER + "D-1,王建国,86000,20000,false\n"
                    f"D-2,{'王' * 140_000},86000,20000,false\n"
                    "D-3,张三,1000,100,true\n", encoding="utf-8")
    r = run("--as", "wang.fang", "--json", "import", "refund", str(path))
    assert r.exit_code == 1
    assert "error: line 3: customer_name: value is 140,000 characters; the limit is 10,000" in r.stderr, r.stderr
    assert [c["line"] for c in r.json()["cases"]] == [2, 4]

    huge = tmp_path / "huge.csv"
    huge.write_text(REFUND_HEADER + "D-5,王建国,86000,20000,false\n"
                    f"D-6,{'x' * 1_200_000},86000,20000,false\n"
                    "D-7,张三,1000,100,true\n", encoding="utf-8")
    r = run("--as", "wang.fang", "--json", "import", "refund", str(huge))
    assert r.exit_code == 1
    assert ("error: line 3: a cell is over 1,000,000 characters (the limit); the rest of the file was not read"
            in r.stderr), r.stderr
    assert [c["line"] for c in r.json()["cases"]] == [2]
    assert _count(store, cases) == 3
    assert run("audit", "verify").exit_code == 0
