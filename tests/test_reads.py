"""Reads that scale: reports and lists go through indexes, and old databases get the columns filled.

The speed itself is measured in bench/ (bench_reads.py); here we check what
makes it possible — the query plan uses the index instead of scanning every
case — and that an upgraded database answers exactly as a new one does.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from caseflow.runtime.engine import Engine
from caseflow.store import migrate
from caseflow.store.database import Store
from caseflow.store.tables import cases, timers
from caseflow.views import reports
from caseflow.views.cases import list_cases
from tests.test_reports import BASE

from .conftest import Clock, case_row


@pytest.fixture(autouse=True)
def _after_the_complaints_were_received(clock):
    """These complaints are received up to 2025-04-01; an operator may not record a receipt in the future
    (docs/security.md), so the simulated clock starts after them."""
    clock.set("2025-04-02 09:00")


def _open(engine: Engine, form_no: str, received_at: str) -> str:
    return engine.open("complaint", "wang.fang", {**BASE, "form_no": form_no, "category": "quality",
                                                  "channel": "phone", "received_at": received_at})["id"]


def test_month_report_counts_by_received_time_in_the_workflows_zone(engine: Engine) -> None:
    """The month is the workflow's (Asia/Shanghai), read from the indexed column written at open."""
    march = _open(engine, "TS-1", "2025-03-31T23:59")      # local time (Asia/Shanghai)
    april = _open(engine, "TS-2", "2025-04-01T00:30")      # 31 March 16:30 UTC, but April in Shanghai
    assert reports.complaints(engine, "2025-03")["cases"] == [march]
    assert reports.complaints(engine, "2025-04")["cases"] == [april]
    assert case_row(engine.store, march)["received_at"] == "2025-03-31T15:59:00.000000Z"


def test_upgrading_an_old_database_fills_received_at(engine: Engine, store: Store, clock: Clock) -> None:
    early = _open(engine, "TS-1", "2025-02-27T09:00")
    clock.advance(minutes=5)
    late = _open(engine, "TS-2", "2025-03-02T09:00")
    cfg = migrate._config()
    with store.engine.begin() as conn:                     # back to the schema before the column existed
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    store.migrate()                                        # what the next CLI call does
    assert migrate.current(store) == migrate.HEAD
    assert reports.complaints(engine, "2025-02")["cases"] == [early]
    assert reports.complaints(engine, "2025-03")["cases"] == [late]
    assert [r["id"] for r in list_cases(engine, "complaint")] == [late, early]


def _plan(store: Store, stmt: sa.sql.Select, params: dict[str, str] | None = None) -> str:
    with store.engine.connect() as conn:
        sql = str(stmt.compile(store.engine, compile_kwargs={"literal_binds": True})) if params is None else \
            str(stmt.params(**params).compile(store.engine, compile_kwargs={"literal_binds": True}))
        return " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))


def test_month_report_and_list_read_through_indexes(tmp_path) -> None:  # noqa: ANN001
    """SQLite's plan: a search on the index, never `SCAN cases` (a read of every case)."""
    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    store.migrate()
    month = _plan(store, reports._MONTH, {"workflow": "complaint", "start": "2025-03", "end": "2025-04"})
    assert "ix_cases_workflow_received" in month and "SCAN cases" not in month
    newest = sa.select(cases.c.id).order_by(cases.c.updated_at.desc(), cases.c.id).limit(500)
    assert "INDEX ix_cases_updated" in _plan(store, newest)
    per_workflow = newest.where(cases.c.workflow == "complaint")
    assert "ix_cases_workflow_updated" in _plan(store, per_workflow)


def test_the_sweeper_claims_a_timer_by_its_id_not_by_scanning_running_clocks(tmp_path) -> None:  # noqa: ANN001
    """A sweep claims each due timer among a page of ids. SQLite once chose ix_timers_status_case for that
    claim and walked every running clock of the database per timer, so a sweep of 200 due timers took
    3.3× as long at 50,000 cases as at 5,000 (bench/bench_sla.py). The plan must be the primary key."""
    from caseflow.runtime.sweep import _CLAIM
    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    store.migrate()
    with store.write() as conn:
        conn.execute(timers.insert(), [{"case_id": f"C-{i}", "name": "first_contact", "kind": "sla",
                                        "status": "running", "started_at": "2025-03-03T02:00:00.000Z",
                                        "due_at": "2025-03-04T02:00:00.000Z", "next_at": "2025-03-04T02:00:00.000Z"}
                                       for i in range(2000)])
    seen: list[tuple[str, Any]] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda conn, cur, s, p, *a: seen.append((s, p)))
    with store.engine.connect() as conn:
        assert conn.execute(_CLAIM["sqlite"], {"ids": list(range(1, 201))}).first().id == 1
        sql, params = seen[-1]
        plan = " | ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
    assert "PRIMARY KEY" in plan and "ix_timers_status_case" not in plan, plan
