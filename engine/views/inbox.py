"""The operator's work queue: the cases waiting for one person, most urgent first.

One query over `cases`, driven by the definitions rather than by reading cases:
from every stored definition version it works out which states the person's
roles act on (transitions they may fire that are to-dos, `inbox: true`), and
asks for the union of
- the open cases assigned to them                  (index ix_cases_queue: assignee = me),
- unassigned cases of those (workflow, definition, state) triples
                                                   (ix_cases_queue: assignee IS NULL, workflow, definition, state),
- the cases whose next sign-off is by one of their roles (ix_cases_next_signoff),
with each case's nearest running SLA deadline from `timers` (ix_timers_case_id).
Each row it returns is then described by the same code `caseflow show` uses
(`views.cases.events`: roles, assignee, required fields, guards), which sorts
it into one group or drops it (e.g. a complaint forwarded to another department):

  assigned     assigned to me (always listed, first)
  signoff      my sign-off is next
  ready        I may fire one of its to-do events now
  needs_input  I may fire one once the named fields are given
  to_claim     only the assignment is missing: I may claim it (assignee_only events)
  to_assign    unassigned, waiting for an assignee_only event, and I assign for the workflow

Cases assigned to someone else are theirs: they appear only for the person whose sign-off is next.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.definition.model import Definition, Person
from caseflow.runtime.assignment import closed_predicate
from caseflow.runtime.snapshot import Snapshot
from caseflow.sla.clocks import BREACHED, RUNNING, ts
from caseflow.store.tables import cases, definitions, timers
from caseflow.views.access import may_read
from caseflow.views.cases import events, masked_data

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

GROUPS = ("assigned", "signoff", "ready", "needs_input", "to_claim", "to_assign")
LABELS_ZH = {"assigned": "分派给我", "signoff": "待我签字", "ready": "可办理", "needs_input": "待补充信息",
             "to_claim": "待认领", "to_assign": "待分派"}


@dataclass(frozen=True)
class Queue:
    """What the inbox query asks for, worked out from the definitions and the person's roles."""

    person: Person
    triples: tuple[tuple[str, str, tuple[str, ...]], ...]    # (workflow, definition sha, states)
    roles: tuple[str, ...]


def states_for(d: Definition, person: Person) -> tuple[str, ...]:
    """States of `d` where a person with these roles has work: a to-do event of theirs, or one to assign."""
    assigner = bool(person.roles & d.assign_roles)
    out = []
    for s in d.states.values():
        if s.final:
            continue
        todo = [t for t in d.transitions_from(s.id) if t.inbox and not t.system and not t.signoffs]
        if any(person.roles & t.roles for t in todo) or (assigner and any(t.assignee_only for t in todo)):
            out.append(s.id)
    return tuple(out)


def queue_for(engine: Engine, conn: Connection, person: Person) -> Queue:
    triples = []
    for sha, in conn.execute(sa.select(definitions.c.sha256).order_by(definitions.c.sha256)):
        d = engine.definition_of(conn, sha)
        states = states_for(d, person) if may_read(engine, person, d) else ()    # read_roles: deny by default
        if states:
            triples.append((d.workflow, sha, states))
    return Queue(person, tuple(triples), tuple(sorted(person.roles)))


_ROW = (cases.c.id, cases.c.workflow, cases.c.definition, cases.c.state, cases.c.data, cases.c.signoffs,
        cases.c.version, cases.c.parent_case, cases.c.created_at, cases.c.updated_at, cases.c.assignee,
        cases.c.assigned_at, cases.c.work_started_at)


def query(engine: Engine, conn: Connection, q: Queue) -> sa.Select[Any]:
    """The inbox's one SELECT (urgency order: mine first, then the nearest SLA deadline).

    Each branch reads whole rows through its own index (UNION ALL: a case found by two
    branches comes twice, side by side in the order, and `inbox` keeps the first), so no
    branch needs a second pass over `cases`. The deadline and the breach are correlated
    aggregates over the case's timers (index on case_id), computed only for the rows found.
    """
    me = q.person.id
    branches: list[sa.Select[Any]] = [
        sa.select(*_ROW).where(cases.c.assignee == me, sa.not_(closed_predicate(engine, conn)))]
    branches += [sa.select(*_ROW).where(cases.c.assignee.is_(None), cases.c.workflow == w,
                                        cases.c.definition == sha, cases.c.state.in_(states))
                 for w, sha, states in q.triples]
    if q.roles:
        branches.append(sa.select(*_ROW).where(cases.c.next_signoff_role.in_(q.roles)))
    found = sa.union_all(*branches).subquery("found")
    mine = sa.and_(timers.c.case_id == found.c.id, timers.c.kind == "sla")
    due_at = (sa.select(sa.func.min(timers.c.due_at))
              .where(mine, timers.c.status.in_((RUNNING, BREACHED))).scalar_subquery().label("due_at"))
    breached = (sa.select(sa.func.count()).where(mine, timers.c.status == BREACHED)
                .scalar_subquery().label("breached"))
    return (sa.select(found, due_at, breached)
            .order_by(sa.case((found.c.assignee == me, 0), else_=1), sa.nulls_last(due_at.asc()),
                      found.c.updated_at, found.c.id))


