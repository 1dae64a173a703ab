"""A process killed with SIGKILL at any point of a write leaves each case before or after it.

The victim is the real CLI under driver.py, told to stop at its K-th write hook
point (entering the write, before each SQL statement, before COMMIT, after the
commit) with K drawn at random; the test then SIGKILLs it there. A kill at any
point up to and including "before commit" must leave the case, its log, its
timers and the penalty counters exactly as they were; a kill after the commit
must leave exactly the whole transition. On PostgreSQL a step that writes only the case row and its
log is one statement in autocommit (`WITH u AS (UPDATE cases …) INSERT INTO audit …`, store/driver_sql.py),
which is its commit: a kill after that statement leaves the whole transition. Kills run on several cases at once,
so a killed writer also holds up (SQLite lock, PostgreSQL row locks) the others.
Then the same cases are run to the end: work continues after any crash.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from caseflow.store.database import Store
from caseflow.store.tables import decision_counts, outbox, timers

from ..helpers import SIGNERS, open_refund, refund_to_signing
from .support import Launcher, Proc, assert_all_intact, driver_env, is_breach, note, snapshot

KILLS = int(os.environ.get("RELIABILITY_KILLS", "20"))       # per backend, of the sweeper
SEED = int(os.environ.get("RELIABILITY_SEED", str(random.randrange(1 << 30))))
EXPLAIN = ["--set", "reason=客户资金周转困难", "--set", "responsibility=设计师沟通不到位",
           "--set", "responsibility_code=A4", "--set", "responsible_person=xu.peng"]
# (user, argv after the case id is filled in, state after) — the whole refund, path A
STEPS = [
    ("wang.fang", ["advance", "{cid}", "start_before_work"], "terminating"),
    ("lin.xiao", ["advance", "{cid}", "sign_termination"], "explaining"),
    ("lin.xiao", ["advance", "{cid}", "explain", *EXPLAIN], "applying"),
    ("lin.xiao", ["advance", "{cid}", "apply", "--set", "refund_amount=20000"], "signing"),
    *[(who, ["sign", "{cid}"], "signing") for who, _ in SIGNERS[:-1]],
    (SIGNERS[-1][0], ["sign", "{cid}"], "approved"),
    ("cao.ying", ["advance", "{cid}", "pay", "--set", "payment_ref=P-2025-001"], "paid"),
]


@dataclass
class Victim:
    proc: Proc
    point: str | None = None          # where it was parked (and killed); None if it completed
    rc: int | None = None


def run_to_park(launcher: Launcher, workdir: Path, jobs: list[tuple[list[str], dict[str, str]]],
                timeout: float = 60) -> list[Victim]:
    """Start every job; SIGKILL each one as soon as it parks; reap the ones that complete."""
    victims = [Victim(launcher.start(argv, env)) for argv, env in jobs]
    deadline = time.monotonic() + timeout
    pending = list(victims)
    while pending:
        assert time.monotonic() < deadline, "victims neither parked nor finished in time"
        for v in list(pending):
            parked = workdir / f"parked-{v.proc.pid}"
            if parked.exists():
                v.point = parked.read_text(encoding="utf-8")
                v.rc = launcher.kill(v.proc)
                assert v.rc == -9, f"killed at {v.point} but exit code {v.rc}"
                pending.remove(v)
                continue
            rc = launcher.poll([v.proc], 0)[v.proc.pid]
            if rc is not None:
                v.rc = rc
                pending.remove(v)
        time.sleep(0.003)
    return victims


def points_of(workdir: Path, v: Victim) -> int:
    lines = (workdir / f"points-{v.proc.pid}").read_text(encoding="utf-8").splitlines()
    return len(lines)


@dataclass
class Track:
    cid: str
    step: int = 0
    explained: bool = False
    killed: bool = False          # killed once at its current step (and left before it): the next run completes


def everything_of(store: Store, cid: str) -> tuple[Any, ...]:
    """The case row, its log, its clocks and its notifications: all written in one transaction."""
    row, log = snapshot(store, cid)
    with store.engine.connect() as conn:
        clocks = [dict(r._mapping) for r in conn.execute(sa.select(timers).where(timers.c.case_id == cid)
                                                         .order_by(timers.c.id))]
        sent = [dict(r._mapping) for r in conn.execute(sa.select(outbox).where(outbox.c.case_id == cid)
                                                       .order_by(outbox.c.id))]
    return row, log, clocks, sent


def _committed_by_statement(workdir: Path, v: Victim) -> bool:
    """The victim's write was one statement in autocommit (its own commit), per the points it passed."""
    points = [line.split(" ", 1)[-1] for line in
              (workdir / f"points-{v.proc.pid}").read_text(encoding="utf-8").splitlines()]
    return "sql BEGIN" not in points and any(p.startswith("sql WITH u AS") for p in points)


