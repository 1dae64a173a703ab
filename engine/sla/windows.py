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

from caseflow.store.tables import sla_windows, timers

MET: Final = "met"
LATE: Final = "late"
BREACHED: Final = "breached"
CANCELLED: Final = "cancelled"
OUTCOMES: Final = (MET, LATE, BREACHED, CANCELLED)
MISSED: Final = (LATE, BREACHED)           # the windows that count against the on-time rate

_OPEN = sa.and_(sla_windows.c.case_id == sa.bindparam("w_case"), sla_windows.c.clock == sa.bindparam("w_clock"),
                sla_windows.c.outcome.is_(None))
_FIND_OPEN = sa.select(sla_windows).where(_OPEN).order_by(sla_windows.c.id.desc()).limit(1)


def overdue_clause(now_s: str) -> sa.ColumnElement[bool]:
    """A timers row of an SLA past its deadline right now: breached by a sweep, or not yet swept."""
    return sa.and_(timers.c.kind == "sla",
                   sa.or_(timers.c.status == "breached",
                          sa.and_(timers.c.status == "running", timers.c.due_at < now_s)))


_INSERT = sla_windows.insert()          # built once: building a statement costs more than running it
_CLOSE = sla_windows.update().where(sla_windows.c.id == sa.bindparam("w_id")).values(
    closed_at=sa.bindparam("v_closed_at"), outcome=sa.bindparam("v_outcome"), due_at=sa.bindparam("v_due_at"))
_BREACH = sla_windows.update().where(_OPEN).values(breached_at=sa.bindparam("v_breached_at"),
                                                   due_at=sa.bindparam("v_due_at"))
_RESCHEDULE = sla_windows.update().where(_OPEN).values(due_at=sa.bindparam("v_due_at"))


def open_window(conn: Connection, *, case_id: str, workflow: str, clock: str, opened_at: str, due_at: str | None,
                restarted: bool) -> None:
    conn.execute(_INSERT, {"case_id": case_id, "workflow": workflow, "clock": clock, "opened_at": opened_at,
                           "opened_by": "restart" if restarted else "start", "due_at": due_at})


def close_window(conn: Connection, *, case_id: str, clock: str, now_s: str, due_at: str | None,
                 case_closed: bool = False) -> str | None:
    """End the clock's open window; returns its outcome (None if it had none, e.g. a row from before)."""
    w = conn.execute(_FIND_OPEN, {"w_case": case_id, "w_clock": clock}).first()
    if w is None:
        return None
    due = due_at or w.due_at
    if w.breached_at is not None:
        outcome = BREACHED
    elif due is not None and now_s > due:
        outcome = LATE
    else:
        outcome = CANCELLED if case_closed else MET
    conn.execute(_CLOSE, {"w_id": w.id, "v_closed_at": now_s, "v_outcome": outcome, "v_due_at": due})
    return outcome


def mark_breached(conn: Connection, *, case_id: str, clock: str, now_s: str, due_at: str) -> None:
    conn.execute(_BREACH, {"w_case": case_id, "w_clock": clock, "v_breached_at": now_s, "v_due_at": due_at})


def reschedule(conn: Connection, *, case_id: str, clock: str, due_at: str | None) -> None:
    """Keep the open window's deadline with its clock's (resume, provisional recompute)."""
    if due_at is not None:
        conn.execute(_RESCHEDULE, {"w_case": case_id, "w_clock": clock, "v_due_at": due_at})


__all__ = ["open_window", "close_window", "mark_breached", "reschedule", "overdue_clause", "OUTCOMES", "MISSED"]
