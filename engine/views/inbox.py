"""The operator's work queue: the cases waiting for one person, most urgent first.

One index-exact query: every write of a case stores the queues it is in (`case_queue`,
runtime/queue.py — its roles with work, its signers, `@assignee`), so the inbox asks for
the cases in the person's queues (their roles and `@me`, of the workflows they may read)
through ix_case_queue_queue, each joined to its row by primary key, with its nearest
running SLA deadline from `timers` (ix_timers_case_id). Each row it returns is then
described by the code `caseflow show` uses (`views.cases.events`, `views.work.work_for`);
the stored queues are a superset, so the few rows whose work depends on the clock or on
the person (a guard over `now`, a signer who already signed) may still be dropped here.
Groups (views/work.py): assigned, signoff, ready, needs_input, to_claim, to_assign.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.definition.model import Definition, Person
from caseflow.runtime.queue import assignee_queue
from caseflow.runtime.snapshot import Snapshot
from caseflow.sla.clocks import BREACHED, RUNNING, ts
from caseflow.store.tables import case_queue, cases, definitions, timers
from caseflow.views.access import may_read
from caseflow.views.cases import events, masked_data
from caseflow.views.work import GROUPS, LABELS_ZH, work_for

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

PAGE_MARGIN = 10    # with --limit N the query fetches N + 10 rows (more only if that many are dropped)


@dataclass(frozen=True)
class Queue:
    """What the inbox query asks for: the person's queues, in the workflows they may read."""

    person: Person
    queues: tuple[str, ...]            # their role ids and @user
    workflows: tuple[str, ...]


def queue_for(engine: Engine, conn: Connection, person: Person) -> Queue:
    readable = set()
    for sha, in conn.execute(sa.select(definitions.c.sha256).order_by(definitions.c.sha256)):
        d = engine.definition_of(conn, sha)
        if may_read(engine, person, d):                  # read_roles: deny by default
            readable.add(d.workflow)
    return Queue(person, tuple(sorted(person.roles)) + (assignee_queue(person.id),), tuple(sorted(readable)))


_ROW = (cases.c.id, cases.c.workflow, cases.c.definition, cases.c.state, cases.c.data, cases.c.signoffs,
        cases.c.version, cases.c.parent_case, cases.c.created_at, cases.c.updated_at, cases.c.assignee,
        cases.c.assigned_at, cases.c.work_started_at)


def query(engine: Engine, conn: Connection, q: Queue) -> sa.Select[Any]:
    """The inbox's one SELECT (urgency order: mine first, then the nearest SLA deadline).

    The cases in the person's queues (a semi-join on ix_case_queue_queue, so a case in two of
    them comes once), each read by primary key; the deadline and the breach are correlated
    aggregates over the case's timers (index on case_id), computed only for the rows found.
    """
    me = q.person.id
    queued = sa.select(case_queue.c.case_id).where(case_queue.c.queue.in_(q.queues),
                                                   case_queue.c.workflow.in_(q.workflows))
    mine = sa.and_(timers.c.case_id == cases.c.id, timers.c.kind == "sla")
    due_at = (sa.select(sa.func.min(timers.c.due_at))
              .where(mine, timers.c.status.in_((RUNNING, BREACHED))).scalar_subquery().label("due_at"))
    breached = (sa.select(sa.func.count()).where(mine, timers.c.status == BREACHED)
                .scalar_subquery().label("breached"))
    return (sa.select(*_ROW, due_at, breached).where(cases.c.id.in_(queued))
            .order_by(sa.case((cases.c.assignee == me, 0), else_=1), sa.nulls_last(due_at.asc()),
                      cases.c.updated_at, cases.c.id))


def inbox(engine: Engine, user: str | None, limit: int | None = None) -> list[dict[str, Any]]:
    """The person's work queue in the documented `--json` shape (docs/inbox.md)."""
    person = engine.person(user)
    now = engine.now()
    out: list[dict[str, Any]] = []
    with engine.store.read() as conn:
        stmt = query(engine, conn, queue_for(engine, conn, person))
        if not limit:
            rows = conn.execute(stmt).all()      # fetched first: describing a row may query the connection
            return [item for row in rows if (item := describe(engine, conn, row, person, now)) is not None]
        offset, page = 0, limit + PAGE_MARGIN
        while True:
            got = conn.execute(stmt.limit(page).offset(offset)).all()
            for row in got:
                item = describe(engine, conn, row, person, now)
                if item is not None:
                    out.append(item)
                    if len(out) == limit:
                        return out
            if len(got) < page:
                return out
            offset += page


def describe(engine: Engine, conn: Connection, row: Any, person: Person, now: datetime) -> dict[str, Any] | None:
    """One inbox row for a case the query found, or None if there is nothing in it for this person."""
    import json
    d = engine.definition_of(conn, row.definition)
    if not may_read(engine, person, d):
        return None
    snap = Snapshot(row.id, row.workflow, d, row.state, json.loads(row.data), json.loads(row.signoffs),
                    row.version, row.parent_case, row.created_at, row.updated_at, row.assignee,
                    row.assigned_at, row.work_started_at)
    work = work_for(engine, snap, person, events(engine, snap, person, now))
    if work is None:
        return None
    overdue = bool(row.breached) or (row.due_at is not None and ts(now) > row.due_at)
    return {
        "id": snap.id, "workflow": snap.workflow, "label_zh": d.label_zh, "group": work["group"],
        "group_label_zh": work["group_label_zh"], "state": snap.state,
        "state_label_zh": d.states[snap.state].label_zh, "assignee": snap.assignee, "summary": summary(d, snap.data),
        "ready": work["ready"], "needs_input": work["needs_input"], "signoff": work["signoff"],
        "due_at": row.due_at, "overdue": overdue, "updated_at": snap.updated_at,
    }


def summary(d: Definition, data: dict[str, Any]) -> dict[str, Any]:
    """The workflow's summary fields (`summary:` in the YAML), personal data masked."""
    shown = masked_data(d, {f: data[f] for f in d.summary if f in data}, unmask=False)
    return {f: shown.get(f) for f in d.summary}


def explain(engine: Engine, user: str | None) -> Iterator[str]:
    """The database's plan for the inbox query (EXPLAIN QUERY PLAN / EXPLAIN), line by line."""
    person = engine.person(user)
    with engine.store.read() as conn:
        q = queue_for(engine, conn, person)
        stmt = query(engine, conn, q)
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        for r in conn.exec_driver_sql(engine.store.backend.explain + sql):
            yield " | ".join(str(v) for v in r)


__all__ = ["inbox", "query", "queue_for", "describe", "explain", "GROUPS", "LABELS_ZH"]