def test_kill_during_advance_and_sign_leaves_each_case_before_or_after(db_url, engine, store, clock, tmp_path,
                                                                       launcher, light_workflows):
    rng = random.Random(SEED)
    tracks = [Track(open_refund(engine, order_no=f"D-CRASH-{i}")) for i in range(3)]
    reach = {i: 14 for i in range(len(STEPS))}        # hook points per step, learned as we go
    kills = completed = rounds = left_before = left_after = 0
    landed: dict[str, int] = {}
    # Each track's every step is killed once at a random hook point, then (if that left the case before the
    # step) run to the end. Track i starts in round i + 1, so a step's hook points are learned from the track
    # ahead (`reach`) before the next one takes it, and its kill point is one the step has: in lockstep every
    # track took each step with the first guess, and some seeds killed only 3 runs in 9 rounds.
    while rounds < 2 * len(STEPS) + len(tracks) and any(t.step < len(STEPS) for t in tracks):
        rounds += 1
        work = tmp_path / f"round-{rounds}"
        work.mkdir()
        live = [t for i, t in enumerate(tracks) if t.step < len(STEPS) and rounds > i]
        jobs, before = [], {}
        for t in live:
            user, argv, _ = STEPS[t.step]
            # after its kill, a park point past the step's last: the run completes (and counts the points)
            k = 10 ** 6 if t.killed else rng.randint(1, reach[t.step])
            jobs.append(([a.format(cid=t.cid) for a in argv],
                         driver_env(db_url, work, user, light_workflows, DRIVER_PARK=k,
                                    CASEFLOW_NOW=clock.now.isoformat())))
            before[t.cid] = everything_of(store, t.cid)
        counter_before = _counter(store)
        victims = run_to_park(launcher, work, jobs)
        for t, v in zip(live, victims):
            now_all = everything_of(store, t.cid)
            (row, log, clocks, sent), (old_row, old_log, _, old_sent) = now_all, before[t.cid]
            if v.point is None:
                assert v.rc == 0, f"seed {SEED}: step {STEPS[t.step][1]} exited {v.rc}"
                reach[t.step] = points_of(work, v)
                completed += 1
            else:
                kills += 1
                kind = "sql_statement" if v.point.startswith("sql") else v.point.replace(" ", "_")
                landed[kind] = landed.get(kind, 0) + 1
            after = v.point is None or v.point == "committed" or (v.point == "before commit"
                                                                   and _committed_by_statement(work, v))
            where = f"seed {SEED}, case {t.cid}, {' '.join(STEPS[t.step][1][:3])}, killed at {v.point!r}"
            if not after:
                assert now_all == before[t.cid], f"{where}: the case, its log, clocks or notifications changed"
                left_before += v.point is not None
                t.killed = True
                continue
            assert row["version"] == old_row["version"] + 1, where
            assert row["state"] == STEPS[t.step][2], where
            assert log[:len(old_log)] == old_log, f"{where}: earlier log rows changed"
            assert sent[:len(old_sent)] == old_sent, f"{where}: earlier notifications changed"
            running = [c["name"] for c in clocks if c["status"] == "running"]
            assert running == (["signoff_24h"] if row["state"] == "signing" else []), f"{where}: clocks {running}"
            left_after += v.point is not None
            t.explained = t.explained or STEPS[t.step][1][2:3] == ["explain"]
            t.step, t.killed = t.step + 1, False
        # the shared penalty counter counts committed explains only, whatever was killed
        assert _counter(store) == sum(t.explained for t in tracks), \
            f"seed {SEED}: the penalty counter went {counter_before} → {_counter(store)}"
        assert_all_intact(store, "crash")
    note("crash", advance_kills_survived=kills, advance_runs_completed=completed,
         kills_left_case_before=left_before, kills_left_case_after=left_after)
    note("crash kill points", **landed)
    assert all(t.step == len(STEPS) for t in tracks), f"seed {SEED}: not every step was run in {rounds} rounds"
    assert kills >= len(STEPS), f"seed {SEED}: only {kills} kills in {rounds} rounds"     # (about 2 of 3 runs)

    # work continues: finish every case through the library, from wherever it was left
    for t in tracks:
        for user, argv, _to in STEPS[t.step:]:
            if argv[0] == "sign":
                engine.sign(t.cid, user)
            else:
                sets = dict(a.split("=", 1) for a in argv[4::2]) if len(argv) > 3 else {}
                engine.advance(t.cid, argv[2], user, sets)
        assert engine.read_case(t.cid).state == "paid"
    assert _counter(store) == len(tracks)
    assert_all_intact(store, "crash")


