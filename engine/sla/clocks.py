"""SLA clocks and timers: deadlines, and what each transition does to a case's clocks.

One `timers` row per (case, clock). The runtime calls `on_transition` inside
the write transaction of every open/transition, so a clock can never disagree
with the state it is about; the sweeper (`sweep.py`) only ever looks at rows
whose `next_at` has passed, through the index, so its cost follows the number
of due timers and not the number of cases.

Row columns, as this module keeps them:
- `started_at`: when the clock started (the `from_field` value, else now);
- `due_at`: the deadline; NULL while paused;
- `next_at`: when the sweeper must next look at the row — the next warning
  threshold, the deadline, or (for a provisional deadline) the first day the
  calendar did not cover when it was computed; NULL once nothing is left to do;
- `paused_at`/`remaining_s`: the last checkpoint — `remaining_s` seconds of
  the clock's measure (working seconds for working-time clocks) were left at
  `paused_at`. While `paused` the clock is frozen there; after a resume it runs
  on from it (both NULL for a clock that never paused);
- `status`: running, paused, breached (an SLA past due and still running:
  what `list --overdue` shows), met (stopped on time), late (stopped after its
  deadline), fired (a timer whose `on_due` ran), stopped (a timer stopped
  before it was due), cancelled (the case closed while the clock ran).

Timestamps in this table are whole seconds in UTC (`…T02:00:00Z`): fixed width,
so comparing the strings in SQL compares the times. Deadlines round up, `now`
rounds down, and a clock is late only strictly after its deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from caseflow.audit.chain import Entry
from caseflow.definition.evaluate import holds, scope
from caseflow.definition.model import Clock, Definition, Trigger
from caseflow.sla import windows
from caseflow.sla.calendar import BusinessCalendar, Deadline
from caseflow.sla.clock_time import (
    BREACHED,
    LIVE,
    PAUSED,
    RESTARTABLE,
    RUNNING,
    advance,
    clocks,
    deadline,
    human,
    measure,
    ts,
)
from caseflow.store import driver_sql
from caseflow.store.tables import timers
from caseflow.values import parse_datetime, show_datetime


@dataclass(frozen=True)
class Plan:
    """Where a running clock stands: `left` seconds were left at `ref`; `total` is its full length."""

    clock: Clock
    started: datetime
    ref: datetime
    left: float
    total: float
    due: Deadline

    def threshold(self, calendar: BusinessCalendar | None, percent: int) -> datetime:
        """When `percent` of the clock's time will have been used."""
        target = self.total * percent / 100 - (self.total - self.left)
        at = advance(self.clock, calendar, self.ref, target).at if target > 0 else self.ref
        return min(at, self.due.at)

    def next_at(self, calendar: BusinessCalendar | None, warned: int, now: datetime) -> datetime:
        """The next warning not yet given, else the deadline; sooner if the deadline is provisional."""
        marks = sorted(self.clock.warn_at)[warned:]
        at = self.threshold(calendar, marks[0]) if marks else self.due.at
        if self.due.provisional and calendar is not None:
            first_guess = datetime.combine(calendar.covered_until() + timedelta(days=1), time(), calendar.tz)
            if now < first_guess < at:
                at = first_guess                      # look again once the data may cover it
        return at


def plan_fresh(clock: Clock, calendar: BusinessCalendar | None, tz: ZoneInfo, start: datetime) -> Plan:
    """A clock started at `start` (a pure function of its arguments: the cases of one import batch, and
    the steps of one second, start their clocks at the same moment and share the working-time sums)."""
    def make() -> Plan:
        due = deadline(clock, calendar, tz, start)
        total = measure(clock, calendar, start, due.at)
        return Plan(clock, start, start, total, total, due)
    return _remembered((clock, calendar), (tz, start), make)


_REMEMBERED: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = {}


def _remembered(owners: tuple[Any, ...], args: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """`make()` worked out once per `owners` (by identity, and kept, so their ids stay theirs) and `args`."""
    key = (make.__qualname__, *map(id, owners), *args)
    hit = _REMEMBERED.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], owners)):
        return hit[1]
    if len(_REMEMBERED) >= 1024:
        _REMEMBERED.clear()
    value = make()
    _REMEMBERED[key] = (owners, value)
    return value


def plan_of(clock: Clock, calendar: BusinessCalendar | None, tz: ZoneInfo, row: Any) -> Plan:
    """Recompute a running row's plan from its start (and checkpoint) with today's calendar."""
    fresh = plan_fresh(clock, calendar, tz, parse_datetime(row.started_at))
    if row.remaining_s is None or row.paused_at is None:
        return fresh
    ref = parse_datetime(row.paused_at)
    return Plan(clock, fresh.started, ref, row.remaining_s, fresh.total,
                advance(clock, calendar, ref, row.remaining_s))


