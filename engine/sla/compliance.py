"""SLA compliance per workflow, clock and month, counted per window (`caseflow report sla`).

Every start or restart of an SLA clock is a window (windows.py); a month's
row counts the windows *opened* in that month (in the workflow's zone):

- `windows`: all of them; `met`: ended by their deadline;
- `breached`: windows that missed — ended late, breached by a sweep, or open
  and past due right now (`overdue`, the same predicate as `list --overdue`,
  so the two agree before and after any sweep);
- `running`: open and within time (or paused); `cancelled`: the case closed first;
- `clocks`: distinct (case, clock) pairs with a window in the month, and
  `clocks_breached`: those with at least one breached window — a clock that
  restarts four times and breached once is one breached clock;
- `on_time_pct`: met / (met + breached) over the windows, in percent.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from caseflow.sla.clocks import ts
from caseflow.sla.windows import MISSED, overdue_clause
from caseflow.store.tables import sla_windows, timers
from caseflow.values import parse_datetime

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

COUNTS = ("windows", "met", "breached", "overdue", "running", "cancelled", "clocks", "clocks_breached")
COLUMNS = ("workflow", "sla", "label_zh", "within", "month") + COUNTS + ("on_time_pct",)


def compliance(engine: Engine, workflow: str | None = None, since: datetime | None = None,
               until: datetime | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per (workflow, clock, month) of windows opened in [since, until), sorted."""
    now_s = ts(now or engine.now())
    w = sla_windows
    q = (sa.select(w.c.case_id, w.c.workflow, w.c.clock, w.c.opened_at, w.c.outcome,
                   overdue_clause(now_s).label("overdue"))
         .select_from(w.outerjoin(timers, sa.and_(timers.c.case_id == w.c.case_id, timers.c.name == w.c.clock)))
         .order_by(w.c.id))
    if workflow:
        engine.catalog.get(workflow)
        q = q.where(w.c.workflow == workflow)
    if since:
        q = q.where(w.c.opened_at >= ts(since))
    if until:
        q = q.where(w.c.opened_at < ts(until))
    with engine.store.read() as conn:
        found = conn.execute(q).all()
    table: dict[tuple[str, str, str], dict[str, Any]] = {}
    pairs: dict[tuple[str, str, str], dict[str, bool]] = {}
    for r in found:
        month = _month(engine, r.workflow, r.opened_at)
        key = (r.workflow, r.clock, month)
        row = table.setdefault(key, _empty(engine, r.workflow, r.clock, month))
        row["windows"] += 1
        missed = bool(r.overdue) if r.outcome is None else r.outcome in MISSED
        if r.outcome is None:
            row["overdue" if missed else "running"] += 1
        if missed:
            row["breached"] += 1
        elif r.outcome is not None:
            row["met" if r.outcome == "met" else "cancelled"] += 1
        seen = pairs.setdefault(key, {})
        seen[r.case_id] = seen.get(r.case_id, False) or missed
    for key, row in table.items():
        row["clocks"] = len(pairs[key])
        row["clocks_breached"] = sum(pairs[key].values())
        decided = row["met"] + row["breached"]
        row["on_time_pct"] = round(100 * row["met"] / decided, 1) if decided else None
    return [table[k] for k in sorted(table)]


def _month(engine: Engine, workflow: str, opened_at: str) -> str:
    d = engine.catalog.current.get(workflow)
    moment = parse_datetime(opened_at)
    return (moment.astimezone(d.tz) if d else moment).strftime("%Y-%m")


def _empty(engine: Engine, workflow: str, name: str, month: str) -> dict[str, Any]:
    d = engine.catalog.current.get(workflow)
    clock = next((c for c in d.clocks if c.name == name), None) if d else None
    return {"workflow": workflow, "sla": name, "label_zh": clock.label_zh if clock else name,
            "within": str(clock.within) if clock else None, "month": month, **dict.fromkeys(COUNTS, 0)}


def overdue_cases(engine: Engine, workflow: str | None = None, now: datetime | None = None) -> list[str]:
    """Cases with an SLA past due right now — what `list --overdue` lists."""
    q = sa.select(timers.c.case_id).where(overdue_clause(ts(now or engine.now()))).distinct()
    with engine.store.read() as conn:
        return sorted(conn.execute(q).scalars())


__all__ = ["compliance", "overdue_cases", "COLUMNS"]
