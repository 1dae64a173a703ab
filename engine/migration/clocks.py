"""A case's clocks as NEW's SLAs would have run them over its logged history.

`ClockReplay` is fed the same moments the runtime feeds `sla/clocks.on_transition`
(open, each transition, each sign-off that does not complete the step, each
rejection) and keeps, per NEW clock, whether it runs, since when and how much
of its time was used before a pause. `targets()` gives the rows the timers table
should hold after migration: deadlines recomputed with NEW's durations on the
catalog's calendar. Whether a clock fell due along the way is left to the sweeper:
a recomputed deadline already past is breached on its next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from caseflow.definition.evaluate import holds, scope
from caseflow.definition.model import Clock, Definition, Trigger
from caseflow.sla.calendar import BusinessCalendar
from caseflow.sla.clocks import PAUSED, RUNNING, Plan, advance, measure, plan_fresh, ts
from caseflow.values import parse_datetime


@dataclass
class Track:
    status: str | None = None          # None: never started; running | paused | ended
    started: datetime | None = None
    ref: datetime | None = None        # since when it runs (or when it paused)
    used: float = 0.0                  # seconds of the clock's measure used before `ref`


@dataclass(frozen=True)
class Target:
    """One NEW clock as it should stand after migration (status running or paused)."""

    name: str
    kind: str
    status: str
    started_at: str
    due_at: str | None               # None while paused
    paused_at: str | None
    remaining_s: float | None
    plan: Plan | None                # for the sweeper's next look (running clocks)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "status": self.status, "started_at": self.started_at,
                "due_at": self.due_at}


def _resume(clock: Clock) -> Trigger:
    return clock.resume if not clock.resume.empty else Trigger(leave=clock.pause.enter)


class ClockReplay:
    def __init__(self, d: Definition, calendar: BusinessCalendar | None, person_attr: Any = None) -> None:
        self.d, self.calendar, self.person_attr = d, calendar, person_attr
        self.tracks = {c.name: Track() for c in d.clocks}

    def seed(self, name: str, status: str, started_at: str) -> None:
        """A clock already running at a checkpoint (a case migrated before): from its timers row."""
        if name in self.tracks and status in (RUNNING, PAUSED, "breached"):
            start = parse_datetime(started_at)
            self.tracks[name] = Track(RUNNING, start, start, 0.0)

    def step(self, event: str, source: str | None, dest: str, data: dict[str, Any], at: datetime) -> None:
        for c in self.d.clocks:
            tr = self.tracks[c.name]

            def hit(trigger: Trigger) -> bool:
                return trigger.matches(event, source, dest)  # type: ignore[arg-type, unused-ignore]

            live = tr.status in (RUNNING, PAUSED)
            if live and hit(c.stop):
                tr.status = "ended"
            elif not live and hit(c.start) and self._allowed(c, data, at):
                self._start(c, tr, at, data, fresh=True)
            elif live and hit(c.restart) and self._allowed(c, data, at):
                self._start(c, tr, at, data, fresh=False)
            elif tr.status == RUNNING and not c.pause.empty and hit(c.pause):
                assert tr.ref is not None
                tr.used += measure(c, self.calendar, tr.ref, at)
                tr.status, tr.ref = PAUSED, at
            elif tr.status == PAUSED and hit(_resume(c)):
                tr.status, tr.ref = RUNNING, parse_datetime(ts(at))

    def _allowed(self, c: Clock, data: dict[str, Any], at: datetime) -> bool:
        working = self.calendar.working_days_between if self.calendar else None
        return holds(c.when, *scope(self.d, data, at, "system", working_days=working, person_attr=self.person_attr))

    def _start(self, c: Clock, tr: Track, at: datetime, data: dict[str, Any], *, fresh: bool) -> None:
        start = at
        if fresh and c.from_field and data.get(c.from_field):
            start = parse_datetime(data[c.from_field], self.d.tz)
        start = parse_datetime(ts(start))
        tr.status, tr.started, tr.ref, tr.used = RUNNING, start, start, 0.0

    def targets(self) -> dict[str, Target]:
        out: dict[str, Target] = {}
        for c in self.d.clocks:
            tr = self.tracks[c.name]
            if tr.status not in (RUNNING, PAUSED):
                continue
            assert tr.started is not None and tr.ref is not None
            fresh = plan_fresh(c, self.calendar, self.d.tz, tr.started)
            left = max(fresh.total - tr.used, 0.0)
            if tr.status == PAUSED:
                out[c.name] = Target(c.name, c.kind, PAUSED, ts(tr.started), None, ts(tr.ref), left, None)
                continue
            plan = fresh if tr.used == 0 and tr.ref == tr.started else Plan(
                c, tr.started, tr.ref, left, fresh.total, advance(c, self.calendar, tr.ref, left))
            out[c.name] = Target(c.name, c.kind, RUNNING, ts(tr.started), ts(plan.due.at, up=True),
                                 ts(tr.ref) if tr.used else None, left if tr.used else None, plan)
        return out


__all__ = ["ClockReplay", "Target"]
