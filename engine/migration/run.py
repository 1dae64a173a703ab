"""Running a plan: judge every open case of OLD (dry run), then move the ones that may, one transaction each.

The dry run reads every open case of the plan's OLD version with its audit rows
and timers in one consistent read and judges each (`verdict.judge`). A run does
the same, refuses the whole plan when `cannot_migrate: refuse` and some case
cannot, and otherwise moves each case that may in its own transaction with the
optimistic version check (`move.write`): a case someone changed since it was
judged is left where it was and reported (exit 3: run the plan again); a case
another runner holds (PostgreSQL SKIP LOCKED) or has moved already is skipped,
so several runners share the work. Every run is recorded (`record.py`).

A `Selection` narrows a dry run or a run, for a canary before the rest: `cases`
judges (and moves) only those open cases of OLD — an id that is not one refuses
the whole command before anything is judged; `limit` moves at most that many
of the cases that may move, the first by case id, and holds the others back
(outcome "held back", in the run's record like every outcome): a later run of
the same plan moves them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.errors import InvalidData, MigrationIncomplete, MigrationRefused, NotFound, StaleCase, UsageError
from caseflow.migration import record
from caseflow.migration.move import Busy, Gone, Move, write
from caseflow.migration.plan import Plan
from caseflow.migration.verdict import VERDICTS, Verdict, judge
from caseflow.store.tables import audit, cases, timers

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

ROW_COLUMNS = (audit.c.case_id, audit.c.seq, audit.c.kind, audit.c.event, audit.c.from_state, audit.c.to_state,
               audit.c.actor, audit.c.roles, audit.c.changes, audit.c.effective_at, audit.c.case_version)


@dataclass(frozen=True)
class Selection:
    """The open cases of OLD a dry run or run takes: `cases`, only these (empty: all); `limit`, a run moves at
    most this many (the first by case id of those that may move; the others are held back)."""

    cases: tuple[str, ...] = ()
    limit: int | None = None


EVERY = Selection()


@dataclass
class Report:
    run: int | None
    kind: str                                   # dry-run | run | revert
    verdicts: list[Verdict] = field(default_factory=list)
    migrated: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)       # changed by someone else while moving: retry
    skipped: list[str] = field(default_factory=list)    # moved by another runner already
    failed: dict[str, str] = field(default_factory=dict)
    held_back: list[str] = field(default_factory=list)  # might move, but over the run's --limit

    def counts(self) -> dict[str, int]:
        c = Counter(v.verdict for v in self.verdicts)
        out = {k: c.get(k, 0) for k in VERDICTS}
        if self.kind != "dry-run":
            out.update(migrated=len(self.migrated), lost=len(self.lost), skipped=len(self.skipped),
                       failed=len(self.failed))
            if self.kind == "run":
                out["held_back"] = len(self.held_back)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "kind": self.kind, "counts": self.counts(),
                "cases": [v.as_dict() | {"outcome": self.outcome(v.case_id)} for v in self.verdicts],
                "lost": self.lost, "failed": self.failed}

    def outcome(self, case_id: str) -> str | None:
        if self.kind == "dry-run":
            return None
        if case_id in self.migrated:
            return "migrated" if self.kind == "run" else "reverted"
        if case_id in self.lost:
            return "changed meanwhile"
        if case_id in self.skipped:
            return "moved by another runner"
        if case_id in self.failed:
            return "failed"
        if case_id in self.held_back:
            return "held back"
        return "stays"


def open_cases(plan: Plan, only: tuple[str, ...] = ()) -> sa.Select[Any]:
    finals = [s.id for s in plan.old.states.values() if s.final]
    q = sa.select(cases.c.id).where(cases.c.workflow == plan.workflow, cases.c.definition == plan.old.sha256,
                                    cases.c.state.not_in(finals))
    return q.where(cases.c.id.in_(only)) if only else q


def check_selection(conn: Connection, plan: Plan, only: tuple[str, ...]) -> None:
    """Each selected id is an open case of the plan's OLD version: else NotFound, or the command refused."""
    found = {r.id: r for r in conn.execute(sa.select(cases.c.id, cases.c.workflow, cases.c.definition,
                                                     cases.c.state).where(cases.c.id.in_(only)))}
    for case_id in only:
        row = found.get(case_id)
        if row is None:
            raise NotFound("case", case_id)
        if row.workflow != plan.workflow or row.definition != plan.old.sha256:
            why = (f"it is a {row.workflow} case" if row.workflow != plan.workflow
                   else f"it runs under version {row.definition[:12]}")
        elif plan.old.states[row.state].final:
            why = f"it is closed ({plan.old.label(row.state)})"
        else:
            continue
        raise MigrationRefused(plan.workflow, f"--case {case_id} is not an open case of {plan.workflow} "
                                              f"{plan.old.sha256[:12]} ({why}); nothing was judged")


def case_histories(conn: Connection, ids: sa.Select[Any]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]],
                                                                             list[Any]]]:
    """(case row, audit rows by seq, timers rows) of each case `ids` selects, in id order."""
    sub = ids.subquery()
    rows_of: dict[str, list[dict[str, Any]]] = {}
    q = sa.select(*ROW_COLUMNS).where(audit.c.case_id.in_(sa.select(sub.c.id))).order_by(audit.c.case_id, audit.c.seq)
    for r in conn.execute(q.execution_options(yield_per=5000)):
        rows_of.setdefault(r.case_id, []).append(dict(r._mapping))
    timers_of: dict[str, list[Any]] = {}
    for t in conn.execute(sa.select(timers).where(timers.c.case_id.in_(sa.select(sub.c.id)))):
        timers_of.setdefault(t.case_id, []).append(t)
    for c in conn.execute(sa.select(cases).where(cases.c.id.in_(sa.select(sub.c.id))).order_by(cases.c.id)):
        yield dict(c._mapping), rows_of.get(c.id, []), timers_of.get(c.id, [])


