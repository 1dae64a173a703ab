"""PostgreSQL going away: one clear line, nothing half-written; back again: work continues.

These tests run their own throwaway server (scripts/pg-throwaway.sh, see
conftest.own_pg) so they can stop it and start it again on the same data
directory and port; the shared test server is never touched. The CLI runs as
real processes (driver.py); a victim can be held at a named point of its write
transaction while the server is stopped under it.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from caseflow.catalog import SHIPPED, Catalog
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.tables import timers

from ..helpers import open_refund, refund_to_signing
from .support import Launcher, Outcome, Proc, assert_all_intact, driver_env, is_breach, note, snapshot

pytestmark = pytest.mark.timeout(240)
CATALOG = Catalog.load(SHIPPED)


@pytest.fixture
def outage(own_pg, clock, light_workflows, launcher, tmp_path):  # noqa: ANN001, ANN201
    """(store, engine, run) on a fresh schema of the test's own server; the server is up again after."""
    url = own_pg.fresh_url()
    store = Store(url)
    store.migrate(simulation=True)
    engine = Engine(store, CATALOG, clock)

    def run(user: str | None, *argv: str, **extra: str) -> Proc:
        work = tmp_path / f"p-{time.monotonic_ns()}"
        work.mkdir()
        extra = {"CASEFLOW_NOW": clock.now.isoformat(), **extra}
        return launcher.start(list(argv), driver_env(url, work, user, light_workflows, **extra))
    yield store, engine, run
    if not (own_pg.directory / "pgdata" / "postmaster.pid").exists():
        own_pg.start()
    store.engine.dispose()


def one_line(o: Outcome, starts: str) -> None:
    assert o.rc == 5, (o.rc, o.stderr)
    assert o.stderr.startswith(starts) and o.stderr.count("\n") == 1, repr(o.stderr)
    assert "Traceback" not in o.stderr and o.stdout == "", (o.stdout, o.stderr)


def test_every_command_on_a_stopped_server_says_so_in_one_line(outage, own_pg, launcher):
    store, engine, run = outage
    cid = open_refund(engine)
    before = snapshot(store, cid)
    own_pg.stop()
    commands = [("wang.fang", ["show", cid]), ("wang.fang", ["history", cid]), (None, ["list"]),
                ("wang.fang", ["advance", cid, "start_before_work"]),
                ("wang.fang", ["open", "refund", "--set", "order_no=D-9", "--set", "customer_name=王建国",
                               "--set", "contract_amount=1", "--set", "amount_paid=1", "--set", "work_started=no"]),
                (None, ["sla", "run"])]
    outcomes = launcher.finish([run(user, *argv) for user, argv in commands], timeout=120)
    own_pg.start()
    note("db outage", commands_while_down=len(outcomes))
    wrong = [f"{' '.join(argv[:1])}: {o.rc} {o.stderr!r}" for (_, argv), o in zip(commands, outcomes)
             if not (o.rc == 5 and o.stderr.startswith("error: database error") and o.stderr.count("\n") == 1)]
    assert wrong == [], "\n".join(wrong)
    assert snapshot(store, cid) == before
    assert engine.advance(cid, "start_before_work", "wang.fang")["state"] == "terminating"   # work continues
    assert_all_intact(store, "db outage")


EXPLAIN = ["explain", "--set", "reason=客户资金周转困难", "--set", "responsibility=设计师沟通不到位"]
APPLY = ["apply", "--set", "refund_amount=20000.00"]


# `explain` writes only the case row and its audit rows: on PostgreSQL that write is one statement in
# autocommit (`WITH u AS (UPDATE cases …) INSERT INTO audit …`, store/driver_sql.py) — that statement is its
# commit. `apply` starts an SLA clock: it reads the case with its timers (unlocked, one statement before its
# write, `driver_sql.read_for_step`: `begin` is the point after it), then
# writes everything in one statement that locks the case row and the timers and checks they did not move
# (`WITH u AS (UPDATE cases …), t AS (SELECT … FROM timers … FOR UPDATE), chk AS (…), d0 AS (INSERT INTO
# timers …), … INSERT INTO audit …`, `update_checked`) — again its own commit, so (as for `explain`) there is
# no point between it and a COMMIT to stop the server at.
@pytest.mark.parametrize("step,point", [(EXPLAIN, "begin"), (EXPLAIN, "sql WITH u AS"), (APPLY, "begin"),
                                        (APPLY, "sql WITH u AS")])
