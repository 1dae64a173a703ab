"""Shared helpers for the reliability suite: figures, real processes, and the invariants.

The invariants are what every reliability test ends with, whatever it did to
the engine: every audit chain recomputes (hashes, links, seq numbering), the
refused-attempts chain recomputes, and every case row agrees with its own log
(the last state-changing row ends where the case is, and the version counts the
commits). `caseflow audit verify` (engine/verify.py) is run on top when it exists.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from caseflow.audit.chain import ATTEMPT_HASHED, GENESIS, row_hash
from caseflow.catalog import SHIPPED
from caseflow.store.database import Store
from caseflow.store.tables import attempts, audit, cases

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "driver.py"
REPO = HERE.parent.parent

# area -> figure -> count; printed by conftest's pytest_terminal_summary.
FIGURES: dict[str, Counter[str]] = defaultdict(Counter)


def note(area: str, **counts: int) -> None:
    """Add to the figures this suite reports at the end of the run."""
    FIGURES[area].update(counts)


# -- real processes --------------------------------------------------------------------------

@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str


def _without_notice(stderr: str) -> str:
    """A process that queued for the write lock over a second says so first (store/locks.py): under a
    race that is expected, so the outcome is what it printed besides; the notices are counted."""
    from caseflow.store.locks import NOTICE
    kept = [line for line in stderr.splitlines(keepends=True) if line.rstrip("\n") != NOTICE]
    if len(kept) < len(stderr.splitlines(keepends=True)):
        note("lock waits", notices=1)
    return "".join(kept)


@dataclass
class Proc:
    """One CLI process we started: its pid, where its output goes, and how to reap it."""

    pid: int
    out: Path
    err: Path
    workdir: Path            # its DRIVER_DIR: barrier, park and hold files
    popen: subprocess.Popen[bytes] | None = None


class Launcher:
    """Starts CLI processes under driver.py: forked from a pre-imported server (default, fast)
    or as brand-new interpreters (RELIABILITY_SUBPROCESS=1, slow, for a fully faithful run)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.fresh = os.environ.get("RELIABILITY_SUBPROCESS") == "1"
        self.server: subprocess.Popen[str] | None = None
        self.started = 0
        self.running: dict[int, Proc] = {}      # started and not reaped yet
        if not self.fresh:
            env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
            self.server = subprocess.Popen([sys.executable, "-m", "tests.reliability.forkserver"], cwd=str(REPO),
                                           env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.server and self.server.stdin and self.server.stdout
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        line = self.server.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died")
        return json.loads(line)

    def start(self, argv: Sequence[str], env: dict[str, str]) -> Proc:
        self.started += 1
        out = self.workdir / f"out-{self.started}"
        err = self.workdir / f"err-{self.started}"
        if self.fresh:
            with open(out, "wb") as o, open(err, "wb") as e:
                p = subprocess.Popen([sys.executable, str(DRIVER), *argv], env=env, cwd=str(REPO),
                                     stdin=subprocess.DEVNULL, stdout=o, stderr=e, start_new_session=True)
            proc = Proc(p.pid, out, err, Path(env.get("DRIVER_DIR", ".")), p)
        else:
            pid = self._ask({"argv": list(argv), "env": env, "out": str(out), "err": str(err)})["pid"]
            proc = Proc(pid, out, err, Path(env.get("DRIVER_DIR", ".")))
        self.running[proc.pid] = proc
        return proc

    def poll(self, procs: Sequence[Proc], timeout: float) -> dict[int, int | None]:
        """Exit codes of the procs that have ended within timeout (None for the others)."""
        rcs = self._poll(procs, timeout)
        for pid, rc in rcs.items():
            if rc is not None:
                self.running.pop(pid, None)
        return rcs

    def _poll(self, procs: Sequence[Proc], timeout: float) -> dict[int, int | None]:
        if self.fresh:
            deadline = time.monotonic() + timeout
            rcs: dict[int, int | None] = {}
            for p in procs:
                assert p.popen is not None
                try:
                    rcs[p.pid] = p.popen.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    rcs[p.pid] = None
            return rcs
        return {int(k): v for k, v in self._ask({"wait": [p.pid for p in procs], "timeout": timeout})["rcs"].items()}

    def finish(self, procs: Sequence[Proc], timeout: float = 90) -> list[Outcome]:
        """Wait for every process (bounded); kill and fail on the ones that overstay."""
        rcs = self.poll(procs, timeout)
        late = [p for p in procs if rcs[p.pid] is None]
        for p in late:
            self.kill(p)
        outcomes = [Outcome(rcs[p.pid] if rcs[p.pid] is not None else -9, _text(p.out), _without_notice(_text(p.err)))
                    for p in procs]
        if late:
            raise AssertionError(f"{len(late)} process(es) did not finish in {timeout}s: "
                                 f"{[o.stderr[-500:] for o in outcomes]}")
        return outcomes

    def kill(self, p: Proc) -> int | None:
        """SIGKILL one process we started (its own session) and have not reaped yet, then reap it."""
        if p.pid not in self.running:
            return None                          # already reaped: the pid may belong to someone else now
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.poll([p], 10)[p.pid]

    def close(self) -> None:
        """Kill whatever a failed test left running (unreaped, so the pid is still ours), then stop."""
        for p in list(self.running.values()):
            self.kill(p)
        if self.server and self.server.stdin:
            self.server.stdin.close()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(10)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def driver_env(db_url: str, workdir: Path, user: str | None = None, workflows: Path | None = None,
               **extra: str | int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEFLOW_", "DRIVER_"))}
    env.update({"CASEFLOW_DB": db_url, "CASEFLOW_WORKFLOWS": str(workflows or SHIPPED),
                "DRIVER_DIR": str(workdir),
                "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", "")})
    env["CASEFLOW_USER"] = user or "wei.hua"      # an auditor for commands that are no one's action
    env.update({k: str(v) for k, v in extra.items()})
    return env


# -- invariants ------------------------------------------------------------------------------

def _rows(conn: sa.Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


def chain_problems(store: Store) -> list[str]:
    """Recompute every case's audit chain and the attempts chain; [] when all intact."""
    problems: list[str] = []
    with store.engine.connect() as conn:
        rows = _rows(conn, sa.select(audit).order_by(audit.c.case_id, audit.c.seq))
        tried = _rows(conn, sa.select(attempts).order_by(attempts.c.id))
    by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_case[r["case_id"]].append(r)
    for cid, chain in by_case.items():
        prev = GENESIS
        for i, r in enumerate(chain, 1):
            if r["seq"] != i:
                problems.append(f"{cid}: row {r['id']} has seq {r['seq']}, expected {i}")
            if r["prev_hash"] != prev:
                problems.append(f"{cid} seq {r['seq']}: prev_hash does not link to the row before")
            if row_hash(r) != r["hash"]:
                problems.append(f"{cid} seq {r['seq']}: hash does not match the row")
            prev = r["hash"]
    prev = GENESIS
    for r in tried:
        if r["prev_hash"] != prev:
            problems.append(f"attempts id {r['id']}: prev_hash does not link to the attempt before")
        if row_hash(r, ATTEMPT_HASHED) != r["hash"]:
            problems.append(f"attempts id {r['id']}: hash does not match the row")
        prev = r["hash"]
    return problems


MOVES = ("open", "transition", "reject", "migrate")      # migrate: a case moved to another version


def commits_in(log: list[dict[str, Any]]) -> int:
    """How many committed actions a case's log records (what its version counts).

    open, transition and reject rows are one commit each; a sign-off that did not
    fire the transition is its own commit, while the last signature is written
    just before its transition row, in the same commit; an assign / claim /
    release row is one commit too.
    """
    return sum(1 for i, r in enumerate(log) if r["kind"] in MOVES or r["kind"] == "assign"
               or (r["kind"] == "signoff" and (i + 1 == len(log) or log[i + 1]["kind"] != "transition")))


def case_problems(store: Store, case_ids: Iterable[str] | None = None) -> list[str]:
    """Every case row agrees with its log: state = last move's target, version = commits."""
    problems = []
    with store.engine.connect() as conn:
        rows = _rows(conn, sa.select(cases))
        logs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in _rows(conn, sa.select(audit).order_by(audit.c.case_id, audit.c.seq)):
            logs[r["case_id"]].append(r)
    wanted = set(case_ids) if case_ids is not None else None
    for c in rows:
        if wanted is not None and c["id"] not in wanted:
            continue
        log = logs.get(c["id"], [])
        moves = [r for r in log if r["kind"] in MOVES]
        if not moves:
            problems.append(f"{c['id']}: case row without an open row in its log")
            continue
        if moves[-1]["to_state"] != c["state"]:
            problems.append(f"{c['id']}: state {c['state']} but its log ends in {moves[-1]['to_state']}")
        if commits_in(log) != c["version"]:
            problems.append(f"{c['id']}: version {c['version']} but its log records {commits_in(log)} commits")
    orphans = set(logs) - {c["id"] for c in rows}
    problems += [f"{cid}: log rows without a case" for cid in sorted(orphans)]
    return problems


def verify_problems(store: Store) -> list[str] | None:
    """`caseflow audit verify` through the library, or None while engine/verify.py does not exist."""
    try:
        from caseflow.audit import verify
    except ModuleNotFoundError as exc:
        if exc.name == "caseflow.audit.verify":
            return None
        raise
    report = verify.verify(store)
    return [str(p) for p in report.problems]


def assert_all_intact(store: Store, area: str) -> None:
    """The end state of every reliability test: chains, cases and `audit verify` clean."""
    problems = chain_problems(store) + case_problems(store)
    assert problems == [], "\n".join(problems[:20])
    checked = verify_problems(store)
    if checked is None:
        note("audit verify", unavailable=1)
    else:
        assert checked == [], "\n".join(checked[:20])
        note("audit verify", runs_clean=1)
    with store.engine.connect() as conn:
        note(area, chains_checked=conn.execute(sa.select(sa.func.count(sa.distinct(audit.c.case_id)))).scalar())


def is_breach(row: dict[str, Any]) -> bool:
    """An audit row recording that an SLA went past its deadline (its status changed to breached)."""
    try:
        changes = json.loads(row["changes"] or "{}")
    except ValueError:
        return False
    status = changes.get("status") if isinstance(changes, dict) else None
    return row["kind"] == "sla" and isinstance(status, list) and status[-1:] == ["breached"]


def snapshot(store: Store, case_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).one()
        log = _rows(conn, sa.select(audit).where(audit.c.case_id == case_id).order_by(audit.c.seq))
    return dict(row._mapping), log


def count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
