"""Many operators at the same moment: real CLI processes colliding on SQLite and PostgreSQL.

Each round starts N processes under tests/reliability/driver.py with a barrier
at their first write transaction, so all of them have read the case before any
of them writes. On one case exactly one may win each step and every other one
must exit 3 with the retry message; on different cases all must succeed. Every
round ends with the case, its log and every chain checked.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import sqlalchemy as sa

from caseflow.store.database import Store
from caseflow.store.tables import attempts, decision_counts

from ..helpers import SIGNERS, open_refund
from .support import Launcher, Outcome, assert_all_intact, driver_env, note, snapshot

N = 8
NOW = "2025-03-03T10:00:00+08:00"          # the `clock` fixture's start: one penalty-counter month
EXPLAIN = ["--set", "reason=客户资金周转困难", "--set", "responsibility=设计师沟通不到位",
           "--set", "responsibility_code=A4", "--set", "responsible_person=xu.peng"]


def race(launcher: Launcher, db_url: str, tmp_path: Path, workflows: Path,
         commands: list[tuple[str, list[str]]]) -> list[Outcome]:
    """Start one process per (user, argv), all held at their first write until every one is there.

    They act at the simulated time of the `clock` fixture (CASEFLOW_NOW), like the library calls."""
    d = tmp_path / f"race-{secrets.token_hex(3)}"
    d.mkdir()
    procs = [launcher.start(argv, driver_env(db_url, d, user, workflows, DRIVER_BARRIER=len(commands),
                                             CASEFLOW_NOW=NOW))
             for user, argv in commands]
    outcomes = launcher.finish(procs, timeout=120)
    note("concurrency", processes=len(outcomes))
    return outcomes


def _sets(argv: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in argv[1::2])


def counter(store: Store, person: str) -> int | None:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.sum(decision_counts.c.count)).where(
            decision_counts.c.decision == "penalty", decision_counts.c.key == person)).scalar()


def one_winner(store: Store, cid: str, outcomes: list[Outcome], to: str) -> None:
    """Exactly one process moved the case; all others were told to retry; one commit, one move row."""
    stale = f"error: case {cid} was changed by someone else; retry"
    assert sorted(o.rc for o in outcomes) == [0] + [3] * (len(outcomes) - 1), [o.stderr for o in outcomes]
    assert [o.stderr.strip() for o in outcomes if o.rc == 3] == [stale] * (len(outcomes) - 1)
    assert [o.stderr for o in outcomes if o.rc == 0] == [""]
    note("concurrency", same_case_attempts=len(outcomes), same_case_conflicts=len(outcomes) - 1)


def test_n_processes_on_one_case_exactly_one_wins_each_step(db_url, engine, store, tmp_path, launcher, light_workflows):
    # another case has already counted xu.peng this month: the racers contend for that counter row
    other = open_refund(engine, order_no="D-OTHER")
    for event, user in (("start_before_work", "wang.fang"), ("sign_termination", "lin.xiao")):
        engine.advance(other, event, user)
    engine.advance(other, "explain", "lin.xiao", _sets(EXPLAIN))
    cid = open_refund(engine)
    steps = [
        ("start_before_work", "terminating", [("wang.fang" if i % 2 else "chen.jing", []) for i in range(N)]),
        ("sign_termination", "explaining", [("lin.xiao", [])] * N),
        # the decision's monthly counter must be bumped by the winner only
        ("explain", "applying", [("lin.xiao", EXPLAIN)] * N),
    ]
    for event, to, who in steps:
        before_row, before_log = snapshot(store, cid)
        outcomes = race(launcher, db_url, tmp_path, light_workflows,
                        [(user, ["advance", cid, event, *extra]) for user, extra in who])
        one_winner(store, cid, outcomes, to)
        row, log = snapshot(store, cid)
        assert (row["state"], row["version"]) == (to, before_row["version"] + 1)
        assert log[:len(before_log)] == before_log
        assert [r["event"] for r in log[len(before_log):] if r["kind"] == "transition"] == [event]
    assert counter(store, "xu.peng") == 2

    engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "20000"})
    # four different handlers, two processes each, race for the first signature
    handlers = ["lin.xiao", "huang.lei", "xu.peng", "shen.jia"]
    before_row, _ = snapshot(store, cid)
    outcomes = race(launcher, db_url, tmp_path, light_workflows, [(handlers[i % 4], ["sign", cid]) for i in range(N)])
    one_winner(store, cid, outcomes, "signing")
    row, _ = snapshot(store, cid)
    assert row["version"] == before_row["version"] + 1 and row["state"] == "signing"
    assert len(engine.read_case(cid).signoffs) == 1
    for who, _ in SIGNERS[1:]:
        engine.sign(cid, who)
    assert engine.read_case(cid).state == "approved"
    assert_all_intact(store, "concurrency")


def test_n_refusals_at_once_keep_the_attempts_chain(db_url, engine, store, tmp_path, launcher, light_workflows):
    cid = open_refund(engine)
    before = snapshot(store, cid)
    outcomes = race(launcher, db_url, tmp_path, light_workflows, [("cao.ying", ["advance", cid, "start_before_work"])] * N)
    message = (f"error: case {cid}: cannot start_before_work in state requested: cao.ying has none "
               f"of the roles allowed: 客服专员(cs_agent), 经手人(handler)")
    assert [(o.rc, o.stderr.strip()) for o in outcomes] == [(1, message)] * N
    assert snapshot(store, cid) == before
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(attempts)).scalar() == N
    note("concurrency", refusals_at_once=N)
    assert_all_intact(store, "concurrency")


def test_first_opens_of_a_new_version_all_succeed(db_url, store, tmp_path, launcher, light_workflows):
    """Right after a deploy the first N opens race to register the new definition version."""
    opens = race(launcher, db_url, tmp_path, light_workflows, [("wang.fang", [
        "--json", "open", "refund", "--set", f"order_no=D-{i}", "--set", "customer_name=王建国",
        "--set", "contract_amount=80000", "--set", "amount_paid=20000", "--set", "work_started=false"])
        for i in range(N)])
    note("concurrency", different_case_attempts=N)
    assert [(o.rc, o.stderr) for o in opens] == [(0, "")] * N
    assert len({json.loads(o.stdout)["id"] for o in opens}) == N
    assert_all_intact(store, "concurrency")


def test_n_processes_on_different_cases_all_succeed(db_url, store, engine, tmp_path, launcher, light_workflows):
    ids = [open_refund(engine, order_no=f"D-{i}") for i in range(N)]
    moved = race(launcher, db_url, tmp_path, light_workflows,
                 [("wang.fang", ["advance", cid, "start_before_work"]) for cid in ids])
    note("concurrency", different_case_attempts=N)
    assert [(o.rc, o.stderr) for o in moved] == [(0, "")] * N
    for cid in ids:
        engine.advance(cid, "sign_termination", "lin.xiao")
    # every explain bumps the same person's monthly penalty counter at the same moment
    explained = race(launcher, db_url, tmp_path, light_workflows,
                     [("lin.xiao", ["advance", cid, "explain", *EXPLAIN]) for cid in ids])
    note("concurrency", different_case_attempts=N)
    assert [(o.rc, o.stderr) for o in explained] == [(0, "")] * N
    assert counter(store, "xu.peng") == N
    assert sorted(_decided_count(store, cid) for cid in ids) == list(range(1, N + 1))
    assert {engine.read_case(cid).state for cid in ids} == {"applying"}
    assert_all_intact(store, "concurrency")


def _decided_count(store: Store, cid: str) -> int:
    _, log = snapshot(store, cid)
    return next(json.loads(r["changes"])["count"] for r in log if r["kind"] == "decision")


def test_n_issues_with_the_same_unique_key_one_wins(db_url, engine, store, tmp_path, launcher, light_workflows):
    """One card per ID number [processes.md §3]: N applications of one person issued at once, one card."""
    issuing = ["--set", "birth_date=1990-05-01", "--set", "tier=vip", "--set", "id_number=110101199005010022",
               "--set", "same_day_cash=300", "--set", "in_person=true"]
    applications = [engine.open("member_card", "xie.na", {"name": "李四", "phone": "13900000000"})["id"]
                    for _ in range(N)]
    outcomes = race(launcher, db_url, tmp_path, light_workflows, [("xie.na", [
        "--json", "advance", cid, "issue", "--set", f"member_id=M-{cid}", "--set", f"card_no=C-{cid}", *issuing])
        for cid in applications])
    assert sorted(o.rc for o in outcomes)[0] == 0 and [o.rc for o in outcomes].count(0) == 1, \
        [o.stderr for o in outcomes]
    winner = next(json.loads(o.stdout)["id"] for o in outcomes if o.rc == 0)
    assert [engine.read_case(cid).state for cid in applications].count("active") == 1
    for o in outcomes:
        if o.rc != 0:
            assert o.rc in (1, 3) and o.stderr.startswith("error: ") and o.stderr.count("\n") == 1, o.stderr
            assert o.rc == 3 or f"id_number already belongs to open case {winner}" in o.stderr
    note("concurrency", unique_key_attempts=N, unique_key_refusals=N - 1)
    assert_all_intact(store, "concurrency")