def test_server_stopped_in_the_middle_of_advance_leaves_the_case_as_it_was(outage, own_pg, launcher, tmp_path,
                                                                          step, point):
    store, engine, run = outage
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    if step is APPLY:
        engine.advance(cid, "explain", "lin.xiao", {"reason": "客户资金周转困难", "responsibility": "设计师沟通不到位"})
    state = engine.read_case(cid).state
    before = snapshot(store, cid)
    victim = run("lin.xiao", "advance", cid, *step, DRIVER_HOLD=point)
    work = victim.workdir
    held = wait_for(work / f"held-{victim.pid}", launcher, victim)
    assert held.startswith(point), held
    own_pg.stop()
    (work / f"go-{victim.pid}").touch()
    [o] = launcher.finish([victim], timeout=120)
    own_pg.start()
    note("db outage", writes_cut_off=1)
    one_line(o, "error: database error, nothing was changed: ")
    assert snapshot(store, cid) == before
    # work continues: this process's pool reconnects, and a new CLI process works too
    assert engine.read_case(cid).state == state
    [again] = launcher.finish([run("lin.xiao", "advance", cid, *step)], timeout=120)
    assert (again.rc, again.stderr) == (0, "")
    assert engine.read_case(cid).state == ("applying" if step is EXPLAIN else "signing")
    assert_all_intact(store, "db outage")


def test_server_stopped_in_the_middle_of_sla_run_loses_no_timer(outage, own_pg, launcher, clock):
    store, engine, run = outage
    ids = [refund_to_signing(engine) for _ in range(3)]
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(timers)).scalar() >= 3   # signer clocks run
    later = (clock.now + timedelta(hours=30)).isoformat()
    victim = run(None, "--json", "sla", "run", CASEFLOW_NOW=later, DRIVER_HOLD="sql UPDATE timers")
    work = victim.workdir
    wait_for(work / f"held-{victim.pid}", launcher, victim)
    own_pg.stop()
    (work / f"go-{victim.pid}").touch()
    [o] = launcher.finish([victim], timeout=120)
    own_pg.start()
    assert o.rc in (1, 5) and o.stderr.startswith("error: ") and "Traceback" not in o.stderr, o.stderr
    [clean] = launcher.finish([run(None, "--json", "sla", "run", CASEFLOW_NOW=later)], timeout=120)
    assert clean.rc == 0, clean.stderr
    [again] = launcher.finish([run(None, "--json", "sla", "run", CASEFLOW_NOW=later)], timeout=120)
    assert json.loads(again.stdout)["handled"] == 0
    with store.engine.connect() as conn:
        status = dict(conn.execute(sa.select(timers.c.case_id, timers.c.status)
                                   .where(timers.c.case_id.in_(ids))).all())
    assert status == {cid: "breached" for cid in ids}
    for cid in ids:
        _, log = snapshot(store, cid)
        assert sum(1 for r in log if is_breach(r)) == 1
    note("db outage", sweeps_cut_off=1)
    assert_all_intact(store, "db outage")


def test_server_stopped_after_some_timers_of_sla_run_says_how_many_were_committed(outage, own_pg, launcher, clock):
    """#14: a sweep cut off after committed firings must not say "nothing was changed"; a rerun continues."""
    store, engine, run = outage
    ids = [refund_to_signing(engine) for _ in range(5)]
    later = (clock.now + timedelta(hours=30)).isoformat()
    # held at the BEGIN of the sweep's third timer transaction: two timers are committed by then
    victim = run(None, "sla", "run", CASEFLOW_NOW=later, DRIVER_HOLD="begin", DRIVER_HOLD_NTH="3")
    wait_for(victim.workdir / f"held-{victim.pid}", launcher, victim)
    own_pg.stop()
    (victim.workdir / f"go-{victim.pid}").touch()
    [o] = launcher.finish([victim], timeout=120)
    own_pg.start()
    assert o.rc == 5 and o.stderr.count("\n") == 1 and "Traceback" not in o.stderr, o.stderr
    assert o.stderr.startswith("error: database error after 2 due timer(s) were handled and committed "
                               "(2 breached); the others were not changed: run `caseflow sla run` again to "
                               "continue ("), o.stderr
    assert "nothing was changed" not in o.stderr
    with store.engine.connect() as conn:
        status = [r for (r,) in conn.execute(sa.select(timers.c.status).where(timers.c.case_id.in_(ids)))]
    assert sorted(status) == ["breached"] * 2 + ["running"] * 3
    [again] = launcher.finish([run(None, "--json", "sla", "run", CASEFLOW_NOW=later)], timeout=120)
    assert (again.rc, json.loads(again.stdout)["breached"]) == (0, 3), again.stderr     # the rerun continues
    for cid in ids:
        _, log = snapshot(store, cid)
        assert sum(1 for r in log if is_breach(r)) == 1
    note("db outage", sweeps_cut_off=1)
    assert_all_intact(store, "db outage")


def wait_for(path: Path, launcher: Launcher, p: Proc, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        rc = launcher.poll([p], 0)[p.pid]
        assert rc is None, f"the victim ended ({rc}) before reaching its hold point: {p.err.read_text()}"
        assert time.monotonic() < deadline, "the victim never reached its hold point"
        time.sleep(0.01)
    time.sleep(0.02)
    return path.read_text(encoding="utf-8")