def judge_all(engine: Engine, plan: Plan, now: datetime, only: tuple[str, ...] = ()) -> list[Verdict]:
    with engine.store.consistent() as conn:
        if only:
            check_selection(conn, plan, only)
        return [judge(plan, engine, case, rows, ts, now)
                for case, rows, ts in case_histories(conn, open_cases(plan, only))]


def dry_run(engine: Engine, plan: Plan, user: str | None, select: Selection = EVERY) -> Report:
    """Every (selected) open case's verdict; nothing about the cases changes (the dry run itself is recorded)."""
    with engine._recording("migrate dry-run", None, user, plan.workflow):
        if select.limit is not None:
            raise UsageError("--limit applies to a run (how many cases move); a dry run judges every case")
        person = engine.person(user)
        record.require(engine, person, f"dry-run a migration of {plan.workflow}", audit_may=True)
        report = Report(None, "dry-run", judge_all(engine, plan, engine.now(), select.cases))
        with engine.store.write() as conn:
            report.run = record.start(conn, engine, kind="dry-run", workflow=plan.workflow, from_sha=plan.old.sha256,
                                      to_sha=plan.new.sha256, plan_sha=plan.sha256, plan_text=plan.text,
                                      actor=person.id)
        record.finish(engine, report.run, report.counts(), [v.as_dict() for v in report.verdicts])
    return report


def migrate(engine: Engine, plan: Plan, user: str | None, note: str | None = None,
            before_write: Callable[[str], None] | None = None, select: Selection = EVERY) -> Report:
    """Move every (selected) case the plan lets move, at most `select.limit`; `before_write(case_id)` runs just
    before each case's transaction."""
    with engine._recording("migrate run", None, user, plan.workflow):
        if select.limit is not None and select.limit < 1:
            raise UsageError(f"--limit {select.limit}: give how many cases may move (1 or more)")
        person = engine.person(user)
        roles = record.require(engine, person, f"migrate cases of {plan.workflow}")
        now = engine.now()
        report = Report(None, "run", judge_all(engine, plan, now, select.cases))
        stuck = [v for v in report.verdicts if v.verdict != "filtered" and not v.moves(plan)]
        if stuck and plan.cannot_migrate == "refuse":
            n = sum(1 for v in report.verdicts if v.verdict != "filtered")
            raise MigrationRefused(plan.workflow, f"{len(stuck)} of {n} case(s) cannot migrate and the plan says "
                                                  f"cannot_migrate: refuse; nothing was migrated (first: "
                                                  f"{stuck[0].line()})", report.counts())
        with engine.store.write() as conn:
            engine.register(conn, plan.new, now)
            report.run = record.start(conn, engine, kind="run", workflow=plan.workflow, from_sha=plan.old.sha256,
                                      to_sha=plan.new.sha256, plan_sha=plan.sha256, plan_text=plan.text,
                                      actor=person.id)
        busy: list[Move] = []
        for v in report.verdicts:
            if not v.moves(plan):
                continue
            if select.limit is not None and len(report.migrated) + len(busy) >= select.limit:
                report.held_back.append(v.case_id)      # (a busy case counts: it is waited for below)
                continue
            dest = v.destination
            assert dest is not None
            m = Move(v.case_id, v.version, plan.old, plan.new, v.state, dest, v.old_data, v.data, v.old_signoffs,
                     v.signoffs, v.clocks, plan.clocks,
                     {"from": plan.old.sha256, "to": plan.new.sha256, "plan": plan.sha256, "run": report.run,
                      "state_map": {v.state: dest}, "verdict": v.verdict}, had_timers=v.had_timers)
            if _move(engine, m, person.id, roles, now, note, report, before_write) == "busy":
                busy.append(m)
        for m in busy:                       # held by another runner (or a person) a moment ago: wait for it now
            _move(engine, m, person.id, roles, now, note, report, None, wait=True)
        record.finish(engine, report.run, report.counts(), [v.as_dict() | {"outcome": report.outcome(v.case_id)}
                                                            for v in report.verdicts])
        if report.lost:
            raise MigrationIncomplete(report.run, report.lost)
    return report


def _move(engine: Engine, m: Move, actor: str, roles: list[str], now: datetime, note: str | None,
          report: Report, before_write: Callable[[str], None] | None, *, wait: bool = False) -> str:
    """Write one move and file its outcome in the report; "busy" when another transaction holds the case."""
    if before_write is not None:
        before_write(m.case_id)
    try:
        write(engine, m, actor, roles, now, note, wait=wait)
        report.migrated.append(m.case_id)
        return "moved"
    except Gone:
        report.skipped.append(m.case_id)
        return "skipped"
    except Busy:
        return "busy"
    except StaleCase:
        report.lost.append(m.case_id)
        return "lost"
    except InvalidData as exc:
        report.failed[m.case_id] = exc.reason
        return "failed"


__all__ = ["Report", "Selection", "EVERY", "dry_run", "migrate", "judge_all", "case_histories", "open_cases",
           "check_selection"]
