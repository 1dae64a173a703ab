"""A case's nearest SLA deadline (the work-queue triggers' and the import's lookup) is read through the
case's own timers, never through every SLA clock: SQLite's plan searches `timers` by case_id."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from caseflow.store.database import Store
from caseflow.store.driver_text import nearest_deadline


def test_the_nearest_deadline_of_a_case_is_searched_by_its_id(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/cases.db")
    store.migrate()
    store.dispose()
    with sqlite3.connect(tmp_path / "cases.db") as conn:
        plan = " ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN SELECT {nearest_deadline('?')}", ("X",)))
        triggers = [sql for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                                   "AND sql LIKE '%MIN(t.due_at)%'")]
    assert "SEARCH t USING INDEX" in plan and "(case_id=?" in plan, plan
    assert triggers, "the queue triggers read the nearest deadline the same way"
