"""`migrate run --case/--limit`: a canary moves a few cases first, the rest stay on OLD until the plan runs again."""

from __future__ import annotations

import pytest

from ..helpers import open_refund, refund_to_signing
from .support import on_version
from .test_cli import write


@pytest.fixture
def cases(engine):
    """Three refunds that may move (in id order) and one that may not (a signature NEW has no place for)."""
    fresh = sorted(open_refund(engine, order_no=f"D-{i}") for i in range(3))
    signed = refund_to_signing(engine)
    engine.sign(signed, "lin.xiao")
    return fresh, signed


def outcomes(result) -> dict[str, str]:
    return {c["case"]: c["outcome"] for c in result.json()["cases"]}


def test_limit_moves_the_first_cases_by_id_and_holds_back_the_rest_for_the_next_run(run, engine, cases, tmp_path):
    fresh, signed = cases
    plan = write(run, tmp_path, 4)
    old = engine.catalog.get("refund").sha256

    r = run("--as", "zhang.wei", "migrate", "run", str(plan), "--limit", "1")
    assert r.exit_code == 0, r.stderr
    assert "; moved 1, held back by --limit 2" in r.stdout.splitlines()[0]
    assert f"{fresh[1]} requested: migratable" in r.stdout and "[held back]" in r.stdout
    assert [on_version(engine, c)[0] == old for c in fresh] == [False, True, True]

    shown = run("--as", "jiang.wen", "migrate", "show", "1", "--json").json()        # the run's record says so
    assert shown["counts"]["held_back"] == 2 and shown["counts"]["migrated"] == 1
    assert {v["case"]: v["outcome"] for v in shown["verdicts"]} == {
        fresh[0]: "migrated", fresh[1]: "held back", fresh[2]: "held back", signed: "stays"}

    r = run("--as", "zhang.wei", "migrate", "run", str(plan), "--json")          # the rest, as the help says
    assert r.exit_code == 0, r.stderr
    assert outcomes(r) == {fresh[1]: "migrated", fresh[2]: "migrated", signed: "stays"}
    assert r.json()["counts"]["held_back"] == 0
    assert run("--as", "jiang.wen", "audit", "verify").exit_code == 0


def test_revert_of_a_limited_run_moves_back_only_what_it_moved(run, engine, cases, tmp_path):
    fresh, _signed = cases
    plan = write(run, tmp_path, 4)
    old = engine.catalog.get("refund").sha256
    assert run("--as", "zhang.wei", "migrate", "run", str(plan), "--limit", "2").exit_code == 0
    assert [on_version(engine, c)[0] == old for c in fresh] == [False, False, True]
    r = run("--as", "zhang.wei", "migrate", "revert", "1")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0] == "revert of run 1 (run 2): moved back 2"
    assert all(on_version(engine, c)[0] == old for c in fresh)


def test_case_judges_and_moves_only_the_cases_named(run, engine, cases, tmp_path):
    fresh, signed = cases
    plan = write(run, tmp_path, 4)
    old = engine.catalog.get("refund").sha256

    r = run("--as", "jiang.wen", "migrate", "run", str(plan), "--dry-run", "--case", fresh[2], "--case", signed)
    assert r.exit_code == 0, r.stderr
    assert "2 open case(s): 1 migratable, 0 elsewhere, 1 forbidden" in r.stdout

    r = run("--as", "zhang.wei", "migrate", "run", str(plan), "--case", fresh[2], "--json")
    assert r.exit_code == 0, r.stderr
    assert outcomes(r) == {fresh[2]: "migrated"}
    assert [on_version(engine, c)[0] == old for c in fresh] == [True, True, False]


@pytest.mark.parametrize("which, code, message", [
    ("unknown", 4, "error: case 'REF-00000000' not found"),
    ("moved", 1, "error: cannot migrate refund: --case {case} is not an open case of refund {old} (it runs under "
                 "version {new}); nothing was judged"),
])
def test_a_case_the_plan_does_not_cover_refuses_the_whole_command(run, engine, cases, tmp_path, which, code, message):
    fresh, _signed = cases
    plan = write(run, tmp_path, 4)
    old = engine.catalog.get("refund").sha256
    assert run("--as", "zhang.wei", "migrate", "run", str(plan), "--case", fresh[0]).exit_code == 0
    new = on_version(engine, fresh[0])[0]
    case = "REF-00000000" if which == "unknown" else fresh[0]
    runs_before = run("--as", "jiang.wen", "migrate", "runs", "--json").json()

    r = run("--as", "zhang.wei", "migrate", "run", str(plan), "--case", fresh[1], "--case", case)
    assert r.exit_code == code
    assert r.stderr.strip() == message.format(case=case, old=old[:12], new=new[:12])
    assert on_version(engine, fresh[1])[0] == old                       # the other case named did not move
    assert run("--as", "jiang.wen", "migrate", "runs", "--json").json() == runs_before      # no run recorded
    refused = run("--as", "jiang.wen", "audit", "--attempts", "--json").json()
    assert [(a["actor"], a["event"]) for a in refused][-1:] == [("zhang.wei", "migrate run")]


def test_a_closed_case_is_named_as_closed(run, engine, cases, tmp_path):
    fresh, _signed = cases
    plan = write(run, tmp_path, 4)
    closed = open_refund(engine, order_no="D-closed")
    engine.advance(closed, "withdraw", "wang.fang", {"withdraw_reason": "客户不退了"})
    r = run("--as", "zhang.wei", "migrate", "run", str(plan), "--case", closed)
    assert r.exit_code == 1
    assert r.stderr.strip().endswith(f"--case {closed} is not an open case of refund "
                                     f"{engine.catalog.get('refund').sha256[:12]} (it is closed ({engine.catalog.get('refund').label('withdrawn')})); "
                                     "nothing was judged")


@pytest.mark.parametrize("args, message", [
    (["--limit", "0"], "error: --limit 0: give how many cases may move (1 or more)"),
    (["--dry-run", "--limit", "1"], "error: --limit applies to a run (how many cases move); a dry run judges every case"),
])
def test_limit_usage_errors_change_nothing(run, engine, cases, tmp_path, args, message):
    fresh, _signed = cases
    plan = write(run, tmp_path, 4)
    r = run("--as", "zhang.wei", "migrate", "run", str(plan), *args)
    assert r.exit_code == 2
    assert r.stderr.strip() == message
    assert all(on_version(engine, c)[0] == engine.catalog.get("refund").sha256 for c in fresh)