def inbox(engine: Engine, user: str | None, limit: int | None = None) -> list[dict[str, Any]]:
    """The person's work queue in the documented `--json` shape (docs/inbox.md)."""
    person = engine.person(user)
    now = engine.now()
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    with engine.store.read() as conn:
        q = queue_for(engine, conn, person)
        for row in conn.execute(query(engine, conn, q)):
            if row.id in seen:
                continue
            seen.add(row.id)
            item = describe(engine, conn, row, person, now)
            if item is not None:
                out.append(item)
                if limit is not None and len(out) >= limit:
                    break
    return out


def describe(engine: Engine, conn: Connection, row: Any, person: Person, now: datetime) -> dict[str, Any] | None:
    """One inbox row for a case the query found, or None if there is nothing in it for this person."""
    import json
    d = engine.definition_of(conn, row.definition)
    if not may_read(engine, person, d):
        return None
    snap = Snapshot(row.id, row.workflow, d, row.state, json.loads(row.data), json.loads(row.signoffs),
                    row.version, row.parent_case, row.created_at, row.updated_at, row.assignee,
                    row.assigned_at, row.work_started_at)
    evs = [e for e in events(engine, snap, person, now) if e["inbox"]]
    ready = [e for e in evs if e["allowed"]]
    needs = [e for e in evs if not e["allowed"] and all(m.startswith("fields: ") for m in e["missing"])]
    claim = [e for e in evs if snap.assignee is None and e["assignee_only"]
             and all(m.startswith(("assignee: ", "fields: ")) for m in e["missing"])]
    signoff = my_signoff(engine, snap, person)
    mine = snap.assignee == person.id
    if mine:
        group = "assigned"
    elif signoff:
        group = "signoff"
    elif snap.assignee is not None:
        return None
    elif ready:
        group = "ready"
    elif needs:
        group = "needs_input"
    elif claim:
        group = "to_claim"
    elif person.roles & d.assign_roles and any(e["assignee_only"] for e in evs):
        group = "to_assign"
    else:
        return None
    overdue = bool(row.breached) or (row.due_at is not None and ts(now) > row.due_at)
    return {
        "id": snap.id, "workflow": snap.workflow, "label_zh": d.label_zh, "group": group,
        "group_label_zh": LABELS_ZH[group], "state": snap.state, "state_label_zh": d.states[snap.state].label_zh,
        "assignee": snap.assignee, "summary": summary(d, snap.data),
        "ready": [{"event": e["event"], "label_zh": e["label_zh"], "inputs": e["inputs"]} for e in ready],
        "needs_input": [{"event": e["event"], "label_zh": e["label_zh"], "fields": _fields(e["missing"])}
                        for e in needs],
        "signoff": signoff, "due_at": row.due_at, "overdue": overdue, "updated_at": snap.updated_at,
    }


def my_signoff(engine: Engine, snap: Snapshot, person: Person) -> dict[str, str] | None:
    """The sign-off `caseflow show` names as next, when it is this person's to give."""
    from caseflow.runtime.actions import pending_signoff_role
    role = pending_signoff_role(snap.definition, snap.state, snap.signoffs)
    if role is None or role not in person.roles:
        return None
    t = snap.definition.signoff_transition(snap.state)
    if t and t.signoffs and t.signoffs.distinct_people and any(s["by"] == person.id for s in snap.signoffs):
        return None
    return {"role": role, "label_zh": engine.catalog.org.roles[role].label_zh
            if role in engine.catalog.org.roles else role}


def summary(d: Definition, data: dict[str, Any]) -> dict[str, Any]:
    """The workflow's summary fields (`summary:` in the YAML), personal data masked."""
    shown = masked_data(d, data, unmask=False)
    return {f: shown.get(f) for f in d.summary}


def _fields(missing: list[str]) -> list[str]:
    names: list[str] = []
    for m in missing:
        text = m.removeprefix("fields: ").removesuffix(" (give with --set)")
        names += [n.strip() for n in text.split(",") if n.strip()]
    return names


def explain(engine: Engine, user: str | None) -> Iterator[str]:
    """The database's plan for the inbox query (EXPLAIN QUERY PLAN / EXPLAIN), line by line."""
    person = engine.person(user)
    with engine.store.read() as conn:
        q = queue_for(engine, conn, person)
        stmt = query(engine, conn, q)
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        for r in conn.exec_driver_sql(engine.store.backend.explain + sql):
            yield " | ".join(str(v) for v in r)


__all__ = ["inbox", "query", "queue_for", "states_for", "explain", "GROUPS", "LABELS_ZH"]
