"""Faults (#14): reads open the database read-only, a lock wait says so and has a timeout, a sweep cut
off part-way says what it committed (docs/security.md, "Faults").

Real databases throughout: SQLite files (a read-only evidence copy is a real file nobody may write; as
root the reading process runs as `nobody`, because root may write anything), and PostgreSQL, where a
read-only copy is a session whose transactions are read-only (what a hot standby gives).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from caseflow.catalog import SHIPPED
from caseflow.errors import SweepCutOff
from caseflow.runtime.engine import Engine
from caseflow.runtime.sweep import sweep
from caseflow.store.backend import READONLY
from caseflow.store.database import Store
from caseflow.store.locks import NOTICE
from caseflow.store.tables import audit, timers

from .conftest import PG_URL, snapshot
from .helpers import open_refund, refund_to_signing

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534


def _cli(db: str, *args: str, user: str = "wei.hua", as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    """The real CLI in a new process (as `nobody` when asked and we are root)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEFLOW_")}
    cache = tempfile.mkdtemp(prefix="caseflow-ro-cache-")
    os.chmod(cache, 0o777)
    env.update({"CASEFLOW_DB": db, "CASEFLOW_WORKFLOWS": str(SHIPPED), "CASEFLOW_USER": user,
                "CASEFLOW_CACHE_DIR": cache, "HOME": cache,
                "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", "")})
    command = [sys.executable, "-c", "from caseflow.cli.main import main; main()", *args]
    if as_nobody and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "running as root: setpriv (util-linux) is needed to read the copy as nobody"
        command = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    opened = _let_nobody_reach() if as_nobody and os.geteuid() == 0 else []
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        for path, mode in opened:
            os.chmod(path, mode)


def _let_nobody_reach() -> list[tuple[Path, int]]:
    """`nobody` must be able to reach the checkout and its venv (a clone under `mktemp -d` is 0700):
    add search permission (o+x, no listing) to each ancestor lacking it; the caller restores the modes."""
    opened: list[tuple[Path, int]] = []
    for start in (REPO.resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent):
        for directory in (start, *start.parents):
            mode = directory.stat().st_mode & 0o7777
            if not mode & 0o001 and all(directory != p for p, _ in opened):
                os.chmod(directory, mode | 0o001)
                opened.append((directory, mode))
    return opened


