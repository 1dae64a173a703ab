"""`caseflow migrate …` through the CLI: plan files, their errors at file:line:col, dry run, run, revert, runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers import open_refund, refund_to_signing
from .support import HERE, on_version

REVIEW = str(HERE / "review" / "refund.yaml")


@pytest.fixture
def cases(engine):
    fresh = open_refund(engine)
    signed = refund_to_signing(engine)
    engine.sign(signed, "lin.xiao")
    return fresh, signed


def write(run, tmp_path: Path, open_cases: int = 2) -> Path:
    out = tmp_path / "plan.yaml"
    r = run("--as", "zhang.wei", "migrate", "plan", "refund", "--to", REVIEW, "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"wrote {out}: {open_cases} open case(s) of refund ")
    return out


def test_plan_dry_run_run_runs_show(run, engine, cases, tmp_path):
    fresh, signed = cases
    plan = write(run, tmp_path)
    text = plan.read_text(encoding="utf-8")
    assert "  signing: signing    # 逐级签字, 1 open" in text
    assert "signoffs: keep" in text and "cannot_migrate: stay" in text

    r = run("--as", "jiang.wen", "migrate", "run", str(plan), "--dry-run")      # an auditor may look
    assert r.exit_code == 0, r.stderr
    assert "2 open case(s): 1 migratable, 0 elsewhere, 1 forbidden" in r.stdout
    assert f"{signed} signing: forbidden: row " in r.stdout
    assert "nothing to sign in 财务审核(reviewing) under NEW" in r.stdout

    r = run("--as", "zhang.wei", "migrate", "run", str(plan), "--json")
    assert r.exit_code == 0, r.stderr
    out = r.json()
    assert out["counts"]["migrated"] == 1
    assert {c["case"]: c["outcome"] for c in out["cases"]} == {fresh: "migrated", signed: "stays"}
    assert on_version(engine, fresh)[1] == "requested"

    r = run("--as", "jiang.wen", "migrate", "runs")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("1 dry-run refund ")
    assert " by zhang.wei at " in r.stdout.splitlines()[1]
    r = run("--as", "jiang.wen", "migrate", "show", "2", "--json")
    assert r.json()["plan_text"] == plan.read_text(encoding="utf-8")
    assert {v["case"]: v["verdict"] for v in r.json()["verdicts"]} == {fresh: "migratable", signed: "forbidden"}

    r = run("--as", "jiang.wen", "audit", "--case", fresh, "--json")
    kinds = [row["kind"] for row in r.json()]
    assert kinds[-1] == "migrate"
    r = run("--as", "jiang.wen", "audit", "verify")
    assert r.exit_code == 0, r.stdout + r.stderr
    r = run("--as", "jiang.wen", "export", "--format", "csv")          # the move is an activity of the event log
    assert any(line.startswith(f"{fresh},migrate,") and ",zhang.wei,company_leader," in line
               for line in r.stdout.splitlines()), r.stdout

    r = run("--as", "zhang.wei", "migrate", "revert", "2")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["revert of run 2 (run 3): moved back 1", f"{fresh}: back to requested"]
    r = run("--as", "jiang.wen", "audit", "verify")
    assert r.exit_code == 0, r.stdout + r.stderr


def test_run_needs_can_migrate(run, cases, tmp_path):
    plan = write(run, tmp_path)
    r = run("--as", "jiang.wen", "migrate", "run", str(plan))
    assert r.exit_code == 1
    assert r.stderr.strip() == ("error: jiang.wen may not migrate cases of refund: no role with can_migrate in "
                                "the org chart in force (holds: 审计员(auditor))")


def test_plan_needs_can_migrate_or_can_audit(run, cases, tmp_path):
    out = tmp_path / "plan.yaml"
    r = run("--as", "wang.fang", "migrate", "plan", "refund", "--to", REVIEW, "-o", str(out))
    assert r.exit_code == 1
    assert r.stderr.strip() == ("error: wang.fang may not plan a migration of refund: no role with can_migrate "
                                "or can_audit in the org chart in force (holds: 客服专员(cs_agent))")
    assert not out.exists()
    refused = run("--as", "jiang.wen", "audit", "--attempts", "--json").json()
    assert [(a["actor"], a["event"]) for a in refused][-1:] == [("wang.fang", "migrate plan")]


def test_refuse_policy_exits_1(run, engine, cases, tmp_path):
    plan = write(run, tmp_path)
    plan.write_text(plan.read_text(encoding="utf-8").replace("cannot_migrate: stay", "cannot_migrate: refuse"),
                    encoding="utf-8")
    r = run("--as", "zhang.wei", "migrate", "run", str(plan))
    assert r.exit_code == 1
    assert r.stderr.startswith("error: cannot migrate refund: 1 of 2 case(s) cannot migrate and the plan says "
                               "cannot_migrate: refuse; nothing was migrated (first: ")
    assert on_version(engine, cases[0])[0] == engine.catalog.get("refund").sha256


@pytest.mark.parametrize("old, new, message", [
    ("  signing: signing", "  signin: signing",
     "states: 'signin' is not a state of OLD (did you mean 'signing'?)"),
    ("  signing: signing", "  signing: signed",
     "states: signing → 'signed': not a state of NEW (did you mean 'signing'?)"),
    ("  signing: signing", "  signing: paid", "states: signing → 'paid': a final state of NEW"),
    ("transforms: {}", "transforms: {refund_totl: refund_amount}",
     "transforms: 'refund_totl' is not a field of NEW"),
    ("transforms: {}", "transforms: {refund_amount: \"refund_amont * 2\"}",
     "transform refund_amount: unknown name 'refund_amont' (did you mean 'refund_amount'?)"),
    ('filter: "true"', 'filter: "amount_paid"', "filter: expression is int, expected bool"),
    ("signoffs: keep", "signoffs: kept", "signoffs"),
])
def test_plan_errors_point_at_file_line_col(run, cases, tmp_path, old, new, message):
    plan = write(run, tmp_path)
    text = plan.read_text(encoding="utf-8")
    assert old in text
    text = text.replace(old, new, 1)
    plan.write_text(text, encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith(new.split(":")[0]))
    r = run("--as", "zhang.wei", "migrate", "run", str(plan), "--dry-run")
    assert r.exit_code == 2, r.stdout
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"error: {plan}:{line}:"), first
    assert message in first, first


def test_changed_new_file_is_refused(run, cases, tmp_path):
    copy = tmp_path / "v2" / "refund.yaml"
    copy.parent.mkdir()
    copy.write_text(Path(REVIEW).read_text(encoding="utf-8"), encoding="utf-8")
    plan = tmp_path / "plan.yaml"
    assert run("--as", "zhang.wei", "migrate", "plan", "refund", "--to", str(copy), "-o", str(plan)).exit_code == 0
    again = run("--as", "zhang.wei", "migrate", "plan", "refund", "--to", str(copy), "-o", str(plan))
    assert (again.exit_code, again.stderr.strip()) == (2, f"error: -o {plan}: the file exists; add --force to "
                                                          f"replace it")
    assert "  file: \"v2/refund.yaml\"" in plan.read_text(encoding="utf-8")       # relative to the plan's folder
    copy.write_text(copy.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    r = run("--as", "zhang.wei", "migrate", "run", str(plan), "--dry-run")
    assert r.exit_code == 2
    assert "v2/refund.yaml changed since the plan was written" in r.stderr


def test_plan_of_another_workflow_is_a_usage_error(run, cases, tmp_path):
    r = run("--as", "zhang.wei", "migrate", "plan", "complaint", "--to", REVIEW)
    assert r.exit_code == 4          # no open complaint: nothing to migrate
    r = run("--as", "zhang.wei", "migrate", "plan", "refund", "--to", str(HERE / "strict" / "complaint.yaml"))
    assert r.exit_code == 2
    assert "is workflow 'complaint', not 'refund'" in r.stderr
