"""An imported row whose text cannot be stored (a NUL character, a lone surrogate) is refused with the
column it is in, as a single `open` refuses it; the rows around it open; and None and booleans bind on
SQLite as they always did (store/sqlite_files.bind_none_and_bool_directly)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from caseflow.catalog import Catalog
from caseflow.runtime.bulk import Row, import_cases
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.tables import cases

from .conftest import Clock
from .test_import_rows import COMPLAINT


def test_a_row_with_text_that_cannot_be_stored_is_refused_by_its_column(engine: Engine, store: Store) -> None:
    rows = [Row(2, sets={**COMPLAINT, "form_no": "TS-2"}),
            Row(3, sets={**COMPLAINT, "form_no": "TS-3", "description": "漏水\x00"}),
            Row(4, sets={**COMPLAINT, "form_no": "TS-4", "customer_name": "张\ud800三"}),
            Row(5, sets={**COMPLAINT, "form_no": "TS-5", "not\x00a column": "x"}),
            Row(6, sets={**COMPLAINT, "form_no": "TS-6"})]
    report = import_cases(engine, "complaint", "wang.fang", rows)
    assert [r["line"] for r in report.opened] == [2, 6]
    assert [(r["line"], r["message"]) for r in report.refused] == [
        (3, "description contains a NUL character"),
        (4, "customer_name is not valid UTF-8 text"),
        (5, "column 'not\\x00a column' contains a NUL character")]
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar() == 2


def test_none_and_booleans_are_stored_on_sqlite_as_null_and_integers(tmp_path: Path, shipped_catalog: Catalog,
                                                                    clock: Clock) -> None:
    store = Store(f"sqlite:///{tmp_path}/cases.db")
    store.migrate(simulation=True)
    engine = Engine(store, shipped_catalog, clock)
    imported = import_cases(engine, "complaint", "wang.fang", [Row(2, sets=COMPLAINT)]).opened[0]["id"]
    opened = engine.open("complaint", "wang.fang", {**COMPLAINT, "form_no": "TS-9"})["id"]
    with store.engine.connect() as conn:
        for case_id in (imported, opened):
            assert conn.exec_driver_sql(
                "SELECT typeof(warned), warned, typeof(provisional), typeof(paused_at) FROM timers "
                "WHERE case_id = ? ORDER BY name", (case_id,)).all() == [("integer", 0, "integer", "null")] * 2
            assert conn.exec_driver_sql("SELECT typeof(parent_case), typeof(assignee) FROM cases WHERE id = ?",
                                        (case_id,)).one() == ("null", "null")
        assert conn.exec_driver_sql("SELECT typeof(ordered), ordered FROM case_queue WHERE case_id = ?",
                                    (imported,)).all() == [("integer", 1)] * 2
    store.dispose()
