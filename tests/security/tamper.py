"""Going around the engine, the way someone with database access would.

An intruder drops the append-only triggers, edits what they like and puts
the triggers back (`tampering`), so `audit verify` cannot lean on a missing
trigger to notice. Each attack counts towards the figures printed at the end
of the run: `tamper cases tried` / `caught` (support.note).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from caseflow.audit.verify import VerifyReport, verify
from caseflow.store.database import Store

from ..reliability.support import note

LOG_TABLES = ("audit", "attempts", "checkpoints", "orgs", "settings")   # the append-only tables


def drop_triggers(store: Store, *tables: str) -> None:
    with store.engine.begin() as conn:
        for table in tables or LOG_TABLES:
            for name, ddl in zip(store.backend.append_only_triggers(table), store.backend.drop_append_only_ddl(table)):
                if name in store.backend.enabled_triggers(conn):
                    conn.exec_driver_sql(ddl)


def restore_triggers(store: Store) -> None:
    """The same guards migration 0001 installs, put back where missing."""
    with store.engine.begin() as conn:
        for table in LOG_TABLES:
            present = store.backend.enabled_triggers(conn)
            ddl = store.backend.append_only_ddl(table)
            names = store.backend.append_only_triggers(table)
            creates = [d for d in ddl if "CREATE TRIGGER" in d]
            # (the PostgreSQL trigger function is left in place by DROP TRIGGER)
            for name, d in zip(names, creates):
                if name not in present:
                    conn.exec_driver_sql(d)


@contextmanager
def tampering(store: Store) -> Iterator[sa.engine.Connection]:
    """One transaction with the guards down; they are back afterwards."""
    drop_triggers(store)
    try:
        with store.engine.begin() as conn:
            yield conn
    finally:
        restore_triggers(store)


def sql(conn: sa.engine.Connection, text: str, **params: Any) -> Any:
    return conn.execute(sa.text(text), params)


def caught(store: Store, *, where: str, kind: str | None = None, **options: Any) -> VerifyReport:
    """Verify; count the attack as tried, and as caught if a problem names `where` (and `kind`)."""
    report = verify(store, **options)
    hit = any(p.where == where and (kind is None or p.kind == kind) for p in report.problems)
    note("security", tamper_cases_tried=1, tamper_cases_caught=int(hit))
    return report
