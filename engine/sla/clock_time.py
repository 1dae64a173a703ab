"""A clock's own time, and each clock of a case as `caseflow show` prints it: the read side.

The statuses a `timers` row can hold, whole-second UTC stamps (`ts`), a clock's deadline and
its measure (calendar or working time). sla/clocks.py, the write side, starts, pauses and ends
the clocks inside a transition; reading them (`show`) needs only this module.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from caseflow.definition.model import Clock, Definition
from caseflow.errors import CalendarError
from caseflow.sla.calendar import BusinessCalendar, Deadline
from caseflow.store import reads
from caseflow.values import add_months, format_datetime, parse_datetime

RUNNING: Final = "running"
PAUSED: Final = "paused"
BREACHED: Final = "breached"
LIVE: Final = (RUNNING, PAUSED, BREACHED)            # a stop/pause trigger still acts on these
RESTARTABLE: Final = LIVE + ("fired",)               # ended by itself, not by a stop


# -- time helpers ---------------------------------------------------------------------------

@lru_cache(maxsize=256)
def ts(moment: datetime, *, up: bool = False) -> str:
    """Whole-second UTC text; `up` rounds a deadline up so it is never early."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + (timedelta(seconds=1) if up else timedelta())
    return format_datetime(moment)


def _add_clock_time(start: datetime, amount: int, unit: str, tz: ZoneInfo) -> datetime:
    if unit in ("minutes", "hours"):
        return start + timedelta(**{unit: amount})
    if unit in ("days", "weeks"):                    # wall-clock days in the workflow's zone
        return (start.astimezone(tz) + timedelta(**{unit: amount})).astimezone(UTC)
    return add_months(start, amount * (12 if unit == "years" else 1), tz)


def _calendar(clock: Clock, calendar: BusinessCalendar | None) -> BusinessCalendar:
    if calendar is None:
        raise CalendarError(f"clock {clock.name!r} counts working time but the workflow has no calendar")
    return calendar


def deadline(clock: Clock, calendar: BusinessCalendar | None, tz: ZoneInfo, start: datetime) -> Deadline:
    """The clock's full duration counted from `start`."""
    w = clock.within
    if not w.working:
        return Deadline(_add_clock_time(start, w.amount, w.unit, tz), False)
    cal = _calendar(clock, calendar)
    if w.unit in ("hours", "minutes"):
        return cal.add_working_hours(start, Decimal(w.amount) / (1 if w.unit == "hours" else 60))
    if w.unit == "days" and clock.working_days == "end_of_day":
        return cal.end_of_nth_working_day(start, w.amount)
    if w.unit == "days":
        return cal.add_working_days_elapsed(start, w.amount)
    raise CalendarError(f"clock {clock.name!r}: '{w}' is not supported; count working time in hours or days")


def measure(clock: Clock, calendar: BusinessCalendar | None, a: datetime, b: datetime) -> float:
    """Seconds of the clock's own time from a to b: working seconds for working-time clocks."""
    if clock.within.working:
        return _calendar(clock, calendar).remaining_working_hours(a, b) * 3600
    return max((b - a).total_seconds(), 0.0)


def advance(clock: Clock, calendar: BusinessCalendar | None, start: datetime, seconds: float) -> Deadline:
    """`start` plus `seconds` of the clock's own time."""
    if clock.within.working:
        return _calendar(clock, calendar).add_working_hours(start, Decimal(str(max(seconds, 0.0))) / 3600)
    return Deadline(start + timedelta(seconds=max(seconds, 0.0)), False)


# -- reads ----------------------------------------------------------------------------------

def clocks(conn: Connection, definition: Definition, calendar: BusinessCalendar | None,
           case_id: str, now: datetime) -> list[dict[str, Any]]:
    """Each clock the case has started, as `caseflow show` prints it.

    A running SLA whose deadline has passed is reported `breached` even before
    the sweeper has recorded the breach: the operator should know now.
    """
    by_name = {c.name: c for c in definition.clocks}
    out = []
    for r in reads.case_timers(conn, case_id):      # driver SQL: no Core compile per process
        clock = by_name.get(r.name)
        due = parse_datetime(r.due_at) if r.due_at else None
        overdue = r.status == RUNNING and due is not None and ts(now) > r.due_at
        status = BREACHED if overdue and r.kind == "sla" else r.status
        out.append({"name": r.name, "label_zh": clock.label_zh if clock else r.name, "kind": r.kind,
                    "started_at": r.started_at, "due_at": r.due_at, "status": status,
                    "remaining": _remaining(clock, calendar, r, due, now) if clock else None,
                    "warned": r.warned > 0, "warnings": r.warned,
                    "breached": status in (BREACHED, "late"), "provisional": bool(r.provisional),
                    "ended_at": r.ended_at})
    return out


def _remaining(clock: Clock, calendar: BusinessCalendar | None, r: Any, due: datetime | None,
               now: datetime) -> str | None:
    suffix = " of working time" if clock.within.working else ""
    if r.status == PAUSED and r.remaining_s is not None:
        return f"{human(r.remaining_s)}{suffix} (paused)"
    if r.status not in (RUNNING, BREACHED) or due is None:
        return None
    if now > due:
        return f"overdue by {human((now - due).total_seconds())}"
    return human(measure(clock, calendar, now, due)) + suffix


def human(seconds: float) -> str:
    """3d 4h, 2h 05m, 45m: what an operator reads at a glance."""
    minutes = math.ceil(seconds / 60 - 1e-9)
    if minutes <= 0:
        return "0m"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"



__all__ = ["clocks", "deadline", "measure", "advance", "human", "ts",
           "RUNNING", "PAUSED", "BREACHED", "LIVE", "RESTARTABLE"]
