"""Run one caseflow CLI command in this process, instrumented for the reliability tests.

Used two ways: as a script (`python driver.py ARGS…`, a full new interpreter per
command) and by forkserver.py (a pre-imported interpreter forks one child per
command, so a test can afford hundreds of processes). Either way the command is
the real CLI (`caseflow.cli.main`) in its own process with its own connections.

Environment (all optional; DRIVER_DIR is where the files below go):

  DRIVER_BARRIER=N   pause at the first Store.write (before its BEGIN) until N processes have got there, so that they collide
                     for real instead of one after another.
  DRIVER_HOLD=NAME   at the first hook point whose name starts with NAME (e.g. "sql UPDATE",
                     "before commit"), write `held-PID` and wait (at most 60 s) until the
                     test writes `go-PID`, then carry on: the test changes the world
                     (e.g. stops the database server) in between.
  DRIVER_HOLD_NTH=N  hold at the N-th such point instead of the first (default 1).
  DRIVER_MAX_MEMORY_MB=M  cap this process's address space, so that a runaway command
                     fails with MemoryError instead of taking the machine down.
  DRIVER_PARK=K      count the hook points of transactions that may write (not Store.read's,
                     not the schema check at start-up) — BEGIN, before each SQL
                     statement, before COMMIT, after the commit — and at the K-th one
                     write `parked-PID` (naming the point) and wait to be killed; the
                     test SIGKILLs us there.
                     With fewer than K points the command just completes.

The hook points passed are appended to `points-PID`, so a test can learn how many
points a command has and where a kill landed.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from caseflow.cli.main import main
from caseflow.store import database as store_mod
from caseflow.store import migrate as migrate_mod


def install() -> None:
    """Patch this process (a fresh one: never call twice) according to DRIVER_* variables."""
    memory = int(os.environ.get("DRIVER_MAX_MEMORY_MB", "0"))
    if memory:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory << 20, memory << 20))
    work = Path(os.environ.get("DRIVER_DIR", "."))
    barrier_n = int(os.environ.get("DRIVER_BARRIER", "0"))
    park_at = int(os.environ.get("DRIVER_PARK", "0"))
    hold_at = os.environ.get("DRIVER_HOLD", "")
    if not (barrier_n or park_at or hold_at):
        return
    pid = os.getpid()
    log = open(work / f"points-{pid}", "a", encoding="utf-8")
    state = {"passed": 0, "writing": 0, "barrier": bool(barrier_n), "held": False, "matches": 0}
    hold_nth = int(os.environ.get("DRIVER_HOLD_NTH", "1"))

    def hook(name: str) -> None:
        if not state["writing"] and name != "committed":
            return                     # reads and the schema check are not write points
        state["passed"] += 1
        log.write(f"{state['passed']} {name}\n")
        log.flush()
        if park_at and state["passed"] == park_at:
            (work / f"parking-{pid}").write_text(name, encoding="utf-8")
            os.rename(work / f"parking-{pid}", work / f"parked-{pid}")      # appears whole
            time.sleep(120)            # the test kills us long before this
            os._exit(99)               # never continue past a park point
        if hold_at and not state["held"] and name.startswith(hold_at):
            state["matches"] += 1
        if hold_at and not state["held"] and name.startswith(hold_at) and state["matches"] == hold_nth:
            state["held"] = True
            (work / f"held-{pid}").write_text(name, encoding="utf-8")
            deadline = time.monotonic() + 60
            while not (work / f"go-{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.01)

    def barrier() -> None:
        if not state["barrier"]:
            return
        state["barrier"] = False
        (work / f"ready-{pid}").touch()
        deadline = time.monotonic() + 30
        while len(list(work.glob("ready-*"))) < barrier_n and time.monotonic() < deadline:
            time.sleep(0.002)

    original_write = store_mod.Store.write

    @contextmanager
    def write_after_barrier(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        barrier()
        state["store_write"] = state.get("store_write", 0) + 1    # (an action's connection keeps its read options)
        try:
            with original_write(self, *args, **kwargs) as conn:
                yield conn
        finally:
            state["store_write"] -= 1

    # Hook points: every transaction that may write (not Store.read's, not the schema check at
    # start-up) — its BEGIN, each SQL statement, just before COMMIT, just after it.
    original_current = migrate_mod.current

    def quiet_current(store):  # noqa: ANN001, ANN202
        state["quiet"] = True
        try:
            return original_current(store)
        finally:
            state["quiet"] = False

    def on_begin(conn):  # noqa: ANN001
        writes = state.get("store_write") or not conn.get_execution_options().get("caseflow_readonly")
        if writes and not state.get("quiet"):
            state["writing"] = 1
            hook("begin")

    def before_sql(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        hook("sql " + " ".join(statement.split()[:3])[:60])

    def before_commit(conn):  # noqa: ANN001
        if state["writing"]:
            hook("before commit")

    def on_rollback(conn):  # noqa: ANN001
        state["writing"] = 0

    original_commit = sa.engine.Connection._commit_impl

    def commit_then_hook(self):  # noqa: ANN001, ANN202
        was = state["writing"]
        original_commit(self)
        if was:
            state["writing"] = 0
            hook("committed")

    store_mod.Store.write = write_after_barrier
    migrate_mod.current = quiet_current
    sa.engine.Connection._commit_impl = commit_then_hook
    sa.event.listen(sa.engine.Engine, "begin", on_begin)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before_sql)
    sa.event.listen(sa.engine.Engine, "commit", before_commit)
    sa.event.listen(sa.engine.Engine, "rollback", on_rollback)


def run(argv: list[str]) -> int:
    install()
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