def _counter(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(decision_counts.c.count), 0))
                            .where(decision_counts.c.key == "xu.peng")).scalar()


# -- the sweeper ------------------------------------------------------------------------------

def test_kill_during_sla_run_fires_every_timer_exactly_once(db_url, engine, store, clock, tmp_path,
                                                            launcher, light_workflows):
    rng = random.Random(SEED + 1)
    ids: list[str] = []
    logs_before: dict = {}

    def more_due_timers() -> int:
        fresh = [refund_to_signing(engine) for _ in range(4)]
        ids.extend(fresh)
        logs_before.update({cid: snapshot(store, cid) for cid in fresh})
        with store.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(timers).where(
                timers.c.status == "running", timers.c.case_id.in_(fresh))).scalar()

    assert more_due_timers() == 4                 # each refund in signing runs its signer clock
    when = (clock.now + timedelta(hours=30)).isoformat()
    per_timer, due, kills, runs = 12, 4, 0, 0
    while kills < KILLS // 2 and runs < 2 * KILLS:
        runs += 1
        work = tmp_path / f"sweep-{runs}"
        work.mkdir()
        env = driver_env(db_url, work, None, light_workflows, DRIVER_PARK=rng.randint(1, per_timer * due),
                         CASEFLOW_NOW=when)
        [v] = run_to_park(launcher, work, [(["--json", "sla", "run"], env)])
        if v.point is None:
            assert v.rc == 0, f"seed {SEED}: sla run exited {v.rc}"
            per_timer = max(4, points_of(work, v) // max(1, due))
            due = more_due_timers()            # everything was handled: give the next victims work
        else:
            kills += 1
        _no_timer_twice(store, ids, logs_before)
        assert_all_intact(store, "crash")
    note("crash", sla_run_kills_survived=kills, sla_runs=runs, sla_timers=len(ids))
    assert kills >= min(KILLS // 2, 5), f"seed {SEED}: only {kills} sweeper kills in {runs} runs"

    # a clean run finishes the work; a second one finds nothing due
    work = tmp_path / "sweep-final"
    work.mkdir()
    env = driver_env(db_url, work, None, light_workflows, CASEFLOW_NOW=when)
    [first] = launcher.finish([launcher.start(["--json", "sla", "run"], env)])
    assert first.rc == 0, first.stderr
    [again] = launcher.finish([launcher.start(["--json", "sla", "run"], env)])
    assert again.rc == 0 and json.loads(again.stdout)["handled"] == 0, again.stdout
    _no_timer_twice(store, ids, logs_before, complete=True)
    assert_all_intact(store, "crash")


def _no_timer_twice(store: Store, ids: list[str], before: dict, complete: bool = False) -> None:
    """No breach recorded twice (log, notifications); with complete=True every breach recorded once."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(timers).where(timers.c.case_id.in_(ids))).all()
        notes = conn.execute(sa.select(outbox.c.case_id, outbox.c.role, outbox.c.message)
                             .where(outbox.c.case_id.in_(ids))).all()
    for cid in ids:
        _, old_log = before[cid]
        _, log = snapshot(store, cid)
        added = [(r["kind"], r["event"], r["note"], r["changes"]) for r in log[len(old_log):]]
        assert len(added) == len(set(added)), f"seed {SEED}: {cid} has a timer entry twice: {added}"
        breaches = [r for r in log[len(old_log):] if is_breach(r)]
        status = {r.name: r.status for r in rows if r.case_id == cid}
        assert len(breaches) == (1 if status.get("signoff_24h") == "breached" else 0), (cid, status, added)
        if complete:
            assert status.get("signoff_24h") == "breached" and len(breaches) == 1, (cid, status, added)
    assert len(notes) == len(set(notes)), f"seed {SEED}: a notification was sent twice"
    if complete:
        supervisor = [n for n in notes if n.role == "cs_supervisor"]
        assert sorted(n.case_id for n in supervisor) == sorted(ids)
