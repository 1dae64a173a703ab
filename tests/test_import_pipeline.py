"""An import's rows are sent ahead on a sender thread (PostgreSQL: COPY, store/copy_ahead.py; a SQLite file:
multi-row INSERTs, store/insert_ahead.py; runtime/batch_writes.py) and checked when the batch waits: a row the
database refuses fails its batch (a ConcurrentChange: retry), whichever row was being opened when the refusal
came back, and nothing of the batch is written; the connection goes on working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from caseflow.catalog import Catalog
from caseflow.errors import ConcurrentChange
from caseflow.runtime import batch_writes, bulk
from caseflow.runtime.bulk import Row, import_cases
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.tables import attempts, audit, case_queue, cases, timers

from .conftest import Clock
from .test_import import _cards_taken_at_open
from .test_import_rows import CARD, COMPLAINT


def _counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (cases, audit, timers, case_queue, attempts)}


def test_an_insert_the_database_refuses_fails_its_batch_and_writes_nothing_of_it(
        engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
    before = _counts(store)
    # the batch's ids as a race would leave them: the first one taken meanwhile by another writer
    monkeypatch.setattr(bulk, "_free_ids", lambda conn, workflow, n: [taken] + [f"COM-0000{i:04X}" for i in range(n - 1)])
    rows = [Row(line, sets={**COMPLAINT, "form_no": f"TS-{line}"}) for line in range(2, 5)]
    with pytest.raises(ConcurrentChange, match="nothing was changed; retry"):
        import_cases(engine, "complaint", "wang.fang", iter(rows))
    assert _counts(store) == before
    monkeypatch.undo()
    report = import_cases(engine, "complaint", "wang.fang", iter(rows))      # the same connections, again
    assert [r["line"] for r in report.opened] == [2, 3, 4] and not report.refused
    assert _counts(store)["cases"] == before["cases"] + 3


def test_a_refusal_that_comes_back_while_a_later_row_is_opened_fails_the_whole_batch(
        store: Store, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows sent ahead two at a time; the first row's case id was taken meanwhile. Its refusal comes back when
    the third row, whose unique field needs a statement of its own, waits for the rows sent before it: that is
    no refusal of the third row (nor the second, reported opened already) but of the batch, and nothing of it
    is written — on SQLite the transaction would otherwise go on without the refused rows."""
    engine = Engine(store, Catalog.load(_cards_taken_at_open(tmp_path)), clock)
    taken = engine.open("member_card", "xie.na", {**CARD, "id_number": "110101199001011230"})["id"]
    before = _counts(store)
    monkeypatch.setattr(batch_writes, "SEND_EVERY", 2)
    monkeypatch.setattr(bulk, "_free_ids", lambda conn, workflow, n: [taken] + [f"MEM-0000{i:04X}" for i in range(n - 1)])
    rows = [Row(line, sets={**CARD, "id_number": f"11010119900101123{line}"}) for line in range(2, 6)]
    with pytest.raises(ConcurrentChange, match="nothing was changed; retry"):
        import_cases(engine, "member_card", "xie.na", iter(rows))
    assert _counts(store) == before                    # no case, no refusal recorded for a row that was fine
    monkeypatch.setattr(bulk, "_free_ids", lambda conn, workflow, n: [f"MEM-0001{i:04X}" for i in range(n)])
    report = import_cases(engine, "member_card", "xie.na", iter(rows))
    assert [r["line"] for r in report.opened] == [2, 3, 4, 5] and not report.refused


def test_the_rows_go_to_a_sender_of_the_backends_kind(store: Store, db_url: str) -> None:
    """A SQLite file's rows by multi-row INSERTs, PostgreSQL's by COPY, each on a sender thread of its own."""
    from caseflow.store.copy_ahead import CopyAhead
    from caseflow.store.insert_ahead import InsertAhead
    with store.write() as conn:
        ahead = store.backend.send_ahead(conn)
        try:
            assert type(ahead) is (InsertAhead if db_url.startswith("sqlite") else CopyAhead) and ahead.running
        finally:
            ahead.abandon()
        assert not ahead.running