def schedule(plan: Plan, calendar: BusinessCalendar | None, warned: int, now: datetime) -> dict[str, Any]:
    """The row values that put a plan on the sweeper's list (a fresh dict each call; worked out once per
    plan, calendar, warnings given and moment, like `plan_fresh`)."""
    def make() -> dict[str, Any]:
        return {"due_at": ts(plan.due.at, up=True), "next_at": ts(plan.next_at(calendar, warned, now), up=True),
                "provisional": plan.due.provisional}
    return dict(_remembered((plan, calendar), (warned, now), make))


def started(clock: Clock, calendar: BusinessCalendar | None, tz: ZoneInfo, start: datetime, now: datetime,
            verb: str) -> tuple[dict[str, Any], str]:
    """(the timer row's values, the audit note) of a clock (re)started at `start`, seen at `now`: worked out
    once per clock, calendar, start and moment, like `plan_fresh` (the cases of one import batch received
    at the same time share them). The values are shared: read them, never change them.

    Both moments count in whole seconds only (`_whole`): the row keeps the start as whole seconds, and
    `now` is only compared with a midnight (Plan.next_at), so the steps of one second share the values.
    The clock's last call is kept by identity too (the rows of an import batch pass the same moments)."""
    last = _LAST_STARTED.get(id(clock))
    if (last is not None and last[0] is clock and last[1] is calendar and last[2] is tz and last[3] is start
            and last[4] is now and last[5] == verb):
        return last[6]
    seen = (clock, calendar, tz, start, now, verb)
    start, now = _whole(start), _whole(now)

    def make() -> tuple[dict[str, Any], str]:
        at = parse_datetime(ts(start))
        plan = plan_fresh(clock, calendar, tz, at)
        values = {"kind": clock.kind, "status": RUNNING, "started_at": ts(at), "warned": 0,
                  "paused_at": None, "remaining_s": None, "ended_at": None, **schedule(plan, calendar, 0, now)}
        note = f"{verb}: {clock.label_zh} within {clock.within}, due {show_datetime(values['due_at'], tz)}"
        if plan.due.provisional:
            note += " (provisional: the holiday calendar does not cover it yet)"
        return values, note
    found = _remembered((clock, calendar), (tz, start, now, verb), make)
    if len(_LAST_STARTED) >= 256:
        _LAST_STARTED.clear()
    _LAST_STARTED[id(clock)] = (*seen, found)
    return found


_LAST_STARTED: dict[int, tuple[Any, ...]] = {}      # id(clock): (clock, calendar, tz, start, now, verb, values)


def _whole(moment: datetime) -> datetime:
    """`moment` less its fraction of a second (what `ts` writes of it, in the same zone)."""
    return moment.replace(microsecond=0) if moment.microsecond else moment


# -- transitions ----------------------------------------------------------------------------

INSERT_TIMER = timers.insert()         # built once (bulk import batches these rows)
_TIMER_INSERT = (f"INSERT INTO timers ({', '.join(c.name for c in timers.c if c.name != 'id')}) "
                 f"VALUES ({', '.join(':' + c.name for c in timers.c if c.name != 'id')})")


@lru_cache(maxsize=128)
def _timer_update(columns: tuple[str, ...]) -> str:
    """UPDATE timers SET <columns> WHERE id = :timer_id, written once per set of columns."""
    return f"UPDATE timers SET {', '.join(f'{c} = :v_{c}' for c in columns)} WHERE id = :timer_id"


def _update_timer(conn: Connection, row: Any, **values: Any) -> None:
    """Write the columns of timer `row` (as read, locked, in this step) whose value changes; none: no UPDATE.
    A column named in an UPDATE costs its indexes (SQLite rewrites their entries) and, for due_at, status
    and kind, the work-queue order trigger (migration 0010), changed or not."""
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if not changed:
        return
    params = {"timer_id": row.id, **{f"v_{k}": v for k, v in changed.items()}}
    driver_sql.later(conn, _timer_update(tuple(sorted(changed))), params)


def _insert_timer(conn: Connection, values: dict[str, Any]) -> None:
    if driver_sql.in_step(conn):
        driver_sql.later(conn, _TIMER_INSERT, {c.name: values.get(c.name) for c in timers.c if c.name != "id"})
    else:                      # opening a case (bulk import holds these rows by INSERT_TIMER)
        conn.execute(INSERT_TIMER, values)


_CASE_TIMERS = sa.select(timers).where(timers.c.case_id == sa.bindparam("case_id")).with_for_update()


def _case_timers(conn: Connection, case_id: str) -> Any:
    if driver_sql.in_step(conn):
        return driver_sql.case_timers(conn, case_id)
    return conn.execute(_CASE_TIMERS, {"case_id": case_id})


