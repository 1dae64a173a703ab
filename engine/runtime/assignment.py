"""Who holds a case: assign, claim, release, balanced assignment and the start of work.

Each is one write transaction with the same optimistic version check as a
transition (two claims at once: one wins, the other gets `StaleCase`, exit 3),
one audit row (who, to whom, when, note) and the SLA clocks that start on
`assign` / `claim` / `release`. A claim, or the assignee's first action after
an assignment, is the start of work: an audit row of kind `work` records it
with the time the case waited, so waiting time and working time can be told apart.

Rules (docs/inbox.md):
- `assign` and `release` of someone else's case need one of the workflow's `assign_roles`;
- an assignee holds one of the workflow's `assign_to` roles, or, when it declares none,
  a role of an event a person may fire from the case's current state; `claim` is
  assigning oneself under the same rule, and only while nobody holds the case;
- `--balance` picks, among the holders of a role, the one with the fewest open assigned
  cases (every workflow counts); ties go to whoever was least recently given a case,
  then to the user id in alphabetical order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import chain as audit
from caseflow.audit.chain import Entry
from caseflow.definition.evaluate import stamp
from caseflow.definition.model import Definition, Person, Transition
from caseflow.errors import AssignmentRefused, NotAssignee, StaleCase, UsageError
from caseflow.runtime import queue
from caseflow.runtime.turns import assignee_problem
from caseflow.sla import clocks as sla
from caseflow.store.tables import cases, definitions
from caseflow.values import parse_datetime

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine
    from caseflow.runtime.snapshot import Snapshot

_ASSIGN = (cases.update()
           .where(cases.c.id == sa.bindparam("case_id"), cases.c.version == sa.bindparam("seen"))
           .values(assignee=sa.bindparam("assignee"), assigned_at=sa.bindparam("assigned_at"),
                   work_started_at=sa.bindparam("work_started_at"), version=sa.bindparam("version"),
                   updated_at=sa.bindparam("updated_at")))


# -- the rule transitions check -------------------------------------------------------------

def check_assignee(snap: Snapshot, t: Transition, user: str) -> None:
    why = assignee_problem(snap, t, user)
    if why:
        raise NotAssignee(snap.id, t.event, snap.state, why, snap.assignee)


def start_work(conn: Connection, snap: Snapshot, actor: str, now: datetime) -> Entry:
    """The assignee's first action after an assignment: record when work started (same transaction)."""
    conn.execute(cases.update().where(cases.c.id == snap.id).values(work_started_at=stamp(now)))
    return _work_entry(snap, actor, now, snap.assigned_at, "the assignment")


def _work_entry(snap: Snapshot, actor: str, now: datetime, since: str | None, what: str) -> Entry:
    """`waited_s`: how long the case waited for this person (since the assignment, or its last change)."""
    waited = max(int((now - parse_datetime(since)).total_seconds()), 0) if since else 0
    return Entry("work", "start_work", snap.state, snap.state, actor, [],
                 {"work_started_at": [None, stamp(now)], "waited_s": waited},
                 f"start of work by {actor}; waited {_human(waited)} since {what}")


# -- who may hold a case ----------------------------------------------------------------------

def assignee_roles(d: Definition, state: str) -> frozenset[str]:
    """Roles whose holders may hold a case of `d` in `state`."""
    if d.assign_to:
        return frozenset(d.assign_to)
    return frozenset().union(*(t.roles for t in d.transitions_from(state) if not t.system))


def _refuse(snap: Snapshot, what: str, reason: str) -> AssignmentRefused:
    return AssignmentRefused(snap.id, what, snap.state, reason)


def _check_open(engine: Engine, snap: Snapshot, what: str) -> None:
    if snap.definition.states[snap.state].final:
        raise _refuse(snap, what, f"the case is closed ({snap.definition.label(snap.state)})")


def _check_may_hold(engine: Engine, snap: Snapshot, what: str, person: Person) -> None:
    allowed = assignee_roles(snap.definition, snap.state)
    if not (person.roles & allowed):
        labels = ", ".join(engine.catalog.org.role_label(r) for r in sorted(allowed)) or "nobody"
        raise _refuse(snap, what, f"{person.id} may not hold it: an assignee needs one of the roles {labels}")


