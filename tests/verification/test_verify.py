"""`caseflow verify`: the seeded defects are caught with real counterexamples; shipped workflows verify.

Each mutant in mutants/ is refund.yaml with one edit that `validate`'s structural
checks accept but that breaks a rule of the source documents. For each we assert
the one verdict line a designer sees, that the counterexample was replayed by the
real engine (only accepted replays are reported), and that the emitted script of
`caseflow` commands reproduces it on SQLite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from caseflow.catalog import Catalog
from caseflow.cli.main import cli
from caseflow.definition.compile import load_definition
from caseflow.verification.patterns import PATTERNS, property_schema
from caseflow.verification.report import verdict_line
from caseflow.verification.session import verify_one

HERE = Path(__file__).parent
REPO = HERE.parent.parent
MUTANTS = HERE / "mutants"
BOUND = 10
BIN = Path(sys.executable).parent

# mutant → (property violated, its verdict line after "file:line:col: ", the state the counterexample ends in)
VIOLATIONS = {
    "distinct_off": ("four_signatures", "退款前须经手人、装修中层、区主力、公司领导四个不同的人依次签字 (four_signatures): "
                     "VIOLATED within bound 10", "paid"),
    "fast_pay": ("four_signatures", "退款前须经手人、装修中层、区主力、公司领导四个不同的人依次签字 (four_signatures): "
                 "VIOLATED within bound 10", "paid"),
    "strict_refund": ("no_traps", "任何环节都不会卡死（客户撤回除外） (no_traps): VIOLATED within bound 10: "
                      "no one can move the case on from 填写退费申请单(applying) (except by withdraw)", "applying"),
    "pay_needs_note": ("no_traps", "任何环节都不会卡死（客户撤回除外） (no_traps): VIOLATED within bound 10: "
                       "no one can move the case on from 待退款(approved) (except by withdraw)", "approved"),
    "explain_wrong_field": ("one_explanation", "书写退单说明的两种情形互斥 (one_explanation): VIOLATED within bound 10: "
                            "alternatives #6 and #7 of explain (transitions 6 and 7) are both enabled", "explaining"),
}
LINTS = {
    "money_literal": "'completed_work_value < 5000' compares money with the bare number 5000, which is 5000 fen = "
                     "50.00 yuan (write yuan(\"50.00\") if 50.00 yuan is meant, or yuan(5000) for 5000 yuan)",
    "enum_literal": "'after_wrok' is not one of path's values (before_work, after_work), so this comparison is "
                    "always false (did you mean 'after_work'?)",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(REPO / "workflows")


def _verify(catalog: Catalog, path: Path, org_dir: Path | None = None):
    """A fresh search (nothing reused or recorded); a mutant under the shipped org is searched once
    per module, and each test that looks at it reads that one outcome."""
    if org_dir is None:
        if path not in _SEARCHED:
            _SEARCHED[path] = _search(catalog, path, None)
        return _SEARCHED[path]
    return _search(catalog, path, org_dir)


_SEARCHED: dict[Path, Any] = {}


def _search(catalog: Catalog, path: Path, org_dir: Path | None):
    cat = catalog if org_dir is None else Catalog.load(org_dir)
    d = load_definition(path, cat.org, cat.calendars, display=str(path.relative_to(REPO)) if org_dir is None
                        else str(path))
    return verify_one(d, cat.org, cat, BOUND, reuse=False, save=False)


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_each_seeded_defect_is_caught_with_a_replayed_counterexample(catalog: Catalog, name: str,
                                                                      tmp_path: Path) -> None:
    prop, verdict, end_state = VIOLATIONS[name]
    outcome = _verify(catalog, MUTANTS / f"{name}.yaml")
    report = outcome.report
    found = {f.prop.id: f for f in report.findings}
    f = found[prop]
    line = verdict_line(report, f)
    assert line.split(": ", 1)[1] == verdict, line
    assert line.startswith(f"tests/verification/mutants/{name}.yaml:")
    assert f.moves[0].kind == "open" and all(m.actor in catalog.org.people for m in f.moves if m.kind != "system")
    assert outcome.errors, "a violation fails verify and validate"
    # the emitted script reproduces the violation through the command line on SQLite
    from caseflow.cli.verify import write_scripts
    [script] = [p for p in write_scripts(report, tmp_path / "cex", REPO / "workflows") if prop in p.name]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode == 0, run.stderr
    [shown] = [x for x in run.stdout.splitlines() if "状态:" in x]       # the script ends with `caseflow show`
    assert f"({end_state})" in shown, run.stdout


def test_distinct_people_off_names_the_person_who_signs_twice(catalog: Catalog) -> None:
    f = next(f for f in _verify(catalog, MUTANTS / "distinct_off.yaml").report.findings
             if f.prop.id == "four_signatures")
    signers = [(m.role, m.actor) for m in f.moves if m.kind == "sign"]
    twice = [who for _, who in signers if [w for _, w in signers].count(who) > 1]
    assert twice and set(twice) <= {"luo.jun"}          # 罗军 is middle_manager and district_lead


@pytest.mark.parametrize("name", sorted(LINTS))
def test_literal_lints(catalog: Catalog, name: str) -> None:
    outcome = _verify(catalog, MUTANTS / f"{name}.yaml")
    messages = [f"{e.message} ({e.hint})" if e.hint else e.message for e in outcome.errors]
    assert LINTS[name] in messages, messages


def test_validate_reports_the_lint_and_the_violation_and_exits_1(tmp_path: Path) -> None:
    wf = tmp_path / "wf"
    shutil.copytree(REPO / "workflows", wf)
    shutil.copy(MUTANTS / "enum_literal.yaml", wf / "refund.yaml")        # validate wants the file named by its id
    r = CliRunner().invoke(cli, ["--workflows", str(wf), "validate", str(wf / "refund.yaml")], catch_exceptions=False)
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{wf / 'refund.yaml'}:") and LINTS["enum_literal"] in lines[0], lines
    assert any("can never be true" in x for x in lines)


def test_a_property_that_fails_for_the_shipped_org_holds_once_a_person_loses_a_role(catalog: Catalog,
                                                                                     tmp_path: Path) -> None:
    mutant = MUTANTS / "distinct_off.yaml"
    before = {f.prop.id: f.status for f in _verify(catalog, mutant).report.findings}
    assert before["four_signatures"] == "violated"
    org = tmp_path / "wf"
    shutil.copytree(REPO / "workflows", org)
    text = (org / "org.yaml").read_text(encoding="utf-8")
    changed = text.replace("roles: [middle_manager, district_lead]", "roles: [middle_manager]")
    assert changed != text
    (org / "org.yaml").write_text(changed, encoding="utf-8")
    after = {f.prop.id: f.status for f in _verify(catalog, mutant, org).report.findings}
    assert after["four_signatures"] == "holds"     # nobody holds two of the four roles any more


@pytest.mark.timeout(1200)        # ~35 s of CPU; the wall time depends on how loaded the machine is
def test_shipped_workflows_verify_and_workflows_shows_it(shipped_verification) -> None:
    r = shipped_verification          # `verify --fresh --bound 8 --json` of workflows/, once per run (conftest.py)
    assert r.exit_code == 0, r.stdout + r.stderr
    rows = json.loads(r.stdout)
    assert {row["workflow"] for row in rows} == {"complaint", "followup_visit", "member_card", "refund",
                                                "self_review"}
    assert all(row["ok"] for row in rows)
    assert all(all(p["verdict"] == "holds" for p in row["properties"]) for row in rows)
    listing = CliRunner().invoke(cli, ["--workflows", "workflows", "workflows"], catch_exceptions=False)
    refund = next(x for x in listing.stdout.splitlines() if x.startswith("refund"))
    assert "verified 4/4 within bound 8 at " in refund and "four_signatures" in refund, refund


def test_the_schema_lists_exactly_the_registered_patterns() -> None:
    schema = json.loads((REPO / "schemas" / "workflow.schema.json").read_text(encoding="utf-8"))
    assert schema["$defs"]["property"] == property_schema()
    assert set(PATTERNS) <= set(schema["$defs"]["property"]["properties"])


def test_unknown_names_in_a_property_point_at_them(tmp_path: Path) -> None:
    wf = tmp_path / "wf"
    shutil.copytree(REPO / "workflows", wf)
    text = (wf / "refund.yaml").read_text(encoding="utf-8").replace("      event: pay\n      roles:",
                                                                      "      event: payy\n      roles:")
    (wf / "refund.yaml").write_text(text, encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "event: payy" in t)
    r = CliRunner().invoke(cli, ["--workflows", str(wf), "verify", str(wf / "refund.yaml")], catch_exceptions=False)
    assert r.exit_code == 1
    assert f"refund.yaml:{line}:14: property four_signatures: unknown event 'payy' (did you mean 'pay'?)" \
        in r.stdout, r.stdout
