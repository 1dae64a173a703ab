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

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.definition.model import Definition, Person
from caseflow.runtime.queue import assignee_queue, person_queue, queue_roles, reads_of
from caseflow.runtime.snapshot import Snapshot
from caseflow.sla.clocks import BREACHED, ts
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
    queues: tuple[str, ...]            # their role ids, @user (assigned to them) and ~user (reserved for them)
    workflows: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...] = ()     # (queue, workflow) that can hold a case for them


def queue_for(engine: Engine, conn: Connection, person: Person) -> Queue:
    readable: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    mine = (assignee_queue(person.id), person_queue(person.id))
    for sha, in conn.execute(sa.select(definitions.c.sha256).order_by(definitions.c.sha256)):
        d = engine.definition_of(conn, sha)
        if may_read(engine, person, d):                  # read_roles: deny by default
            readable.add(d.workflow)
            pairs.update((r, d.workflow) for r in person.roles & queue_roles(d))
            pairs.update((m, d.workflow) for m in mine)
    return Queue(person, tuple(sorted(person.roles)) + mine, tuple(sorted(readable)), tuple(sorted(pairs)))


_ROW = (cases.c.id, cases.c.workflow, cases.c.definition, cases.c.state, cases.c.data, cases.c.signoffs,
        cases.c.version, cases.c.parent_case, cases.c.created_at, cases.c.updated_at, cases.c.assignee,
        cases.c.assigned_at, cases.c.work_started_at)
_Q = case_queue.c


def query(q: Queue, first: int | None = None, offset: int = 0) -> sa.Select[Any]:
    """The inbox's one SELECT for this person (built once per queues and page: see `_query`)."""
    return _query(q.pairs, assignee_queue(q.person.id), first, offset)


@lru_cache(maxsize=256)
def _query(pairs: tuple[tuple[str, str], ...], me: str, first: int | None, offset: int) -> sa.Select[Any]:
    """The inbox's one SELECT, in urgency order: assigned to me first, then the nearest SLA deadline
    (none last), then the oldest case, then the id — all stored on the queue rows (`case_queue`).

    With `first` (a page: rows `offset` … `offset + first`) each (queue, workflow) the person
    reads gives its first `offset + first` rows with a deadline and as many without, in that order,
    straight from ix_case_queue_order (an ordered LIMIT each, no sort); the union of those few
    rows — a case in two of the queues once — is sorted and cut. Only the rows of the page are
    joined to `cases` (primary key) and have their breaches counted (ix_timers_case_id).
    """
    each = None if first is None else offset + first
    parts: list[sa.Select[Any]] = []
    for name, workflow in pairs:
        mine = sa.literal(0 if name == me else 1).label("mine")
        base = sa.select(_Q.case_id, _Q.due_at, _Q.created_at, mine).where(_Q.queue == name, _Q.workflow == workflow)
        if each is None:
            parts.append(base)
            continue
        for dated in (_Q.due_at.is_not(None), _Q.due_at.is_(None)):     # NULLs sort first on one, last on the other
            part = base.where(dated).order_by(_Q.due_at, _Q.created_at, _Q.case_id).limit(each).subquery()
            parts.append(sa.select(*part.c))              # SQLite: a compound's members cannot be ordered
    if not parts:
        parts.append(sa.select(_Q.case_id, _Q.due_at, _Q.created_at, sa.literal(1).label("mine")).where(sa.false()))
    top = sa.union_all(*parts).subquery("top")
    found = (sa.select(top.c.case_id, sa.func.min(top.c.mine).label("mine"), sa.func.min(top.c.due_at).label("due_at"),
                       sa.func.min(top.c.created_at).label("created_at"))
             .group_by(top.c.case_id).subquery("found"))
    order = (found.c.mine, sa.nulls_last(found.c.due_at.asc()), found.c.created_at, found.c.case_id)
    page = sa.select(*found.c).order_by(*order)
    if first is not None:
        page = page.limit(first).offset(offset)
    page_rows = page.subquery("page")
    breached = (sa.select(sa.func.count()).where(timers.c.case_id == cases.c.id, timers.c.kind == "sla",
                                                  timers.c.status == BREACHED).scalar_subquery().label("breached"))
    return (sa.select(*_ROW, page_rows.c.due_at, breached)
            .join_from(page_rows, cases, cases.c.id == page_rows.c.case_id)
            .order_by(page_rows.c.mine, sa.nulls_last(page_rows.c.due_at.asc()), page_rows.c.created_at,
                      page_rows.c.case_id))


