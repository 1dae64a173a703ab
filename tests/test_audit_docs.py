"""docs/audit.md is the contract of the audit record (#15).

- every row kind the engine writes has a Chinese label, in the code and in the docs;
- every column of every export (read from the real outputs) is listed in its section;
- the outside verifier printed in the docs, run as it is (stdlib only, no caseflow),
  agrees with `caseflow audit verify` on a clean and a tampered database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import sqlalchemy as sa

from caseflow.audit.query import KIND_ZH
from tests.helpers import refund_to_signing, sign_all
from tests.test_audit import drop_triggers, sql

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text under a heading that starts with `title`, up to the next heading of its level or above."""
    m = re.search(rf"^(#+) {re.escape(title)}.*$", DOC, flags=re.M)
    assert m, f"docs/audit.md has no section {title!r}"
    level = len(m.group(1))
    rest = DOC[m.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.M)
    return rest[:end.start()] if end else rest


def documented(title: str) -> set[str]:
    """First-column names of the section's table rows."""
    return set(re.findall(r"^\| `([^`]+)`", section(title), flags=re.M))


def written_kinds() -> set[str]:
    """Kinds the engine writes: Entry("<kind>", …) literals, plus the kinds passed through variables."""
    found = set()
    for path in (ROOT / "engine").rglob("*.py"):
        found |= set(re.findall(r'Entry\(\s*"([a-z_]+)"', path.read_text(encoding="utf-8")))
    return found | {"transition", "signoff", "reject", "sla", "timer"}     # commit's `kind`, clock.kind


def test_every_row_kind_has_a_chinese_label_in_the_code_and_the_docs():
    kinds = written_kinds()
    assert kinds <= set(KIND_ZH), f"kinds without a Chinese label: {sorted(kinds - set(KIND_ZH))}"
    table = dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]+?) \|", section("Row kinds"), flags=re.M))
    assert table == KIND_ZH
    assert KIND_ZH["sla_warning"] == "时限预警"


def _header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_every_column_of_every_export_is_documented(engine, run, tmp_path):
    cid = refund_to_signing(engine)
    sign_all(engine, cid)
    engine.sign(refund_to_signing(engine), "lin.xiao", reject=True, note="重填")
    run("--as", "wang.fang", "advance", cid, "pay")                       # refused: an attempts row
    me = ("--as", "jiang.wen")
    outputs = {
        "`caseflow audit`": _header(run("audit", "--format", "csv").stdout),
        "`caseflow audit --attempts`": _header(run("audit", "--attempts", "--format", "csv").stdout),
        "`caseflow report sla`": _header(run("report", "sla", "--format", "csv").stdout),
        "`caseflow report signoffs --format csv`": _header(run("report", "signoffs", "--format", "csv").stdout),
        "`caseflow report complaints --format csv`":
            _header(run("report", "complaints", "--month", "2025-03", "--format", "csv").stdout),
        "`--format csv`": _header(run(*me, "export", "--format", "csv", "--unmask").stdout),
    }
    outputs["`caseflow audit`"] += _header(run(*me, "audit", "--format", "csv", "--unmask").stdout)
    for title, cols in outputs.items():
        missing = set(cols) - documented(title)
        assert not missing, f"docs/audit.md, {title}: columns not documented: {sorted(missing)}"

    xes = ET.fromstring(run(*me, "export", "--format", "xes", "--unmask").stdout.encode("utf-8"))
    keys = {el.get("key") for el in xes.iter() if el.get("key") and not el.tag.endswith("global")}
    listed = documented("`--format xes`")
    fields = {k for k in keys if k.startswith("caseflow:")} - listed
    assert keys - listed - fields == set()
    assert {k[9:] for k in fields} <= documented("`--format csv`"), "caseflow:<field> must be a record field"

    ocel = json.loads(run(*me, "export", "--format", "ocel", "--unmask").stdout)
    objects = section("`--format ocel`")
    for t in ocel["objectTypes"]:
        assert f"`{t['name']}`" in objects, f"object type {t['name']} not documented"
        assert all(f"`{a['name']}`" in objects for a in t["attributes"]), t
    event_attrs = {a["name"] for t in ocel["eventTypes"] for a in t["attributes"]}
    assert event_attrs - {"label_zh", "role"} <= documented("`--format csv`")


# -- the outside verifier -------------------------------------------------------------------

def _verifier(tmp_path: Path) -> Path:
    block = re.search(r"```python\n(.*?)```", section("Outside verifier"), flags=re.S)
    assert block
    code = block.group(1)
    assert "caseflow" not in re.sub(r'""".*?"""', "", code, flags=re.S).replace("caseflow's", "")
    path = tmp_path / "verify_audit.py"
    path.write_text(code, encoding="utf-8")
    return path


def _outside(store, tmp_path: Path) -> tuple[int, str]:
    """Run the docs' verifier in a bare interpreter (-I: no site-packages, no caseflow)."""
    script = _verifier(tmp_path)
    if store.engine.dialect.name == "sqlite":
        args = [store.engine.url.database]
    else:
        args = []
        with store.engine.connect() as conn:
            for table in ("audit", "attempts", "checkpoints"):
                lines = conn.execute(sa.text(f"SELECT row_to_json(x)::text FROM {table} x")).scalars().all()
                path = tmp_path / f"{table}.jsonl"
                path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
                args.append(str(path))
    done = subprocess.run([sys.executable, "-I", str(script), *args], capture_output=True, text=True,
                          cwd=tmp_path, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout


def test_the_outside_verifier_agrees_with_audit_verify(engine, store, run, tmp_path):
    cid = refund_to_signing(engine)
    sign_all(engine, cid)
    run("--as", "wang.fang", "advance", cid, "pay")                       # an attempt
    assert run("--as", "jiang.wen", "audit", "checkpoint").exit_code == 0
    assert run("audit", "verify").exit_code == 0
    assert _outside(store, tmp_path) == (0, "ok\n")

    drop_triggers(store)
    sql(store, "UPDATE audit SET note = '金额已核对' WHERE case_id = :cid AND seq = 3", cid=cid)
    inside = run("audit", "verify")
    code, out = _outside(store, tmp_path)
    assert inside.exit_code == 1 and f"{cid}: row 3" in inside.stdout
    assert code == 1 and f"FAIL {cid} row 3: content does not match its hash (edited)" in out
