"""SLA windows: every start or restart of an SLA clock opens one, and each ends met, late or breached.

A clock that restarts (the refund's 每位签字人24小时 restarts on every
signature) is one `timers` row whose status only tells how its *last*
window ended; a breach of an earlier signer's 24 hours would be gone by the
next signature. So each window is its own `sla_windows` row, written in the
same transaction as the clock change it follows:

- `open_window` when the clock starts or restarts (a restart first closes the
  window before it);
- `mark_breached` when the sweeper records the breach (on_breach ran);
- `close_window` when the clock stops, restarts, or the case closes.

Outcomes: `met` (ended by its deadline), `late` (ended after its deadline,
before any sweep recorded the breach), `breached` (the sweeper recorded the
breach; it ended later), `cancelled` (the case closed in time, the clock was
not stopped). An open window (outcome NULL) is *overdue* while its clock is,
by `overdue_clause` — the one predicate `list --overdue` and the compliance
report share. Only SLA clocks have windows; timers (card expiry) are not
service levels.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.store import driver_sql
from caseflow.store.tables import sla_windows, timers

MET: Final = "met"
LATE: Final = "late"
BREACHED: Final = "breached"
CANCELLED: Final = "cancelled"
OUTCOMES: Final = (MET, LATE, BREACHED, CANCELLED)
MISSED: Final = (LATE, BREACHED)           # the windows that count against the on-time rate

_OPEN = sa.and_(sla_windows.c.case_id == sa.bindparam("w_case"), sla_windows.c.clock == sa.bindparam("w_clock"),
                sla_windows.c.outcome.is_(None))


def overdue_clause(now_s: str) -> sa.ColumnElement[bool]:
    """A timers row of an SLA past its deadline right now: breached by a sweep, or not yet swept."""
    return sa.and_(timers.c.kind == "sla",
                   sa.or_(timers.c.status == "breached",
                          sa.and_(timers.c.status == "running", timers.c.due_at < now_s)))


# Written once with `:name` parameters; in an Engine step they go on the driver, on PostgreSQL in the
# step's last statement (store/driver_sql.py `later`), so nothing here reads a window back.
_THE_OPEN = ("(SELECT MAX(id) FROM sla_windows WHERE case_id = :w_case AND clock = :w_clock "
             "AND outcome IS NULL)")
INSERT_WINDOW = ("INSERT INTO sla_windows (case_id, workflow, clock, opened_at, opened_by, due_at) "
                 "VALUES (:case_id, :workflow, :clock, :opened_at, :opened_by, :due_at)")
# The outcome of a window ending now: breached if a sweep recorded it, late after its deadline (the clock's,
# else the window's own), else met — or cancelled when the case closed with the clock still running.
_NOW, _DUE = "CAST(:now_s AS VARCHAR(32))", "COALESCE(CAST(:due_at AS VARCHAR(32)), due_at)"   # one type each
_CLOSE = (f"UPDATE sla_windows SET closed_at = {_NOW}, due_at = {_DUE}, "
          f"outcome = CASE WHEN breached_at IS NOT NULL THEN 'breached' "
          f"WHEN {_DUE} IS NOT NULL AND {_NOW} > {_DUE} THEN 'late' "
          f"ELSE CAST(:otherwise AS VARCHAR(16)) END WHERE id = {_THE_OPEN}")
_BREACH = sla_windows.update().where(_OPEN).values(breached_at=sa.bindparam("v_breached_at"),
                                                   due_at=sa.bindparam("v_due_at"))
_RESCHEDULE = f"UPDATE sla_windows SET due_at = :due_at WHERE id = {_THE_OPEN}"


def open_window(conn: Connection, *, case_id: str, workflow: str, clock: str, opened_at: str, due_at: str | None,
                restarted: bool) -> None:
    driver_sql.later(conn, INSERT_WINDOW, {"case_id": case_id, "workflow": workflow, "clock": clock,
                                     "opened_at": opened_at, "opened_by": "restart" if restarted else "start",
                                     "due_at": due_at})


def close_window(conn: Connection, *, case_id: str, clock: str, now_s: str, due_at: str | None,
                 case_closed: bool = False) -> None:
    """End the clock's open window (none: nothing, e.g. a clock from before windows were kept)."""
    driver_sql.later(conn, _CLOSE, {"w_case": case_id, "w_clock": clock, "now_s": now_s, "due_at": due_at,
                                    "otherwise": CANCELLED if case_closed else MET})


def mark_breached(conn: Connection, *, case_id: str, clock: str, now_s: str, due_at: str) -> None:
    conn.execute(_BREACH, {"w_case": case_id, "w_clock": clock, "v_breached_at": now_s, "v_due_at": due_at})


def reschedule(conn: Connection, *, case_id: str, clock: str, due_at: str | None) -> None:
    """Keep the open window's deadline with its clock's (resume, provisional recompute)."""
    if due_at is not None:
        driver_sql.later(conn, _RESCHEDULE, {"w_case": case_id, "w_clock": clock, "due_at": due_at})


__all__ = ["open_window", "close_window", "mark_breached", "reschedule", "overdue_clause", "OUTCOMES", "MISSED"]
