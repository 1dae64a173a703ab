"""Two operators claim the same case at the same moment: one wins, the other is told to retry (exit 3).

Real CLI processes (tests/reliability/driver.py) held at a barrier before their
first write, so both have read the unassigned case before either writes; on
SQLite and PostgreSQL. The loser's attempt is recorded, its case untouched.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import sqlalchemy as sa

from caseflow.store.tables import attempts, cases

from ..helpers import open_refund
from .support import Launcher, assert_all_intact, driver_env, note, snapshot

NOW = "2025-03-03T10:00:00+08:00"


def race(launcher: Launcher, db_url: str, tmp_path: Path, workflows: Path, commands: list[tuple[str, list[str]]]):
    d = tmp_path / f"race-{secrets.token_hex(3)}"
    d.mkdir()
    procs = [launcher.start(argv, driver_env(db_url, d, user, workflows, DRIVER_BARRIER=len(commands),
                                             CASEFLOW_NOW=NOW)) for user, argv in commands]
    return launcher.finish(procs, timeout=120)


def test_two_claims_at_once_one_wins_the_other_exits_3(db_url, engine, store, tmp_path, launcher, light_workflows):
    cid = open_refund(engine)
    before_row, before_log = snapshot(store, cid)
    outcomes = race(launcher, db_url, tmp_path, light_workflows,
                    [("wang.fang", ["claim", cid]), ("chen.jing", ["claim", cid])])
    assert sorted(o.rc for o in outcomes) == [0, 3], [o.stderr for o in outcomes]
    loser = next(o for o in outcomes if o.rc == 3)
    winner = next(o for o in outcomes if o.rc == 0)
    assert loser.stderr.strip() == f"error: case {cid} was changed by someone else; retry"
    assert loser.stdout == "" and winner.stderr == ""
    row, log = snapshot(store, cid)
    holder = row["assignee"]
    assert holder in ("wang.fang", "chen.jing") and winner.stdout.strip() == f"{cid}: claimed by {holder}"
    assert row["version"] == before_row["version"] + 1
    new = log[len(before_log):]
    assert [(r["kind"], r["event"], r["actor"]) for r in new] == [("assign", "claim", holder),
                                                                 ("work", "start_work", holder)]
    loser_user = ({"wang.fang", "chen.jing"} - {holder}).pop()
    with store.engine.connect() as conn:
        tried = conn.execute(sa.select(attempts.c.case_id, attempts.c.event, attempts.c.actor, attempts.c.error)).all()
    assert [tuple(t) for t in tried] == [(cid, "claim", loser_user, "StaleCase")]
    # the retry now sees the holder and is refused for that reason, changing nothing
    r = race(launcher, db_url, tmp_path, light_workflows, [(loser_user, ["claim", cid])])[0]
    assert (r.rc, r.stderr.strip()) == (1, f"error: case {cid}: cannot claim in state requested: already assigned "
                                           f"to {holder}; they may release it, or a supervisor may reassign it")
    assert snapshot(store, cid) == (row, log)
    note("concurrency", claim_races=1)
    assert_all_intact(store, "concurrency")


def test_a_claim_racing_an_advance_leaves_one_consistent_case(db_url, engine, store, tmp_path, launcher,
                                                            light_workflows):
    cid = open_refund(engine)
    claimed, advanced = race(launcher, db_url, tmp_path, light_workflows,
                             [("wang.fang", ["claim", cid]), ("chen.jing", ["advance", cid, "start_before_work"])])
    assert sorted((claimed.rc, advanced.rc)) == [0, 3], (claimed.stderr, advanced.stderr)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(cases).where(cases.c.id == cid)).one()
    if claimed.rc == 0:
        assert (row.assignee, row.state) == ("wang.fang", "requested")
    else:
        assert (row.assignee, row.state) == (None, "terminating")
    assert_all_intact(store, "concurrency")