def test_rows_sent_ahead_in_several_sends_and_a_refusal_between_them_are_all_kept(
        engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sends every 2 rows (one sent ahead while the next rows are worked out), a refused row in the middle:
    its refusal is recorded in the attempts log, every other row is opened with its clocks and queues."""
    monkeypatch.setattr(batch_writes, "SEND_EVERY", 2)
    before = _counts(store)
    rows: list[Any] = [Row(line, sets={**COMPLAINT, "form_no": f"TS-{line}"}) for line in range(2, 9)]
    rows[3] = Row(5, sets={**COMPLAINT, "form_no": "TS-5", "severity": "enormous"})
    report = import_cases(engine, "complaint", "wang.fang", iter(rows))
    assert [r["line"] for r in report.opened] == [2, 3, 4, 6, 7, 8]
    assert [r["line"] for r in report.refused] == [5]
    after = _counts(store)
    assert after["cases"] - before["cases"] == 6 and after["attempts"] - before["attempts"] == 1
    assert after["timers"] - before["timers"] == 12 and after["case_queue"] - before["case_queue"] == 12
    assert after["audit"] - before["audit"] == 18


def test_an_insert_refused_after_it_was_sent_ahead_raises_sqlalchemys_error_when_the_batch_waits(
        engine: Engine, store: Store) -> None:
    """The refused INSERT is the only one sent: on PostgreSQL its error comes back only when the batch waits
    for what it sent (`sync`), and is raised as SQLAlchemy raises it (on SQLite at once, the same error)."""
    taken = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
    with store.engine.connect() as conn:
        row = dict(conn.execute(sa.select(cases).where(cases.c.id == taken)).one()._mapping)
    with store.write() as conn:
        with pytest.raises(sa.exc.IntegrityError), batch_writes.BatchedWrites(conn) as writes:
            writes.execute(bulk.case_actions.INSERT_CASE, row)        # held
            writes.flush()                                            # sent (ahead, on PostgreSQL)
            writes.sync()
        conn.rollback()


def test_text_copy_has_to_escape_is_stored_as_a_single_open_stores_it(engine: Engine, store: Store) -> None:
    """Tabs, line breaks, backslashes and a literal `\\N` in the values: COPY's own escapes (PostgreSQL) take
    none of them for a separator or a NULL; the rows equal a single open's and every hash still verifies."""
    from caseflow.audit.verify import verify

    from .test_import_rows import _stored
    tricky = {**COMPLAINT, "description": "漏水\t第二段\n第三行\r\n\\N 与 \\\\ 和 \"引号\" 'x' ,;|",
              "address": "A\\tB\\nC"}
    single = engine.open("complaint", "wang.fang", tricky)["id"]
    report = import_cases(engine, "complaint", "wang.fang", iter([Row(2, data=tricky), Row(3, sets=tricky)]))
    assert [r["line"] for r in report.opened] == [2, 3]
    for r in report.opened:
        assert _stored(store, r["id"]) == _stored(store, single)
    assert verify(store).ok


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_statistics_are_taken_as_an_empty_database_fills_not_for_a_file_small_beside_it(
        engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner's statistics of `timers` and `case_queue` are taken each time the import has doubled the timer
    rows they count (batch_writes `_planned`): into an empty database at 1,000 and 2,000 timer rows (500 cases
    each send), and none for 300 cases into the 1,500 it holds then — ANALYZE would cost more than it saves."""
    taken: list[str | None] = []
    analyze = type(store.backend).analyze
    monkeypatch.setattr(type(store.backend), "analyze", lambda self, conn, table=None: (taken.append(table),
                                                                                         analyze(self, conn, table)))
    rows = [Row(line, sets={**COMPLAINT, "form_no": f"TS-{line}"}) for line in range(2, 1502)]
    assert len(import_cases(engine, "complaint", "wang.fang", iter(rows)).opened) == 1500
    assert taken == ["timers", "case_queue"] * 2
    taken.clear()
    more = [Row(line, sets={**COMPLAINT, "form_no": f"M-{line}"}) for line in range(2, 302)]
    assert len(import_cases(engine, "complaint", "wang.fang", iter(more)).opened) == 300
    assert taken == []


def test_held_rows_of_one_statement_with_other_columns_are_each_stored_as_given(engine: Engine, store: Store) -> None:
    """A statement's held rows are one group whatever their columns (batch_writes `execute`); rows of another set
    of columns among them (a clock given without its deadline, keys in another order) are sent apart, each with
    its own columns, and stored as given; a dropped row's held rows go, the rows before and after it stay."""
    from caseflow.sla.clocks import INSERT_TIMER
    case_id = engine.open("complaint", "wang.fang", COMPLAINT)["id"]

    def clock(name: str, **more: Any) -> dict[str, Any]:
        return {"case_id": case_id, "name": name, "kind": "timer", "status": "running",
                "started_at": "2025-03-03T10:00:00+08:00", **more}
    given = {"a": clock("a", due_at="2025-03-04T10:00:00+08:00", next_at="2025-03-04T10:00:00+08:00"),
             "b": clock("b"), "d": clock("d", warned=2), "e": {**dict(reversed(clock("e").items()))}}
    with store.write() as conn, batch_writes.BatchedWrites(conn) as writes:
        writes.begin_row()
        writes.execute(INSERT_TIMER, given["b"])       # (the first of them has the fewest columns)
        writes.execute(INSERT_TIMER, [given["a"], given["d"]])
        writes.end_row()
        writes.begin_row()
        writes.execute(INSERT_TIMER, clock("c", due_at="2025-03-05T10:00:00+08:00"))       # refused: dropped
        writes.execute(INSERT_TIMER, [clock("c2")])
        writes.drop_row()
        writes.begin_row()
        writes.execute(INSERT_TIMER, given["e"])
        writes.end_row()
        writes.flush()
    with store.engine.connect() as conn:
        found = {r.name: r for r in conn.execute(sa.select(timers).where(timers.c.case_id == case_id,
                                                                          timers.c.kind == "timer"))}
    assert sorted(found) == ["a", "b", "d", "e"]
    for name, row in given.items():
        assert {k: getattr(found[name], k) for k in row} == row
        assert found[name].warned == row.get("warned", 0) and (found[name].due_at is None) == ("due_at" not in row)
