"""Re-judging a breach of a provisional deadline once the calendar covers it (docs/security.md, "Faults").

A deadline computed through days the holiday calendar does not cover yet is
provisional (sla/calendar.py): Mon–Fri is assumed. When the sweeper breaches
one, the breach row says so (`changes.provisional: true`) and the timer stays on
the sweeper's list (`next_at`, every `RECHECK`; `org apply` makes it due at
once) — also after the clock stopped late — until the calendar in force covers
the deadline. The deadline is then recomputed, and the breach is

- **kept**: the deadline is the same, now firm;
- **moved**: another deadline, which had also passed when the clock was judged
  (now, for a clock still running; when it stopped, for one that stopped late);
- **withdrawn**: the new deadline had not passed then. A running clock runs on
  to its new deadline; a stopped one ended `met`; its SLA window no longer
  counts as breached. What `on_breach` did (escalations, notifications)
  happened and stays in the log; the withdrawal row says so.

Each is one `sla` audit row with `changes.rejudged` = kept / moved / withdrawn,
`changes.provisional = [true, false]` and, where they change, `status` and
`due_at` as [before, after]. Timers (`kind: timer`) that fired on a provisional
deadline are marked provisional too, but not re-judged: their event has fired.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit.chain import Entry
from caseflow.definition.model import Clock
from caseflow.sla.calendar import BusinessCalendar
from caseflow.sla.clocks import BREACHED, RUNNING, plan_of, schedule, ts
from caseflow.store.tables import sla_windows, timers
from caseflow.values import show_datetime

if TYPE_CHECKING:
    from caseflow.runtime.snapshot import Snapshot

RECHECK: Final = timedelta(hours=1)      # how often a provisional breach is looked at until the calendar covers it
LATE: Final = "late"
JUDGED: Final = (BREACHED, LATE)         # the statuses a provisional breach can be in
_LAST_WINDOW = (sa.select(sla_windows).where(sla_windows.c.case_id == sa.bindparam("w_case"),
                                             sla_windows.c.clock == sa.bindparam("w_clock"))
                .order_by(sla_windows.c.id.desc()).limit(1))


def recheck_at(now: datetime) -> str:
    return ts(now + RECHECK, up=True)


def rejudge(conn: Connection, clock: Clock | None, cal: BusinessCalendar | None, snap: Snapshot, row: Any,
            now: datetime) -> tuple[str, list[Entry]]:
    """One provisional breach (`row.status` breached or late): ("rejudged", its log entry), or
    ("rescheduled", []) while the calendar still does not cover the deadline."""
    if clock is None or not row.provisional or row.status not in JUDGED or row.due_at is None:
        _update(conn, row.id, next_at=None)
        return "rescheduled", []
    plan = plan_of(clock, cal, snap.definition.tz, row)
    if plan.due.provisional:
        _update(conn, row.id, next_at=recheck_at(now))
        return "rescheduled", []
    new_due = ts(plan.due.at, up=True)
    stopped = row.status == LATE
    judged_at = row.ended_at if stopped and row.ended_at else ts(now)
    tz = snap.definition.tz
    was, then = show_datetime(row.due_at, tz), show_datetime(judged_at, tz)
    changes: dict[str, Any] = {"provisional": [True, False]}
    if new_due != row.due_at:
        changes["due_at"] = [row.due_at, new_due]
    if judged_at > new_due:
        verdict = "kept" if new_due == row.due_at else "moved"
        _update(conn, row.id, due_at=new_due, next_at=None, provisional=False)
        _window(conn, snap.id, clock.name, due_at=new_due)
        note = (f"breach confirmed: the holiday calendar confirms the deadline {was}" if verdict == "kept" else
                f"breach kept, deadline moved: {was} → {show_datetime(new_due, tz)} (now confirmed by the holiday "
                f"calendar); it had passed by {then}")
    else:
        verdict = "withdrawn"
        status = "met" if stopped else RUNNING
        changes["status"] = [row.status, status]
        values = ({"next_at": None, "provisional": False, "due_at": new_due} if stopped
                  else schedule(plan, cal, row.warned, now))
        _update(conn, row.id, status=status, **values)
        _window(conn, snap.id, clock.name, due_at=new_due, breached_at=None,
                **({"outcome": "met"} if stopped else {}))
        how = f"the clock had stopped at {then}, in time: met" if stopped else "the clock runs on"
        note = (f"breach withdrawn: the holiday calendar now puts the deadline at {show_datetime(new_due, tz)} "
                f"(the provisional one was {was}); {how}; what on_breach did stays in the log")
    changes["rejudged"] = verdict
    return "rejudged", [Entry(clock.kind, clock.name, None, None, "system", [], changes, note)]


def _update(conn: Connection, timer_id: int, **values: Any) -> None:
    conn.execute(timers.update().where(timers.c.id == timer_id).values(**values))


def _window(conn: Connection, case_id: str, clock: str, **values: Any) -> None:
    w = conn.execute(_LAST_WINDOW, {"w_case": case_id, "w_clock": clock}).first()
    if w is not None:
        conn.execute(sla_windows.update().where(sla_windows.c.id == w.id).values(**values))


def provisional_suffix(cal: BusinessCalendar | None, judged_again: bool = True) -> str:
    """What a breach (or a timer's firing, which is not judged again) on a provisional deadline adds to its note."""
    until = f" after {cal.covered_until()}" if cal is not None else ""
    again = "; re-judged when it does" if judged_again else ""
    return f" (provisional: the holiday calendar does not cover the days{until} yet{again})"


def due_again(conn: Connection, now: datetime) -> int:
    """After a new calendar is put in force: every provisional deadline is looked at by the next sweep."""
    result = conn.execute(timers.update().where(timers.c.provisional == sa.true(),
                                                timers.c.status.in_((RUNNING, *JUDGED)))
                          .values(next_at=ts(now)))
    return int(result.rowcount or 0)


__all__ = ["RECHECK", "rejudge", "recheck_at", "provisional_suffix", "due_again", "JUDGED"]