def on_transition(conn: Connection, definition: Definition, calendar: BusinessCalendar | None,
                  case_id: str, event: str, source: str | None, dest: str,
                  data: dict[str, Any], now: datetime,
                  person_attr: Callable[[str, str], Any] | None = None) -> list[Entry]:
    """Start, stop, pause, resume or restart the case's clocks; return audit entries.

    The rows are locked first (PostgreSQL), so a sweeper firing one of them
    right now finishes before we decide, and we see what it did.
    """
    if source is None:                           # a new case: no rows yet; the clocks its opening starts
        return [_start(conn, definition, calendar, case_id, data, now, clock, None, "started")
                for clock in _starting(definition, event, dest)
                if clock.when is None or _allowed(definition, calendar, clock, data, now, person_attr)]
    moving = _moving(definition, event, source, dest)
    if not moving:                               # most transitions touch no clock: no query at all
        return []
    step = _Step(conn, definition, calendar, case_id, event, source, dest, data, now, person_attr)
    found = _case_timers(conn, case_id) if source is not None else ()   # a new case has none
    rows = {r.name: r for r in found}
    entries: list[Entry] = []
    for clock in moving:
        entries += step.run(clock, rows.get(clock.name))
    return entries


@lru_cache(maxsize=4096)
def _moving(definition: Definition, event: str, source: str | None, dest: str) -> tuple[Clock, ...]:
    """The clocks a move starts, stops, pauses, resumes or restarts (every clock when it ends the case):
    a function of the definition and the move only, so worked out once per move."""
    final = definition.states[dest].final
    return tuple(c for c in definition.clocks
                 if final or any(t.matches(event, source, dest)  # type: ignore[arg-type, unused-ignore]
                                 for t in (c.start, c.stop, c.pause, _resume(c), c.restart)))


@lru_cache(maxsize=256)
def _starting(definition: Definition, event: str, dest: str) -> tuple[Clock, ...]:
    """The clocks opening a case in `dest` starts (if their `when` holds): what `_Step.run` does with no
    row — a clock with none only starts, on its start trigger, unless the move ends the case."""
    if definition.states[dest].final:
        return ()
    return tuple(c for c in _moving(definition, event, None, dest)
                 if c.start.matches(event, None, dest))  # type: ignore[arg-type, unused-ignore]


def touches(definition: Definition, event: str, source: str | None, dest: str) -> bool:
    """Whether `on_transition` would start, stop, pause, resume or restart a clock (else it runs no SQL)."""
    if not definition.clocks:
        return False
    if definition.states[dest].final:
        return True
    return any(t.matches(event, source, dest)  # type: ignore[arg-type, unused-ignore]
               for c in definition.clocks for t in (c.start, c.stop, c.pause, _resume(c), c.restart))


def _resume(clock: Clock) -> Trigger:
    """A clock resumes on its `resume` trigger, by default on leaving the states that paused it."""
    return clock.resume if not clock.resume.empty else Trigger(leave=clock.pause.enter)


