"""The write side of an action: commit a planned change and run its consequences.

Inside one transaction: the versioned UPDATE (or INSERT for a new case), the
unique-key rows, decision tables with their counters, the audit rows, the
state's and transition's actions (escalate, notify, spawn, fire) and the SLA
clocks. Any exception rolls all of it back together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import chain as audit
from caseflow.audit.chain import Entry
from caseflow.definition.evaluate import evaluate_decision, holds, schema_problem, stamp
from caseflow.definition.expressions import Compiled, EvalContext
from caseflow.definition.kinds import KINDS
from caseflow.definition.model import Action, Definition, Person, Transition
from caseflow.errors import InvalidData, RoleNotAllowed, SignoffRefused, TransitionRefused, WrongState
from caseflow.jsontext import encoder
from caseflow.runtime import assignment, queue
from caseflow.runtime.turns import eligible_signers, pending_signoff_role
from caseflow.sla import clocks as sla
from caseflow.store import driver_sql
from caseflow.store.backend import backend_of
from caseflow.store.tables import case_keys, cases, outbox
from caseflow.values import sortable_time

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine
    from caseflow.runtime.snapshot import Change, Snapshot

MAX_CHAIN = 5
KEY_MAX = 512        # unique values and decision-counter keys: the width of case_keys.value, decision_counts.key

INSERT_CASE = cases.insert()            # built once; bulk import batches these rows
INSERT_OUTBOX = outbox.insert()
_OUTBOX_TEXT = "INSERT INTO outbox (case_id, role, message, created_at) VALUES (:case_id, :role, :message, :created_at)"
# fire actions may trigger further system events, but not forever


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    keys = set(before) | set(after)
    return {k: [before.get(k), after.get(k)] for k in sorted(keys) if before.get(k) != after.get(k)}


def open_case(engine: Engine, conn: Connection, d: Definition, data: dict[str, Any], person: Person | None,
              now: datetime, note: str | None, parent: str | None, *, registered: bool = False,
              one_write: bool = False, case_id: str | None = None) -> str:
    """Insert a new case and everything its opening does; `registered`: the caller stored `d` already;
    `one_write`: `Engine.open` inside `driver_sql.opening` (the case's rows go in `finish_open`);
    `case_id`: one the caller drew and found free (an import), else a new one."""
    actor = person.id if person else "system"
    problem = schema_problem(d, data)
    if problem:
        raise InvalidData("", f"open {d.workflow}", d.initial, f"data would be invalid: {problem}")
    if not registered:
        engine.register(conn, d, now)
    if not case_id:
        from caseflow.runtime.snapshot import new_case_id
        case_id = new_case_id(d.workflow)
    _claim_keys(conn, d, case_id, {}, data, opening=True)
    if not one_write and not driver_sql.in_step(conn):
        queue.store_new(conn, d, case_id, d.initial, data, [], None)
    entries = [Entry("open", "open", None, d.initial, actor, sorted(person.roles) if person else [],
                     _changes({}, data), note)]
    entries += run_actions(engine, conn, d, case_id, d.states[d.initial].on_enter, data, {}, {}, actor, now)
    entries += sla.on_transition(conn, d, engine.catalog.calendar_for(d), case_id, "open", None,
                                 d.initial, data, now, engine.person_attr)
    rows, (seq, last) = audit.chained(case_id=case_id, workflow=d.workflow, definition=d.sha256, entries=entries,
                                      effective_at=stamp(now), org=engine.org_sha, os_user=engine.os_user,
                                      version=1, after=(0, audit.GENESIS))     # a new case: its chain starts here
    # The case row last, with its chain head (nothing written before refers to it).
    case = {"id": case_id, "workflow": d.workflow, "definition": d.sha256, "state": d.initial, "data": _dump(data),
            "signoffs": "[]", "version": 1, "parent_case": parent, "created_at": stamp(now),
            "updated_at": stamp(now), "received_at": sortable_time(data.get("received_at"), stamp(now)),
            "next_signoff_role": pending_signoff_role(d, d.initial, []), "audit_seq": seq, "audit_hash": last}
    if one_write:
        driver_sql.finish_open(conn, case, rows, (d.workflow, queue.queues(d, d.initial, data, [], None)))
        return case_id
    if driver_sql.in_step(conn):       # a linked case opened by a step: the driver's prebuilt statements
        driver_sql.insert_case(conn, case, rows, (d.workflow, queue.queues(d, d.initial, data, [], None)))
        return case_id
    conn.execute(INSERT_CASE, case)
    conn.execute(audit.INSERT, rows)
    return case_id


def _case_values(change: Change, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    snap, d = change.snap, change.snap.definition
    return {"case_id": snap.id, "seen": snap.version, "state": change.dest, "data": _dump(data),
            "signoffs": _dump(change.signoffs), "version": snap.version + 1, "updated_at": stamp(now),
            "next_signoff_role": pending_signoff_role(d, change.dest, change.signoffs),
            "received_at": sortable_time(data.get("received_at"), snap.created_at)}


def _head(conn: Connection, snap: Snapshot) -> tuple[int, str]:
    """The chain head read with the snapshot (the case row keeps it), else from the log."""
    if snap.audit_seq is not None and snap.audit_hash is not None:
        return snap.audit_seq, snap.audit_hash
    return audit.head(conn, snap.id)


def commit(engine: Engine, conn: Connection, change: Change, now: datetime, note: str | None,
           kind: str, depth: int = 0) -> None:
    snap, t, d = change.snap, change.transition, change.snap.definition
    assert t is not None
    actor = change.actor
    data = dict(change.data)
    entries: list[Entry] = list(change.entries)
    if change.role is not None:      # a signature (or rejection) is given in exactly one role
        roles = [change.role]
    else:
        roles = sorted(engine.catalog.org.people[actor].roles & t.roles) if actor in engine.catalog.org.people else []
    event = {"reject": "reject", "signoff": "sign"}.get(kind, t.event)   # one name per act, whatever the step
    changed: dict[str, Any] = dict(_changes(snap.data, data))
    if change.inputs:
        changed["@input"] = change.inputs          # event inputs (e.g. a purchase amount) are evidence too
    log: dict[str, Any] = {"case_id": snap.id, "workflow": d.workflow, "definition": d.sha256,
                           "effective_at": stamp(now), "org": engine.org_sha, "os_user": engine.os_user,
                           "version": snap.version + 1}
    decided: list[Entry] = []
    if kind == "transition" and t.decide:     # the plan already checked the data; outcomes may change it
        data, decided = _decisions(engine, conn, d, t, data, change.inputs, actor, now)
        problem = schema_problem(d, data, before=snap.data)
        if problem:
            raise InvalidData(snap.id, t.event, snap.state, f"data would be invalid: {problem}")
        changed = dict(_changes(snap.data, data)) | ({"@input": change.inputs} if change.inputs else {})
    # The versioned UPDATE waits: a step that writes nothing else sends it with its audit rows (one
    # statement on PostgreSQL); any other statement first sends it (driver_sql.pending_write).
    with driver_sql.pending_write(conn, _case_values(change, data, now), snap.id, snap.stored):
        if snap.assignee is not None and snap.assignee == actor and snap.work_started_at is None:
            entries.insert(0, assignment.start_work(conn, snap, actor, now))    # the assignee's first action
        _claim_keys(conn, d, snap.id, snap.data, data, final=d.states[change.dest].final,
                    event=t.event, state=snap.state)
        entries.append(Entry(kind, event, snap.state, change.dest, actor, roles, changed, note))
        entries += decided
        if kind == "signoff":
            entries += sla.on_transition(conn, d, engine.catalog.calendar_for(d), snap.id,
                                         "sign", snap.state, snap.state, data, now, engine.person_attr)
        else:
            moved = change.dest != snap.state
            todo = ((list(d.states[change.dest].on_enter) if moved else [])
                    + (list(t.actions) if kind == "transition" else []))
            entries += run_actions(engine, conn, d, snap.id, todo, data, change.inputs, t.inputs, actor, now,
                                   depth)
            entries += sla.on_transition(conn, d, engine.catalog.calendar_for(d), snap.id,
                                         event, snap.state, change.dest, data, now, engine.person_attr)
        # Its work queues, when they changed, are written with it (in the one statement on PostgreSQL);
        # a fired event is more statements, so on PostgreSQL BEGIN goes first (driver_sql.more_statements):
        # a crash anywhere in the step leaves the case as it was or as it ends (tests/reliability/test_crash.py).
        changed_queues = None
        if not queue.same_queues(d, snap.state, change.dest, snap.data, data, snap.signoffs, change.signoffs):
            now_in = queue.queues(d, change.dest, data, change.signoffs, snap.assignee)
            if now_in != queue.queues(d, snap.state, snap.data, snap.signoffs, snap.assignee):
                changed_queues = (snap.id, d.workflow, now_in)
        if any(e.kind == "fire" for e in entries):
            driver_sql.more_statements(conn)
        rows, new_head = audit.chained(entries=entries, after=_head(conn, snap), **log)
        driver_sql.finish_write(conn, snap.id, rows, new_head, changed_queues)
    for fire in [e for e in entries if e.kind == "fire"]:
        fire_system(engine, conn, snap.id, fire.event, now, f"fired by {t.event}", depth + 1)


def fire_system(engine: Engine, conn: Connection, case_id: str, event: str, now: datetime,
                reason: str, depth: int = 0) -> bool:
    """Fire a system event inside the caller's transaction (timers, SLA breaches, fire actions).

    Returns False (and changes nothing) when the event is not possible now, e.g. the case moved on.
    """
    if depth > MAX_CHAIN:
        return False
    snap = engine.snapshot(conn, case_id)
    for t in snap.definition.candidates(event, snap.state):
        if not t.system:
            continue
        try:
            change = engine.decide(snap, t, dict(snap.data), {}, "system", now)
        except TransitionRefused:
            continue
        commit(engine, conn, change, now, reason, "transition", depth)
        return True
    return False


def _decisions(engine: Engine, conn: Connection, d: Definition, t: Transition, data: dict[str, Any],
               inputs: dict[str, Any], actor: str, now: datetime) -> tuple[dict[str, Any], list[Entry]]:
    entries = []
    for name in t.decide:
        table = d.decisions[name]
        act, ctx = engine.scope(d, data, now, actor, inputs, t.inputs)
        count = None
        # a counting row names its counter (field, period) so `audit verify` can rebuild the counter
        counter: dict[str, Any] = {}
        if table.count_key and data.get(table.count_key) is not None and holds(table.count_when, act, ctx):
            if len(str(data[table.count_key])) > KEY_MAX:
                raise InvalidData("", t.event, "", f"{table.count_key} is "
                                  f"{len(str(data[table.count_key])):,} characters; a counted field holds at "
                                  f"most {KEY_MAX}")
            period = _period(now, d, table.count_period)
            count = _bump(conn, d, name, str(data[table.count_key]), period)
            counter = {"counted_by": table.count_key, "period": period}
        outcome = evaluate_decision(d, name, act, ctx, count)
        if outcome is None:
            entries.append(Entry("decision", name, None, None, actor, [],
                                 {"count": count, "outcome": None, **counter}, f"{table.label_zh}: no rule matched"))
            continue
        entries.append(Entry("decision", name, None, None, actor, [], {"count": count, "outcome": outcome, **counter},
                             table.label_zh))
        data = {**data, **outcome}
    return data, entries


def _period(now: datetime, d: Definition, period: str | None) -> str:
    local = now.astimezone(d.tz)
    return {"day": local.strftime("%Y-%m-%d"), "year": local.strftime("%Y")}.get(period or "month",
                                                                                  local.strftime("%Y-%m"))


SHARED = "*"   # decision counters are shared by table name across workflows (a person's offences add up)


# The upsert of a shared counter as driver SQL (both databases know ON CONFLICT … RETURNING): building
# it with SQLAlchemy Core on every decision cost more than the rest of the step.
_BUMP = ('INSERT INTO decision_counts (workflow, decision, "key", period, count) '
         'VALUES (:workflow, :decision, :key, :period, 1) ON CONFLICT (workflow, decision, "key", period) '
         'DO UPDATE SET count = decision_counts.count + 1 RETURNING count')


def _bump(conn: Connection, d: Definition, name: str, key: str, period: str) -> int:
    """Increment and return a shared counter atomically (an upsert: safe under concurrency)."""
    params = {"workflow": SHARED, "decision": name, "key": key, "period": period}
    driver_sql.flush_pending(conn)
    backend_of(conn).more_statements(conn)       # PostgreSQL: BEGIN before the first of several statements
    return int(driver_sql.run(conn, driver_sql.rendered(conn, _BUMP), params).fetchone()[0])


def _claim_keys(conn: Connection, d: Definition, case_id: str, before: dict[str, Any],
                after: dict[str, Any], final: bool = False, opening: bool = False,
                event: str = "", state: str = "") -> None:
    """`unique` fields: one open case per value, enforced by the table's primary key."""
    for f in d.unique:
        old, new = before.get(f), (None if final else after.get(f))
        if old == new and not final:
            continue
        if old is not None:
            conn.execute(case_keys.delete().where(case_keys.c.workflow == d.workflow, case_keys.c.field == f,
                                                  case_keys.c.value == str(old), case_keys.c.case_id == case_id))
        if new is not None:
            if len(str(new)) > KEY_MAX:         # the key column's width, on SQLite as on PostgreSQL
                raise InvalidData("" if opening else case_id, f"open {d.workflow}" if opening else event,
                                  state or d.initial, f"{f} is {len(str(new)):,} characters; a unique field "
                                  f"holds at most {KEY_MAX}")
            holder = conn.execute(sa.select(case_keys.c.case_id).where(
                case_keys.c.workflow == d.workflow, case_keys.c.field == f,
                case_keys.c.value == str(new))).scalar()
            if holder and holder != case_id:
                raise InvalidData("" if opening else case_id, f"open {d.workflow}" if opening else event,
                                  state or d.initial, f"{f} already belongs to open case {holder}")
            conn.execute(case_keys.insert().values(workflow=d.workflow, field=f, value=str(new), case_id=case_id))


def run_actions(engine: Engine, conn: Connection, d: Definition, case_id: str, todo: Sequence[Action],
                 data: dict[str, Any], inputs: dict[str, Any], input_schemas: Mapping[str, Any], actor: str,
                 now: datetime, depth: int = 0) -> list[Entry]:
    if not todo:                          # most steps run no action: no activation to build
        return []
    run = _Run(engine, conn, d, case_id, actor, now, lambda: engine.scope(d, data, now, actor, inputs, input_schemas))
    for a in todo:
        if a.when is None or _when(d, a.when, data, run):
            KINDS[a.kind].run(a, run)
    return run.entries


_WHEN: dict[tuple[Any, ...], bool] = {}


def _when(d: Definition, expr: Compiled, data: Mapping[str, Any], run: _Run) -> bool:
    """An action's `when`; a stable one (queue.stable_reads) remembered by the values it reads, as the
    work queues remember their guards: most cases share them (e.g. `severity == 'major'`)."""
    reads = queue.stable_reads(d, expr)
    if reads is None:
        return holds(expr, *run.scope())
    key = (d.sha256, expr.text, *[repr(data.get(n)) for n in reads])
    hit = _WHEN.get(key)
    if hit is None:
        if len(_WHEN) > 50_000:
            _WHEN.clear()
        hit = _WHEN[key] = holds(expr, *run.scope())
    return hit


class _Run:
    """The runtime's side of the action-kind seam (definition/kinds.py `ActionRun`), inside one transaction."""

    def __init__(self, engine: Engine, conn: Connection, d: Definition, case_id: str, actor: str,
                 now: datetime, build: Callable[[], tuple[dict[str, Any], EvalContext]]) -> None:
        self.engine, self.conn, self.definition, self.case_id = engine, conn, d, case_id
        self.actor, self.now, self._build = actor, now, build
        self._scope: tuple[dict[str, Any], EvalContext] | None = None
        self.entries: list[Entry] = []

    def scope(self) -> tuple[dict[str, Any], EvalContext]:
        """What the actions' expressions see, built when the first one is evaluated."""
        if self._scope is None:
            self._scope = self._build()
        return self._scope

    def evaluate(self, expr: Compiled) -> Any:
        return expr.evaluate(*self.scope())

    def record(self, kind: str, event: str, changes: dict[str, Any], note: str | None) -> None:
        self.entries.append(Entry(kind, event, None, None, self.actor, [], changes, note))

    def outbox(self, role: str, message: str) -> None:
        row = {"case_id": self.case_id, "role": role, "message": message, "created_at": stamp(self.now)}
        if driver_sql.in_step(self.conn):       # nothing in the step reads it back: with its last statement
            driver_sql.later(self.conn, _OUTBOX_TEXT, row)
        else:                                   # bulk import holds these rows by INSERT_OUTBOX
            self.conn.execute(INSERT_OUTBOX, row)

    def workflow(self, workflow: str) -> Definition:
        return self.engine.catalog.get(workflow)

    def open_linked(self, definition: Definition, data: dict[str, Any]) -> str:
        return open_case(self.engine, self.conn, definition, data, None, self.now,
                         f"linked to {self.case_id}", self.case_id)


# -- sign-offs ------------------------------------------------------------------------------

def plan_signature(engine: Engine, snap: Snapshot, person: Person, reject: bool,
                   note: str | None, now: datetime) -> tuple[Change, str]:
    d, org = snap.definition, engine.catalog.org
    t = d.signoff_transition(snap.state)
    what = "reject" if reject else "sign"
    if t is None or t.signoffs is None:
        raise WrongState(snap.id, what, snap.state, f"nothing to sign in {d.label(snap.state)}")
    so, given = t.signoffs, snap.signoffs
    remaining = [r for r in so.roles if r not in [s["role"] for s in given]]
    eligible = eligible_signers(t, given)
    role = next((r for r in eligible if r in person.roles), None)
    if role is None:
        wanted = " or ".join(org.role_label(r) for r in eligible)
        raise RoleNotAllowed(snap.id, what, snap.state, f"the next sign-off is by {wanted}; {person.id} is not",
                             allowed_roles=tuple(eligible))
    if so.distinct_people and any(s["by"] == person.id for s in given):
        first = next(s for s in given if s["by"] == person.id)
        raise SignoffRefused(snap.id, what, snap.state,
                             f"{person.id} already signed as {org.role_label(first['role'])}; "
                             f"each sign-off needs a different person")
    if reject:
        if not note:
            raise SignoffRefused(snap.id, what, snap.state, "a rejection needs --note saying why")
        change = engine.decide(snap, t, dict(snap.data), {}, person.id, now, reject=True)
        change.role = role
        return change, "reject"
    signature = {"role": role, "by": person.id, "at": stamp(now)}
    if len(remaining) > 1:
        change = engine.decide(snap, t, dict(snap.data), {}, person.id, now)   # checks it could still fire
        change.dest, change.data, change.signoffs = snap.state, dict(snap.data), given + [signature]
        change.role = role
        return change, "signoff"
    change = engine.decide(snap, t, dict(snap.data), {}, person.id, now)
    change.role = role
    change.entries = [Entry("signoff", "sign", snap.state, snap.state, person.id, [role], {}, note)]
    return change, "transition"


def _dump(value: Any) -> str:
    return "[]" if value == [] else _DUMP(value)      # (no sign-offs yet: most steps)


_DUMP = encoder(sort_keys=True, separators=(", ", ": "))     # json.dumps's text, its encoder built once
