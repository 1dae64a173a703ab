"""A migration and the people working the cases at the same moment: real CLI processes, SQLite and PostgreSQL.

Each round starts `caseflow migrate run PLAN` and an operator's `advance` on the one case the
plan moves, held at a barrier so both have read the case before either writes. Exactly one
wins: either the case is on v2 and the operator was told to retry (exit 3), or the operator's
step is in and the run says the case changed meanwhile (exit 3) and left it on v1. Nothing is
half-written: every chain, case row and `audit verify` is clean. Then several runners share one
plan: every case moves exactly once and every runner exits 0.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import sqlalchemy as sa

from caseflow.store.tables import audit, cases

from ..helpers import open_refund
from ..migration.support import variant, write_plan
from .support import Launcher, assert_all_intact, driver_env, note

NOW = "2025-03-03T12:00:00+08:00"
ROUNDS = 4


def to_applying(engine, order_no: str) -> str:
    cid = open_refund(engine, order_no=order_no)
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    engine.advance(cid, "explain", "lin.xiao", {"reason": "客户资金周转困难", "responsibility": "客户原因"})
    return cid


def start(launcher: Launcher, db_url: str, tmp_path: Path, workflows: Path, commands: list[tuple[str, list[str]]]):
    d = tmp_path / f"race-{secrets.token_hex(3)}"
    d.mkdir()
    procs = [launcher.start(argv, driver_env(db_url, d, user, workflows, DRIVER_BARRIER=len(commands),
                                             CASEFLOW_NOW=NOW)) for user, argv in commands]
    return launcher.finish(procs, timeout=120)


def test_operator_and_migration_on_one_case_one_wins(db_url, engine, store, tmp_path, launcher, light_workflows):
    v1, v2 = engine.catalog.get("refund").sha256, variant(engine, "review", "refund").sha256
    wins = {"migration": 0, "operator": 0}
    for i in range(ROUNDS):
        cid = to_applying(engine, f"D-RACE-{i}")
        plan = write_plan(engine, tmp_path, "review", "refund", filter=f"order_no == 'D-RACE-{i}'")
        migration, operator = start(launcher, db_url, tmp_path, light_workflows, [
            ("zhang.wei", ["migrate", "run", str(plan)]),
            ("lin.xiao", ["advance", cid, "apply", "--set", "refund_amount=20000"])])
        assert sorted([migration.rc, operator.rc]) == [0, 3], (migration.stderr, operator.stderr)
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(cases).where(cases.c.id == cid)).one()
            kinds = [r.kind for r in conn.execute(sa.select(audit.c.kind).where(audit.c.case_id == cid)
                                                  .order_by(audit.c.seq))]
        if migration.rc == 0:
            wins["migration"] += 1
            assert operator.stderr.strip() == f"error: case {cid} was changed by someone else; retry"
            assert (row.definition, row.state) == (v2, "applying")
            assert kinds[-1] == "migrate" and kinds.count("migrate") == 1
        else:
            wins["operator"] += 1
            assert migration.stderr.strip().startswith("error: migration run "), migration.stderr
            assert f"1 case(s) were changed by someone else while moving ({cid})" in migration.stderr
            assert (row.definition, row.state) == (v1, "signing")
            assert "migrate" not in kinds
        assert_all_intact(store, "migration race")
    note("migration race", rounds=ROUNDS, migration_won=wins["migration"], operator_won=wins["operator"])


def test_several_runners_share_one_plan(db_url, engine, store, tmp_path, launcher, light_workflows):
    ids = [open_refund(engine, order_no=f"D-SHARE-{i}") for i in range(12)]
    plan = write_plan(engine, tmp_path, "review", "refund")
    runners = start(launcher, db_url, tmp_path, light_workflows,
                    [("zhang.wei", ["--json", "migrate", "run", str(plan)])] * 3)
    assert [(r.rc, r.stderr) for r in runners] == [(0, "")] * 3
    with store.engine.connect() as conn:
        moved = conn.execute(sa.select(audit.c.case_id, sa.func.count()).where(audit.c.kind == "migrate")
                             .group_by(audit.c.case_id)).all()
    assert sorted(moved) == sorted((cid, 1) for cid in ids)            # each case moved exactly once
    note("migration race", runners=3, cases_shared=len(ids))
    assert_all_intact(store, "migration race")