def _check_assigner(engine: Engine, snap: Snapshot, what: str, person: Person) -> None:
    d = snap.definition
    if not (person.roles & d.assign_roles):
        if not d.assign_roles:
            raise _refuse(snap, what, f"nobody assigns {d.workflow} cases (the workflow has no assign_roles)")
        labels = ", ".join(engine.catalog.org.role_label(r) for r in sorted(d.assign_roles))
        raise _refuse(snap, what, f"{person.id} has none of the roles that assign: {labels}")


# -- the writes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pick:
    """The outcome of a balanced choice: who, and the loads it was made on."""

    user: str
    role: str
    loads: list[dict[str, Any]]      # [{"user", "name", "open_cases", "last_assigned_at"}], best first

    def why(self, engine: Engine) -> str:
        listed = ", ".join(f"{r['user']} {r['open_cases']}" for r in self.loads)
        return (f"fewest open assigned cases among {engine.catalog.org.role_label(self.role)}: {listed}"
                + (" (tie: least recently assigned, then user id)" if len(self.loads) > 1
                   and self.loads[0]["open_cases"] == self.loads[1]["open_cases"] else ""))


def assign(engine: Engine, case_id: str, actor: str | None, to: str | None, *, balance: bool = False,
           role: str | None = None, note: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Assign a case to `to`, or with `balance` to the least loaded holder of `role`."""
    with engine._recording("assign", case_id, actor):
        person = engine.person(actor)
        snap = engine.read_case(case_id)
        _check_open(engine, snap, "assign")
        _check_assigner(engine, snap, "assign", person)
        pick = None
        if balance:
            if to:
                raise UsageError("give a USER or --balance, not both")
            pick = balanced_pick(engine, snap, role)
            to = pick.user
        elif not to:
            raise UsageError("give the USER to assign to, or --balance")
        target = engine.person(to)
        _check_may_hold(engine, snap, "assign", target)
        if snap.assignee == target.id:
            raise _refuse(snap, "assign", f"already assigned to {target.id}")
        result = {"id": snap.id, "workflow": snap.workflow, "state": snap.state, "assignee": target.id,
                  "previous": snap.assignee, "by": person.id, "dry_run": dry_run,
                  "why": pick.why(engine) if pick else None, "loads": pick.loads if pick else None}
        if dry_run:
            return result
        now = engine.now()
        why = pick.why(engine) if pick else None
        text = "; ".join(x for x in (note, why) if x) or None
        _write(engine, snap, "assign", person, target.id, text, now, started=False)
        result["at"] = stamp(now)
    return result


def claim(engine: Engine, case_id: str, actor: str | None, note: str | None = None) -> dict[str, Any]:
    """Take an unassigned case for oneself; work starts now."""
    with engine._recording("claim", case_id, actor):
        person = engine.person(actor)
        snap = engine.read_case(case_id)
        _check_open(engine, snap, "claim")
        if snap.assignee == person.id:
            raise _refuse(snap, "claim", f"already assigned to {person.id}")
        if snap.assignee is not None:
            raise _refuse(snap, "claim", f"already assigned to {snap.assignee}; "
                          "they may release it, or a supervisor may reassign it")
        _check_may_hold(engine, snap, "claim", person)
        now = engine.now()
        _write(engine, snap, "claim", person, person.id, note, now, started=True)
    return {"id": snap.id, "workflow": snap.workflow, "state": snap.state, "assignee": person.id,
            "previous": None, "by": person.id, "at": stamp(now)}


def release(engine: Engine, case_id: str, actor: str | None, note: str | None = None) -> dict[str, Any]:
    """Give a case back to the queue: its assignee, or someone who assigns."""
    with engine._recording("release", case_id, actor):
        person = engine.person(actor)
        snap = engine.read_case(case_id)
        if snap.assignee is None:
            raise _refuse(snap, "release", "the case is not assigned to anyone")
        if snap.assignee != person.id:
            _check_assigner(engine, snap, "release", person)
        now = engine.now()
        _write(engine, snap, "release", person, None, note, now, started=False)
    return {"id": snap.id, "workflow": snap.workflow, "state": snap.state, "assignee": None,
            "previous": snap.assignee, "by": person.id, "at": stamp(now)}


def _write(engine: Engine, snap: Snapshot, what: str, person: Person, to: str | None, note: str | None,
           now: datetime, *, started: bool) -> None:
    d = snap.definition
    roles = sorted(person.roles & (d.assign_roles if what == "assign" else assignee_roles(d, snap.state)))
    if engine.before_write:
        engine.before_write(snap)
    with engine.store.write() as conn:
        result = conn.execute(_ASSIGN, {
            "case_id": snap.id, "seen": snap.version, "assignee": to,
            "assigned_at": stamp(now) if to else None, "work_started_at": stamp(now) if started else None,
            "version": snap.version + 1, "updated_at": stamp(now)})
        if result.rowcount != 1:
            raise StaleCase(snap.id)
        queue.refresh(conn, d, snap.id, queue.queues(d, snap.state, snap.data, snap.signoffs, snap.assignee),
                      queue.queues(d, snap.state, snap.data, snap.signoffs, to))
        entries = [Entry("assign", what, snap.state, snap.state, person.id, roles,
                         {"assignee": [snap.assignee, to]}, note)]
        if started:
            entries.append(_work_entry(snap, person.id, now, snap.updated_at, "the case's last change"))
        entries += sla.on_transition(conn, d, engine.catalog.calendar_for(d), snap.id, what, snap.state,
                                     snap.state, snap.data, now)
        audit.append(conn, case_id=snap.id, workflow=d.workflow, definition=d.sha256, entries=entries,
                     effective_at=stamp(now), org=engine.org_sha, os_user=engine.os_user,
                     version=snap.version + 1)


# -- balanced assignment ----------------------------------------------------------------------

def balanced_pick(engine: Engine, snap: Snapshot, role: str | None) -> Pick:
    d, org = snap.definition, engine.catalog.org
    role = role or (d.assign_to[0] if d.assign_to else None)
    if role is None:
        raise UsageError(f"--balance needs --role: the {d.workflow} workflow declares no assign_to")
    if role not in org.roles:
        from caseflow.definition.lint import did_you_mean
        hint = did_you_mean(role, org.roles)
        raise UsageError(f"--role {role}: unknown role" + (f" ({hint})" if hint else ""))
    holders = sorted(p.id for p in org.people.values() if role in p.roles)
    if not holders:
        raise _refuse(snap, "assign", f"nobody holds the role {org.role_label(role)}")
    with engine.store.read() as conn:
        counted = loads(engine, conn, holders, exclude=snap.id)
    rows: list[dict[str, Any]] = [{"user": u, "name": org.people[u].name, "open_cases": counted[u][0],
                                   "last_assigned_at": counted[u][1]} for u in holders]
    rows.sort(key=lambda r: (r["open_cases"], r["last_assigned_at"] or "", r["user"]))
    return Pick(rows[0]["user"], role, rows)


def loads(engine: Engine, conn: Connection, people: Iterable[str],
          exclude: str | None = None) -> dict[str, tuple[int, str | None]]:
    """user → (open cases assigned to them, when they were last given one); one indexed query."""
    people = list(people)
    is_open = sa.not_(closed_predicate(engine, conn))
    q = (sa.select(cases.c.assignee, sa.func.sum(sa.case((is_open, 1), else_=0)).label("n"),
                   sa.func.max(cases.c.assigned_at).label("last"))
         .where(cases.c.assignee.in_(people)).group_by(cases.c.assignee))
    if exclude:
        q = q.where(cases.c.id != exclude)
    found = {r.assignee: (int(r.n or 0), r.last) for r in conn.execute(q)}
    return {p: found.get(p, (0, None)) for p in people}


def closed_predicate(engine: Engine, conn: Connection) -> sa.ColumnElement[bool]:
    """SQL: the case is in a final state of its workflow (final states of every stored version)."""
    finals: dict[str, set[str]] = {}
    for sha, in conn.execute(sa.select(definitions.c.sha256)):
        d = engine.definition_of(conn, sha)
        finals.setdefault(d.workflow, set()).update(s.id for s in d.states.values() if s.final)
    terms = [sa.and_(cases.c.workflow == w, cases.c.state.in_(sorted(states)))
             for w, states in sorted(finals.items()) if states]
    return sa.or_(*terms) if terms else sa.false()


def _human(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    return " ".join(parts) or f"{seconds}s"
