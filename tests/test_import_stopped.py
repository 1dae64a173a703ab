"""An import that stops part-way keeps what it committed and says where to go on (`--from-line`): no row twice."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from caseflow.catalog import Catalog
from caseflow.errors import ImportStopped, LockTimeout
from caseflow.runtime.bulk import Row, import_cases, read_rows
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.locks import LockWait
from caseflow.store.tables import cases

from .test_import import REFUND_HEADER


def refund_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "refunds.csv"
    path.write_text(REFUND_HEADER + "".join(f"D-{i},王建国,86000,20000,false\n" for i in range(n)), encoding="utf-8")
    return path


def order_numbers(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(json.loads(r.data)["order_no"] for r in conn.execute(sa.select(cases.c.data)))


def test_ctrl_c_between_batches_keeps_them_and_from_line_imports_the_rest_once(engine: Engine, store: Store,
                                                                             tmp_path: Path) -> None:
    path = refund_file(tmp_path, 7)                     # lines 2–8

    def stop_after_first(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(ImportStopped) as stopped:
        import_cases(engine, "refund", "wang.fang", read_rows(path), batch=3, progress=stop_after_first)
    e = stopped.value
    assert (e.exit_code, e.opened, e.next_line) == (130, 3, 5)
    assert str(e) == ("import of refund stopped at line 5: interrupted; 3 case(s) from the lines before it were "
                      "imported and are kept; to import the rest, run the same command again with --from-line 5")
    assert order_numbers(store) == ["D-0", "D-1", "D-2"]

    report = import_cases(engine, "refund", "wang.fang", read_rows(path), batch=3, from_line=e.next_line)
    assert [c["line"] for c in report.opened] == [5, 6, 7, 8]
    assert order_numbers(store) == [f"D-{i}" for i in range(7)]            # each row once


def test_ctrl_c_while_a_batch_is_read_names_its_first_line(engine: Engine, store: Store, tmp_path: Path) -> None:
    rows = list(read_rows(refund_file(tmp_path, 5)))

    def interrupted() -> Iterator[Row]:
        yield from rows[:4]                  # lines 2–4 are a batch and commit; line 5 is read, then Ctrl-C
        raise KeyboardInterrupt

    with pytest.raises(ImportStopped) as stopped:
        import_cases(engine, "refund", "wang.fang", interrupted(), batch=3)
    assert stopped.value.next_line == 5
    assert order_numbers(store) == ["D-0", "D-1", "D-2"]


class LockHolder:
    """Another session taking the lock a batch's INSERTs need (SQLite: the write lock; PostgreSQL: an EXCLUSIVE
    lock on `cases`) — as a progress callback, once the first batch is committed — until `release`."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.held: list[Callable[[], object]] = []

    def take(self, _n: int = 0) -> None:
        if self.held:
            return
        if self.db_url.startswith("sqlite"):
            holder = sqlite3.connect(sa.engine.make_url(self.db_url).database, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            self.held.append(lambda: (holder.execute("ROLLBACK"), holder.close()))
        else:
            other = sa.create_engine(self.db_url)
            conn = other.connect()
            conn.execute(sa.text("LOCK TABLE cases IN EXCLUSIVE MODE"))
            self.held.append(lambda: (conn.rollback(), conn.close(), other.dispose()))

    def release(self) -> None:
        while self.held:
            self.held.pop()()


@pytest.fixture
def lock_holder(db_url: str) -> Iterator[LockHolder]:
    holder = LockHolder(db_url)
    yield holder
    holder.release()


def test_a_lock_wait_in_the_second_batch_stops_with_exit_6_and_keeps_the_first(
        db_url: str, store: Store, shipped_catalog: Catalog, clock, tmp_path: Path,  # noqa: ANN001
        lock_holder: LockHolder) -> None:
    waiting = Store(db_url, wait=LockWait(0.5))
    try:
        engine = Engine(waiting, shipped_catalog, clock)
        with pytest.raises(ImportStopped) as stopped:
            import_cases(engine, "refund", "wang.fang", read_rows(refund_file(tmp_path, 6)), batch=3,
                         progress=lock_holder.take)
    finally:
        waiting.dispose()
        lock_holder.release()
    e = stopped.value
    assert (e.exit_code, e.opened, e.next_line) == (6, 3, 5)
    assert e.reason.startswith("the database is locked by another process; gave up after 0.5 s")
    assert isinstance(e.__cause__, LockTimeout)
    assert order_numbers(store) == ["D-0", "D-1", "D-2"]          # the second batch wrote nothing


def test_an_error_before_any_batch_committed_is_the_error_itself(db_url: str, store: Store,
                                                                 shipped_catalog: Catalog, clock,  # noqa: ANN001
                                                                 tmp_path: Path,
                                                                 lock_holder: LockHolder) -> None:
    engine = Engine(waiting := Store(db_url, wait=LockWait(0.3)), shipped_catalog, clock)
    lock_holder.take()
    try:
        with pytest.raises(LockTimeout):
            import_cases(engine, "refund", "wang.fang", read_rows(refund_file(tmp_path, 2)), batch=3)
    finally:
        waiting.dispose()
        lock_holder.release()
    assert order_numbers(store) == []


def test_from_line_through_the_cli(run, store: Store, tmp_path: Path) -> None:
    path = refund_file(tmp_path, 4)                                   # lines 2–5
    r = run("--as", "wang.fang", "--json", "import", "refund", str(path), "--from-line", "4")
    assert r.exit_code == 0, r.stderr
    assert [c["line"] for c in r.json()["cases"]] == [4, 5]
    assert order_numbers(store) == ["D-2", "D-3"]
    r = run("--as", "wang.fang", "import", "refund", str(path), "--from-line", "0")
    assert r.exit_code == 2 and "--from-line" in r.stderr


def test_ctrl_c_while_a_batch_is_being_sent_rolls_it_back_and_the_connection_goes_on(
        engine: Engine, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C as the second batch's rows go to the database (PostgreSQL: while its first COPY is being sent
    by the sender thread): the batch is rolled back whole, the first batch is kept, and a later import on the
    same engine works (nothing of the interrupted send is left on the connection)."""
    from caseflow.runtime import batch_writes
    monkeypatch.setattr(batch_writes, "SEND_EVERY", 4)
    path = refund_file(tmp_path, 14)                         # lines 2–15: batches 2–7, 8–13, 14–15
    seen: list[str] = []

    def interrupt(conn, cursor, statement, params, context, many) -> None:  # noqa: ANN001
        if statement.split()[0] in ("COPY", "INSERT") and "audit" in statement.split()[1:3]:
            seen.append(statement)
            if len(seen) == 3:           # batch 1 sent its audit rows twice (4 + 2 rows); batch 2's first send
                raise KeyboardInterrupt
    sa.event.listen(store.engine, "before_cursor_execute", interrupt)
    try:
        with pytest.raises(ImportStopped) as stopped:
            import_cases(engine, "refund", "wang.fang", read_rows(path), batch=6)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", interrupt)
    assert (stopped.value.exit_code, stopped.value.next_line) == (130, 8)
    assert order_numbers(store) == [f"D-{i}" for i in range(6)]
    report = import_cases(engine, "refund", "wang.fang", read_rows(path), batch=6, from_line=8)
    assert len(report.opened) == 8
    assert order_numbers(store) == sorted(f"D-{i}" for i in range(14))
