"""The sweeper behind `caseflow sla run`: fire every due timer exactly once.

Due ids are read a page at a time, oldest `next_at` first, through the index
on `next_at`, so a sweep costs what the due timers cost and nothing per case.
Each row is then handled in its own transaction — warning, breach or firing,
its actions, its audit rows and the row's new status commit together or not
at all. That transaction first claims the oldest row of the page that is
still due and that no one holds (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
SQLite's write lock serialises writers), so two sweepers started by cron at
the same moment take turns through the same page, and neither can fire a row
the other has already fired. The case row is then locked with SKIP LOCKED
too: a case an operator is changing right now is left for the next run rather
than waited for, so a sweeper never waits for a case while holding a timer
(a transition takes them in the opposite order), and the two cannot deadlock.

Like SpiffWorkflow's `refresh_timers()`, the sweep owns no clock or thread:
`now` is passed in, which is what the simulated-clock tests rely on.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import chain as audit
from caseflow.audit.chain import Entry
from caseflow.definition.evaluate import stamp
from caseflow.definition.model import Clock
from caseflow.errors import CaseflowError, StaleCase, StorageError, SweepCutOff
from caseflow.runtime import rejudge
from caseflow.runtime.actions import fire_system, run_actions
from caseflow.sla import windows
from caseflow.sla.calendar import BusinessCalendar
from caseflow.sla.clocks import BREACHED, RUNNING, Plan, plan_of, schedule, ts
from caseflow.store.backend import BACKENDS
from caseflow.store.database import _short
from caseflow.store.tables import cases, timers
from caseflow.values import show_datetime

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine
    from caseflow.runtime.snapshot import Snapshot

Progress = Callable[[int], None]


@dataclass
class SweepReport:
    """What one sweep did; `failures` name the timers left for the next run and why."""

    fired: int = 0           # timers whose on_due ran
    breached: int = 0        # SLAs that went past their deadline (on_breach ran)
    warnings: int = 0        # warning thresholds reached
    rescheduled: int = 0     # provisional deadlines looked at again, nothing due yet
    rejudged: int = 0        # breaches of provisional deadlines kept, moved or withdrawn (rejudge.py)
    cancelled: int = 0       # rows of closed cases, retired without actions
    skipped: int = 0         # read as due, then handled or held by another sweeper
    busy: int = 0            # its case was being changed by someone; left for the next run
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def handled(self) -> int:
        return self.fired + self.breached + self.warnings + self.rescheduled + self.cancelled + self.rejudged

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "handled": self.handled, "seconds": round(self.seconds, 3)}


def count_due(engine: Engine, now: datetime) -> int:
    """How many rows a sweep at `now` would look at (an index range count)."""
    with engine.store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(timers)
                            .where(timers.c.next_at < ts(now))).scalar_one()


def sweep(engine: Engine, now: datetime, batch: int = 200, limit: int | None = None,
          progress: Progress | None = None) -> SweepReport:
    """Handle every timer due at `now` (at most `limit`), oldest first, one transaction each.

    Due ids are read a page (`batch`) at a time; each transaction then claims
    the oldest row at the head of the page that is still due and that no one
    else holds, so several sweepers walking the same page take turns instead
    of colliding.
    """
    report, started = SweepReport(), _time.perf_counter()
    try:
        with engine.store.writer.connect() as conn:      # one connection, one transaction per timer
            _sweep_pages(engine, conn, now, batch, limit, progress, report)
    except (sa.exc.OperationalError, sa.exc.InterfaceError, StorageError) as exc:
        cause = _short(exc) if isinstance(exc, sa.exc.SQLAlchemyError) else str(exc)
        cause = cause.removeprefix("database error, nothing was changed: ").removeprefix("database error: ")
        if report.handled:
            raise SweepCutOff(report.handled, _counts(report), cause) from None
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"database error: {cause}") from None
    report.seconds = _time.perf_counter() - started
    return report


def _counts(report: SweepReport) -> dict[str, int]:
    return {"fired": report.fired, "breached": report.breached, "warning(s)": report.warnings,
            "rescheduled": report.rescheduled, "rejudged": report.rejudged, "cancelled": report.cancelled}


def _sweep_pages(engine: Engine, conn: Connection, now: datetime, batch: int, limit: int | None,
                 progress: Progress | None, report: SweepReport) -> None:
    cursor: tuple[str, int] | None = None
    while not _full(report, limit):
        page = _due_page(engine, ts(now), cursor, batch)
        if not page:
            break
        cursor = page[-1]
        left = [timer_id for _, timer_id in page]
        while left and not _full(report, limit):
            window = left[:_WINDOW]
            outcome, timer_id = _handle_next(engine, conn, window, now, report)
            if timer_id is None:                 # each one done or held by another sweeper
                report.skipped += len(window)
                del left[:_WINDOW]
                continue
            left.remove(timer_id)
            if outcome:
                setattr(report, outcome, getattr(report, outcome) + 1)
            if progress:
                progress(1)


def _full(report: SweepReport, limit: int | None) -> bool:
    return limit is not None and report.handled >= limit


def _due_page(engine: Engine, now_s: str, cursor: tuple[str, int] | None,
              batch: int) -> list[tuple[str, int]]:
    """The next `batch` due rows after `cursor` in (next_at, id) order: an index range, each row once."""
    q = sa.select(timers.c.next_at, timers.c.id).where(timers.c.next_at < now_s)
    if cursor:
        q = q.where(sa.or_(timers.c.next_at > cursor[0],
                           sa.and_(timers.c.next_at == cursor[0], timers.c.id > cursor[1])))
    with engine.store.read() as conn:
        return [(r.next_at, r.id) for r in conn.execute(q.order_by(timers.c.next_at, timers.c.id).limit(batch))]


# Built once: constructing SQLAlchemy statements costs more than running them on SQLite.
_WINDOW = 16     # ids a claim chooses from: few enough that the planner always probes the primary key
# The claim goes by primary key only: with a `next_at` condition PostgreSQL may scan every due row
# through that index for each claim (quadratic); whether the row is still due is checked after.
# `status || ''` keeps SQLite from choosing ix_timers_status_case instead, which walks every running
# timer of the database for each claim (the sweep's time then grew with the number of cases).
_CLAIM = {name: b.skip_locked(sa.select(timers).where(b.one_of(timers.c.id, "ids"),
                                                     timers.c.status.concat("").in_((RUNNING, *rejudge.JUDGED)))
                               .order_by(timers.c.next_at, timers.c.id).limit(1))
          for name, b in BACKENDS.items()}
_CLAIM_PROVISIONAL = {name: b.skip_locked(sa.select(timers).where(
    timers.c.id == sa.bindparam("timer"), timers.c.status == RUNNING, timers.c.provisional == sa.true()))
    for name, b in BACKENDS.items()}
_CASE = {name: b.skip_locked(sa.select(cases).where(cases.c.id == sa.bindparam("case")))
         for name, b in BACKENDS.items()}
_UPDATE = timers.update().where(timers.c.id == sa.bindparam("timer"))


def _handle_next(engine: Engine, conn: Connection, ids: list[int], now: datetime,
                 report: SweepReport) -> tuple[str | None, int | None]:
    """Claim and handle one row of `ids` in one transaction: (outcome, its id), or (None, None) if none is left.

    A failure rolls back this row only and is reported; one before any row was
    claimed (the database itself failing) ends the sweep.
    """
    claimed: list[int] = []
    try:
        with conn.begin():                   # SQLite: BEGIN IMMEDIATE (store.py's begin hook)
            return _claim_and_handle(engine, conn, ids, now, claimed)
    except StaleCase:
        return "busy", claimed[0]
    except (CaseflowError, sa.exc.SQLAlchemyError) as exc:
        if not claimed and isinstance(exc, sa.exc.OperationalError):
            raise StorageError(f"database error, nothing was changed: {_short(exc)}") from None
        if not claimed:
            raise
        line = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        report.failures.append({"timer": claimed[0], "error": type(exc).__name__, "message": line})
        return None, claimed[0]


def _claim_and_handle(engine: Engine, conn: Connection, ids: list[int], now: datetime,
                      claimed: list[int]) -> tuple[str | None, int | None]:
    row = conn.execute(_CLAIM[engine.store.backend.name], {"ids": ids}).first()
    if row is None:
        return None, None
    claimed.append(row.id)
    if row.next_at is None or row.next_at >= ts(now):
        return "skipped", row.id                 # another sweeper handled it a moment ago
    snap = _locked_case(engine, conn, row.case_id)
    if snap is None:
        return "busy", row.id
    return _handle_row(engine, conn, row, snap, now), row.id


def _locked_case(engine: Engine, conn: Connection, case_id: str) -> Snapshot | None:
    """The case, locked; None if someone holds it (we never wait for a case while holding a timer).

    Locking the timer and the case in two statements matters: a joined
    `FOR UPDATE SKIP LOCKED` keeps the timer's lock when it skips the case,
    and two sweepers holding such leftovers can deadlock.
    """
    c = conn.execute(_CASE[engine.store.backend.name], {"case": case_id}).first()
    if c is None:
        return None
    from caseflow.runtime.snapshot import Snapshot  # what engine.snapshot() builds, from the row we just locked
    return Snapshot.of_row(c, engine.definition_of(conn, c.definition))


def _handle_row(engine: Engine, conn: Connection, row: Any, snap: Snapshot, now: datetime) -> str | None:
    d = snap.definition
    clock = next((c for c in d.clocks if c.name == row.name), None)
    if row.status != RUNNING:                 # a breach of a provisional deadline, to be judged again
        outcome, entries = rejudge.rejudge(conn, clock, engine.catalog.calendar_for(d), snap, row, now)
        _log(engine, conn, snap, entries, now)
        return outcome
    if clock is None or d.states[snap.state].final:
        _update(conn, row.id, status="cancelled", next_at=None, ended_at=ts(now))
        if row.kind == "sla":
            windows.close_window(conn, case_id=row.case_id, clock=row.name, now_s=ts(now), due_at=row.due_at,
                                 case_closed=True)
        _log(engine, conn, snap, [Entry(row.kind, row.name, None, None, "system", [],
                                        {"status": [row.status, "cancelled"]},
                                        "cancelled: the case is closed")], now)
        return "cancelled"
    cal = engine.catalog.calendar_for(d)
    plan, entries = replan(clock, cal, snap, row, now)
    if ts(now) > ts(plan.due.at, up=True):
        return _due(engine, conn, snap, clock, plan, row, entries, now)
    marks = sorted(clock.warn_at)
    passed = sum(1 for p in marks if ts(plan.threshold(cal, p), up=True) < ts(now))
    if passed > row.warned:
        entries.append(Entry("sla_warning", clock.name, None, None, "system", [],
                             {"percent": marks[passed - 1]},
                             f"{marks[passed - 1]}% of {clock.within} used; "
                             f"due {show_datetime(ts(plan.due.at, up=True), d.tz)}"))
    values = schedule(plan, cal, max(passed, row.warned), now)
    _update(conn, row.id, warned=max(passed, row.warned), **values)
    if row.kind == "sla" and values["due_at"] != row.due_at:
        windows.reschedule(conn, case_id=row.case_id, clock=row.name, due_at=values["due_at"])
    _log(engine, conn, snap, entries, now)
    return "warnings" if passed > row.warned else "rescheduled"


def replan(clock: Clock, cal: BusinessCalendar | None, snap: Snapshot, row: Any,
           now: datetime) -> tuple[Plan, list[Entry]]:
    """The row's plan with today's calendar; an audit entry when a provisional deadline moved."""
    plan = plan_of(clock, cal, snap.definition.tz, row)
    if not row.provisional:
        return plan, []
    due = ts(plan.due.at, up=True)
    if due == row.due_at and plan.due.provisional:
        return plan, []
    tz = snap.definition.tz
    how = "still provisional" if plan.due.provisional else "now confirmed by the holiday calendar"
    note = f"deadline recomputed: {show_datetime(row.due_at, tz)} → {show_datetime(due, tz)} ({how})"
    return plan, [Entry(clock.kind, clock.name, None, None, "system", [],
                        {"due_at": [row.due_at, due]}, note)]


def _due(engine: Engine, conn: Connection, snap: Snapshot, clock: Clock, plan: Plan, row: Any,
         entries: list[Entry], now: datetime) -> str:
    """Breach an SLA or fire a timer: mark the row, run the actions, log, then fire events."""
    d, due = snap.definition, ts(plan.due.at, up=True)
    sla_clock, provisional = clock.kind == "sla", plan.due.provisional
    recheck = rejudge.recheck_at(now) if sla_clock and provisional else None     # judged again later
    _update(conn, row.id, status=BREACHED if sla_clock else "fired", next_at=recheck, due_at=due,
            provisional=provisional, **({} if sla_clock else {"ended_at": ts(now)}))
    if sla_clock:
        windows.mark_breached(conn, case_id=row.case_id, clock=row.name, now_s=ts(now), due_at=due)
    when = show_datetime(due, d.tz)
    note = (f"breached: {clock.label_zh} was due {when}" if sla_clock
            else f"due {when}: {clock.label_zh}")
    facts: dict[str, Any] = {"status": [row.status, BREACHED if sla_clock else "fired"]}
    if provisional:
        facts["provisional"] = True
        note += rejudge.provisional_suffix(engine.catalog.calendar_for(d), judged_again=sla_clock)
    entries.append(Entry(clock.kind, clock.name, None, None, "system", [], facts, note))
    entries += run_actions(engine, conn, d, snap.id, clock.actions, snap.data, {}, {}, "system", now)
    _log(engine, conn, snap, entries, now)
    for fire in [e for e in entries if e.kind == "fire"]:
        if not fire_system(engine, conn, snap.id, fire.event, now, f"{clock.name}: {note}"):
            state = engine.snapshot(conn, snap.id).state
            _log(engine, conn, snap, [Entry(clock.kind, clock.name, None, None, "system", [], {},
                                    f"{fire.event} is not possible in {d.label(state)}; nothing fired")], now,
                 audit.current_version(conn, snap.id))
    return "breached" if sla_clock else "fired"


def recompute_provisional(engine: Engine, now: datetime) -> int:
    """Recompute every provisional deadline with today's calendar data; returns how many moved.

    The sweep already re-checks a provisional deadline before acting on it and
    on the first day its year was not covered; run this (`caseflow sla run
    --recompute`) after updating chinese-calendar or calendars.yaml so that a
    deadline the new data brings forward is not fired late. It scans the
    provisional rows, so it is not part of every sweep.
    """
    with engine.store.read() as conn:
        ids = conn.execute(sa.select(timers.c.id).where(timers.c.provisional == sa.true(),
                                                        timers.c.status == RUNNING)).scalars().all()
    moved = 0
    for timer_id in ids:
        with engine.store.write() as conn:
            row = conn.execute(_CLAIM_PROVISIONAL[engine.store.backend.name], {"timer": timer_id}).first()
            snap = _locked_case(engine, conn, row.case_id) if row is not None else None
            if row is None or snap is None or row.due_at is None:
                continue
            clock = next((c for c in snap.definition.clocks if c.name == row.name), None)
            if clock is None:
                continue
            cal = engine.catalog.calendar_for(snap.definition)
            plan, entries = replan(clock, cal, snap, row, now)
            if entries:
                values = schedule(plan, cal, row.warned, now)
                _update(conn, row.id, **values)
                if row.kind == "sla":
                    windows.reschedule(conn, case_id=row.case_id, clock=row.name, due_at=values["due_at"])
                _log(engine, conn, snap, entries, now)
                moved += 1
    return moved


def _update(conn: Connection, timer_id: int, **values: Any) -> None:
    conn.execute(_UPDATE, {"timer": timer_id, **values})


def _log(engine: Engine, conn: Connection, snap: Snapshot, entries: list[Entry], now: datetime,
         version: int | None = None) -> None:
    """Rows that change no case row: they carry the version the case has (snap's, unless it moved since)."""
    if not entries:
        return
    audit.append(conn, case_id=snap.id, workflow=snap.workflow, definition=snap.definition.sha256,
                 entries=entries, effective_at=stamp(now), org=engine.org_sha, os_user=engine.os_user,
                 version=snap.version if version is None else version)


__all__ = ["sweep", "SweepReport", "count_due", "recompute_provisional", "replan"]