@pytest.fixture
def evidence_copy(shipped_catalog, clock) -> Iterator[tuple[Path, str]]:  # noqa: ANN001
    """A SQLite database with cases in several states, copied into a directory nobody may write."""
    live = Path(tempfile.mkdtemp(prefix="caseflow-live-"))
    store = Store(f"sqlite:///{live / 'caseflow.db'}")
    store.migrate(simulation=True)
    engine = Engine(store, shipped_catalog, clock)
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao")
    open_refund(engine)
    store.dispose()                                   # the last connection checkpoints and removes the WAL
    evidence = Path(tempfile.mkdtemp(prefix="caseflow-evidence-"))
    os.chmod(evidence, 0o755)
    shutil.copy(live / "caseflow.db", evidence / "caseflow.db")
    os.chmod(evidence / "caseflow.db", 0o444)
    os.chmod(evidence, 0o555)                         # chmod a-w, file and directory
    yield evidence, cid
    os.chmod(evidence, 0o755)
    shutil.rmtree(evidence, ignore_errors=True)
    shutil.rmtree(live, ignore_errors=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_only_commands_work_on_a_read_only_evidence_copy(evidence_copy):
    evidence, cid = evidence_copy
    db, before = f"sqlite:///{evidence / 'caseflow.db'}", _digest(evidence / "caseflow.db")
    if os.geteuid() != 0:      # as the owner, chmod alone makes it read-only
        assert not os.access(evidence / "caseflow.db", os.W_OK)
    verified = _cli(db, "audit", "verify", as_nobody=True)
    assert (verified.returncode, verified.stderr) == (0, ""), verified.stderr
    assert verified.stdout.startswith("ok: audit log intact — 2 cases"), verified.stdout
    for args in (["list"], ["show", cid], ["history", cid], ["audit", "--case", cid], ["report", "sla"],
                 ["sla", "status"], ["export", "--format", "csv"]):
        r = _cli(db, *args, as_nobody=True)
        assert (r.returncode, r.stderr) == (0, ""), (args, r.stderr)
        assert r.stdout.strip(), args
    assert cid in _cli(db, "list", as_nobody=True).stdout
    # a write on the copy is one line, exit 5, and the copy is byte for byte what it was
    r = _cli(db, "sign", cid, user="gao.feng", as_nobody=True)
    assert r.returncode == 5 and r.stderr.startswith("error: database error") and r.stderr.count("\n") == 1, \
        r.stderr
    assert _digest(evidence / "caseflow.db") == before
    assert sorted(p.name for p in evidence.iterdir()) == ["caseflow.db"]       # no -wal, no -shm left behind


def test_a_read_only_store_never_writes(store, engine, db_url):  # noqa: ANN001
    """SQLite `mode=ro` (and query_only); PostgreSQL READ ONLY transactions — reads included."""
    cid = open_refund(engine)
    reader = Store(db_url, readonly=True)
    try:
        with reader.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar() == 1
        with pytest.raises(sa.exc.DBAPIError, match="(?i)read-?only"):
            with reader.engine.begin() as conn:
                conn.execute(audit.delete())          # not even the engine's connection may write
        with pytest.raises(sa.exc.DBAPIError, match="(?i)read-?only"):
            with reader.engine.connect() as conn:
                conn.execution_options(**reader.backend.single_read_options()).execute(
                    timers.update().values(status="met"))
    finally:
        reader.dispose()
    assert engine.read_case(cid).version == 1


@pytest.fixture
def standby_url(db_url: str) -> str:
    """The test database seen the way a PostgreSQL hot standby (a read-only copy) sees it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL read-only session; SQLite's read-only copy is the test above")
    return db_url + "%20-cdefault_transaction_read_only%3Don"


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_clean_postgresql_database_verifies_ok_from_a_read_only_session(run, engine, standby_url):  # noqa: ANN001
    assert PG_URL
    cid = refund_to_signing(engine)
    engine.sign(cid, "lin.xiao")
    store = engine.store
    before = snapshot(store, cid)
    r = _cli(standby_url, "audit", "verify")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout.startswith("ok: audit log intact — 1 cases"), r.stdout
    for args in (["list"], ["show", cid], ["history", cid], ["report", "sla"]):
        r = _cli(standby_url, *args)
        assert (r.returncode, r.stderr) == (0, ""), (args, r.stderr)
    r = _cli(standby_url, "sign", cid, user="gao.feng")
    assert r.returncode == 5 and r.stderr.startswith("error: database error") and r.stderr.count("\n") == 1, \
        r.stderr
    assert snapshot(store, cid) == before


# -- waiting for a lock ------------------------------------------------------------------------

@contextmanager
def write_lock_held(db_url: str) -> Iterator[None]:
    """Another connection holding SQLite's write lock (BEGIN IMMEDIATE), as another process's writer does."""
    holder = sqlite3.connect(sa.engine.make_url(db_url).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_reads_never_wait_for_the_write_lock(run, engine, db_url):  # noqa: ANN001
    cid = refund_to_signing(engine)
    with write_lock_held(db_url):
        for args in (["list"], ["show", cid], ["history", cid], ["inbox"], ["audit", "verify"], ["report", "sla"],
                     ["audit", "--case", cid]):
            r = run("--lock-timeout", "0", *args)      # a wait of any length would time out at once
            assert (r.exit_code, r.stderr) == (0, ""), (args, r.stderr)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_write_waiting_for_the_sqlite_lock_says_so_then_gives_up_changing_nothing(run, engine, store,
                                                                                    db_url):  # noqa: ANN001
    cid = open_refund(engine)
    before = snapshot(store, cid)
    with write_lock_held(db_url):
        waited = run("--lock-timeout", "1.5", "--as", "wang.fang", "advance", cid, "start_before_work")
        quick = run("--as", "wang.fang", "advance", cid, "start_before_work", "--lock-timeout", "0.2")
    assert waited.exit_code == 6, waited.stderr
    assert waited.stderr.splitlines() == [
        NOTICE, "error: the database is locked by another process; gave up after 1.5 s, nothing was changed "
                "(retry, or wait longer with --lock-timeout / CASEFLOW_LOCK_TIMEOUT)"]
    assert quick.exit_code == 6 and NOTICE not in quick.stderr, quick.stderr     # gave up before a second
    assert snapshot(store, cid) == before
    assert run("--as", "wang.fang", "advance", cid, "start_before_work").exit_code == 0    # free again: it works


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_lock_timeout_comes_from_the_environment_too(run, engine, store, db_url, monkeypatch):  # noqa: ANN001
    cid = open_refund(engine)
    monkeypatch.setenv("CASEFLOW_LOCK_TIMEOUT", "0")
    with write_lock_held(db_url):
        r = run("--as", "wang.fang", "advance", cid, "start_before_work")
    assert r.exit_code == 6 and "gave up after 0 s" in r.stderr, r.stderr
    bad = run("--lock-timeout", "soon", "list")
    assert (bad.exit_code, bad.stderr) == (2, "error: --lock-timeout 'soon': expected seconds from 0 to 86400 "
                                              "(default 30; also CASEFLOW_LOCK_TIMEOUT)\n")


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_write_waiting_for_a_postgresql_row_lock_says_so_then_gives_up_changing_nothing(run, engine, store,
                                                                                          db_url):  # noqa: ANN001
    cid = open_refund(engine)
    before = snapshot(store, cid)
    holder = sa.create_engine(db_url)
    try:
        with holder.connect() as conn:                # another session holds the case row
            conn.execute(sa.text("SELECT id FROM cases WHERE id = :id FOR UPDATE"), {"id": cid})
            r = run("--lock-timeout", "2", "--as", "wang.fang", "advance", cid, "start_before_work")
            conn.rollback()
    finally:
        holder.dispose()
    assert r.exit_code == 6, r.stderr
    assert r.stderr.splitlines() == [NOTICE, "error: the database is locked by another process; gave up after 2 s, "
                                     "nothing was changed (retry, or wait longer with --lock-timeout / "
                                     "CASEFLOW_LOCK_TIMEOUT)"]
    assert snapshot(store, cid) == before
    assert run("--as", "wang.fang", "advance", cid, "start_before_work").exit_code == 0    # free again: it works


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_read_behind_an_exclusive_lock_says_so_then_gives_up(run, engine, db_url):  # noqa: ANN001
    """A PostgreSQL read waits only for an exclusive table lock (a migration, a VACUUM FULL): said and limited too."""
    open_refund(engine)
    holder = sa.create_engine(db_url)
    try:
        with holder.connect() as conn:
            conn.execute(sa.text("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE"))
            r = run("--lock-timeout", "2", "list")
            conn.rollback()
    finally:
        holder.dispose()
    assert r.exit_code == 6, r.stderr
    assert r.stderr.splitlines()[0] == NOTICE and r.stderr.count("\n") == 2, r.stderr
    assert run("list").exit_code == 0


# -- a sweep cut off part-way --------------------------------------------------------------------

def test_a_sweep_cut_off_part_way_says_what_it_committed_and_a_rerun_continues(engine, store, clock):  # noqa: ANN001
    """The database fails at the third write transaction of the sweep (a fault at the storage seam)."""
    ids = [refund_to_signing(engine) for _ in range(5)]
    later = clock.now + timedelta(hours=30)
    writes = {"n": 0}

    def fail_third_write(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(READONLY):
            return
        writes["n"] += 1
        if writes["n"] == 3:
            raise sa.exc.OperationalError("BEGIN", {}, Exception("server closed the connection unexpectedly"))

    event.listen(store.engine, "begin", fail_third_write, insert=True)
    try:
        with pytest.raises(SweepCutOff) as cut:
            sweep(engine, later)
    finally:
        event.remove(store.engine, "begin", fail_third_write)
    assert cut.value.committed == 2 and cut.value.exit_code == 5
    message = str(cut.value)
    assert message == ("database error after 2 due timer(s) were handled and committed (2 breached); the others "
                       "were not changed: run `caseflow sla run` again to continue (server closed the connection "
                       "unexpectedly)")
    assert "nothing was changed" not in message
    with store.engine.connect() as conn:
        status = dict(conn.execute(sa.select(timers.c.case_id, timers.c.status)
                                   .where(timers.c.case_id.in_(ids))).all())
    assert sorted(status.values()) == ["breached", "breached", "running", "running", "running"]
    rest = sweep(engine, later)                       # the rerun continues where it stopped
    assert rest.breached == 3 and rest.failures == []
    assert sweep(engine, later).handled == 0
    for cid in ids:
        rows = [r for r in snapshot(store, cid)[1] if r["kind"] == "sla" and "breached" in (r["note"] or "")]
        assert len(rows) == 1, cid


def test_a_sweep_that_fails_before_committing_anything_says_nothing_was_changed(engine, store, clock):  # noqa: ANN001
    refund_to_signing(engine)

    def fail(conn: sa.Connection) -> None:
        if not conn.get_execution_options().get(READONLY):
            raise sa.exc.OperationalError("BEGIN", {}, Exception("disk I/O error"))

    event.listen(store.engine, "begin", fail, insert=True)
    try:
        with pytest.raises(Exception) as cut:
            sweep(engine, clock.now + timedelta(hours=30))
    finally:
        event.remove(store.engine, "begin", fail)
    assert not isinstance(cut.value, SweepCutOff)
    assert str(cut.value) == "database error, nothing was changed: disk I/O error"