@dataclass
class _Step:
    conn: Connection
    d: Definition
    calendar: BusinessCalendar | None
    case_id: str
    event: str
    source: str | None
    dest: str
    data: dict[str, Any]
    now: datetime
    person_attr: Callable[[str, str], Any] | None = None

    def hit(self, trigger: Trigger) -> bool:
        # Opening a case enters its initial state: source None counts as a move.
        return trigger.matches(self.event, self.source, self.dest)  # type: ignore[arg-type, unused-ignore]

    def run(self, clock: Clock, row: Row[Any] | None) -> list[Entry]:
        final = self.d.states[self.dest].final
        status = row.status if row is not None else None
        if status in LIVE and (self.hit(clock.stop) or final):
            assert row is not None
            return [self.end(clock, row, stopped=not final or self.hit(clock.stop))]
        if status not in LIVE and self.hit(clock.start) and not final and self.allowed(clock):
            return [self.start(clock, row, "started")]
        if status in RESTARTABLE and self.hit(clock.restart) and not final and self.allowed(clock):
            return [self.start(clock, row, "restarted")]
        if status == RUNNING and not clock.pause.empty and self.hit(clock.pause):
            return [self.pause(clock, row)]
        if status == PAUSED and self.hit(_resume(clock)):
            return [self.resume(clock, row)]
        return []

    def allowed(self, clock: Clock) -> bool:
        return clock.when is None or _allowed(self.d, self.calendar, clock, self.data, self.now, self.person_attr)

    def start(self, clock: Clock, row: Row[Any] | None, verb: str) -> Entry:
        return _start(self.conn, self.d, self.calendar, self.case_id, self.data, self.now, clock, row, verb)

    def end(self, clock: Clock, row: Row[Any], *, stopped: bool) -> Entry:
        due = parse_datetime(row.due_at) if row.due_at else None
        late = row.status == BREACHED or (due is not None and ts(self.now) > ts(due, up=True))
        if clock.kind == "timer":
            status = "stopped" if stopped else "cancelled"
        else:
            status = "late" if late else ("met" if stopped else "cancelled")
        why = "stopped" if stopped else "case closed"
        if status == "late" and due is not None:
            note = f"missed: {why} {human((self.now - due).total_seconds())} after the deadline"
        elif status == "met" and due is not None:
            note = f"met: {why} with {self.left(clock, due)} to spare"
        else:
            note = f"{status}: {why}"
        # ended late on a provisional deadline: the sweeper judges it again once the calendar covers it
        again = ts(self.now) if status == "late" and row.provisional else None
        _update_timer(self.conn, row, status=status, next_at=again, ended_at=ts(self.now))
        if clock.kind == "sla":
            windows.close_window(self.conn, case_id=self.case_id, clock=clock.name, now_s=ts(self.now),
                                 due_at=row.due_at, case_closed=not stopped)
        return self.entry(clock, note, {"status": [row.status, status]})

    def pause(self, clock: Clock, row: Any) -> Entry:
        left = measure(clock, self.calendar, self.now, parse_datetime(row.due_at))
        _update_timer(self.conn, row, status=PAUSED, due_at=None, next_at=None, paused_at=ts(self.now),
                      remaining_s=left)
        return self.entry(clock, f"paused with {human(left)} left", {"status": [RUNNING, PAUSED]})

    def resume(self, clock: Clock, row: Any) -> Entry:
        now = parse_datetime(ts(self.now))
        fresh = plan_fresh(clock, self.calendar, self.d.tz, parse_datetime(row.started_at))
        plan = Plan(clock, fresh.started, now, row.remaining_s, fresh.total,
                    advance(clock, self.calendar, now, row.remaining_s))
        values = schedule(plan, self.calendar, row.warned, self.now)
        _update_timer(self.conn, row, status=RUNNING, paused_at=ts(now), **values)
        if clock.kind == "sla":
            windows.reschedule(self.conn, case_id=self.case_id, clock=clock.name, due_at=values["due_at"])
        return self.entry(clock, f"resumed, due {self.show(values['due_at'])}",
                          {"status": [PAUSED, RUNNING], "due_at": values["due_at"]})

    def left(self, clock: Clock, due: datetime) -> str:
        seconds = measure(clock, self.calendar, self.now, due)
        return human(seconds) + (" of working time" if clock.within.working else "")

    def show(self, text: str) -> str:
        return show_datetime(text, self.d.tz)

    def entry(self, clock: Clock, note: str, changes: dict[str, Any]) -> Entry:
        return Entry(clock.kind, clock.name, None, None, "system", [], changes, note)


def _allowed(d: Definition, calendar: BusinessCalendar | None, clock: Clock, data: dict[str, Any], now: datetime,
             person_attr: Callable[[str, str], Any] | None) -> bool:
    """Whether a clock with a `when` may start (or restart) now, on the case's data."""
    assert clock.when is not None
    working = calendar.working_days_between if calendar else None
    return holds(clock.when, *scope(d, data, now, "system", working_days=working, person_attr=person_attr))


def _start(conn: Connection, d: Definition, calendar: BusinessCalendar | None, case_id: str, data: dict[str, Any],
           now: datetime, clock: Clock, row: Row[Any] | None, verb: str) -> Entry:
    """Start (`row` None: insert its row) or restart a clock; its window opens (an SLA clock's)."""
    start = now
    if verb == "started" and clock.from_field and data.get(clock.from_field):
        start = parse_datetime(data[clock.from_field], d.tz)
    values, note = started(clock, calendar, d.tz, start, now, verb)
    if row is None:
        _insert_timer(conn, {"case_id": case_id, "name": clock.name, **values})
    else:
        _update_timer(conn, row, **values)
    if clock.kind == "sla":
        if row is not None:        # a restart ends the window before it
            windows.close_window(conn, case_id=case_id, clock=clock.name, now_s=ts(now), due_at=row.due_at)
        windows.open_window(conn, case_id=case_id, workflow=d.workflow, clock=clock.name,
                            opened_at=values["started_at"], due_at=values["due_at"], restarted=row is not None)
    return Entry(clock.kind, clock.name, None, None, "system", [],
                 {"status": [row.status if row else None, RUNNING], "due_at": values["due_at"]}, note)


__all__ = ["on_transition", "clocks", "deadline", "measure", "advance", "plan_of", "plan_fresh", "schedule",
           "ts", "RUNNING", "PAUSED", "BREACHED"]      # clocks, deadline, measure, advance, ts: sla/clock_time.py