def inbox(engine: Engine, user: str | None, limit: int | None = None) -> list[dict[str, Any]]:
    """The person's work queue in the documented `--json` shape (docs/inbox.md)."""
    person = engine.person(user)
    now = engine.now()
    out: list[dict[str, Any]] = []
    with engine.store.read() as conn:
        q = queue_for(engine, conn, person)
        describe = Describer(engine, conn, person, now)
        if not limit:
            rows = conn.execute(query(q)).all()   # fetched first: describing a row may query
            return [item for row in rows if (item := describe(row)) is not None]
        offset, page = 0, limit + PAGE_MARGIN
        while True:
            got = conn.execute(query(q, page, offset)).all()
            for row in got:
                item = describe(row)
                if item is not None:
                    out.append(item)
                    if len(out) == limit:
                        return out
            if len(got) < page:
                return out
            offset += page


class Describer:
    """Describes the rows of one inbox call with the code `caseflow show` uses (`events`, `work_for`).

    What a case holds for the person depends only on its definition version, state, assignee and
    signatures and on the fields its possible events require or their guards read (`queue.reads`):
    `now` and the person are the same for every row of the call. So cases alike in those are
    described once per call (a queue of cards in one state: once), the others case by case.
    """

    def __init__(self, engine: Engine, conn: Connection, person: Person, now: datetime) -> None:
        self.engine, self.conn, self.person, self.now, self.now_s = engine, conn, person, now, ts(now)
        self.work: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        self.readable: dict[str, bool] = {}

    def __call__(self, row: Any) -> dict[str, Any] | None:
        """One inbox row for a case the query found, or None if there is nothing in it for this person."""
        d = self.engine.definition_of(self.conn, row.definition)
        if row.definition not in self.readable:
            self.readable[row.definition] = may_read(self.engine, self.person, d)
        if not self.readable[row.definition]:
            return None
        data = json.loads(row.data)
        required, values = reads_of(d, row.state)
        key = (row.definition, row.state, row.assignee, row.signoffs,
               tuple(data.get(f) in (None, "") for f in required), tuple(repr(data.get(f)) for f in values))
        if key not in self.work:
            snap = Snapshot(row.id, row.workflow, d, row.state, data, json.loads(row.signoffs), row.version,
                            row.parent_case, row.created_at, row.updated_at, row.assignee, row.assigned_at,
                            row.work_started_at)
            self.work[key] = work_for(self.engine, snap, self.person, events(self.engine, snap, self.person,
                                                                               self.now))
        work = self.work[key]
        if work is None:
            return None
        overdue = bool(row.breached) or (row.due_at is not None and self.now_s > row.due_at)
        return {
            "id": row.id, "workflow": row.workflow, "label_zh": d.label_zh, "group": work["group"],
            "group_label_zh": work["group_label_zh"], "state": row.state,
            "state_label_zh": d.states[row.state].label_zh, "assignee": row.assignee, "summary": summary(d, data),
            "ready": work["ready"], "needs_input": work["needs_input"], "signoff": work["signoff"],
            "due_at": row.due_at, "overdue": overdue, "updated_at": row.updated_at, "created_at": row.created_at,
        }


def describe(engine: Engine, conn: Connection, row: Any, person: Person, now: datetime) -> dict[str, Any] | None:
    """One inbox row for a case the query found (a row of `query`), or None if there is nothing in it for them."""
    return Describer(engine, conn, person, now)(row)


def summary(d: Definition, data: dict[str, Any]) -> dict[str, Any]:
    """The workflow's summary fields (`summary:` in the YAML), personal data masked."""
    shown = masked_data(d, {f: data[f] for f in d.summary if f in data}, unmask=False)
    return {f: shown.get(f) for f in d.summary}


def explain(engine: Engine, user: str | None, limit: int | None = None) -> Iterator[str]:
    """The database's plan for the inbox query (EXPLAIN QUERY PLAN / EXPLAIN), line by line; with `limit`,
    the query of its first page."""
    person = engine.person(user)
    with engine.store.read() as conn:
        q = queue_for(engine, conn, person)
        stmt = query(q, limit + PAGE_MARGIN if limit else None)
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        for r in conn.exec_driver_sql(engine.store.backend.explain + sql):
            yield " | ".join(str(v) for v in r)


__all__ = ["inbox", "query", "queue_for", "describe", "Describer", "explain", "GROUPS", "LABELS_ZH"]
