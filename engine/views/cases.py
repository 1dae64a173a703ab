"""Read models for operators: show, list, history — with personal data masked.

These return plain dicts in the documented `--json` shapes; the CLI renders
them. Masking happens here, once, so no output path can forget it; unmasking
needs a role with `can_unmask` in org.yaml and is itself written to the log.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from caseflow.audit import chain as audit
from caseflow.audit.chain import Entry
from caseflow.definition.evaluate import missing_fields, stamp
from caseflow.definition.expressions import ExpressionError
from caseflow.definition.model import Definition, Person, Transition
from caseflow.errors import CaseflowError, NotFound, UsageError
from caseflow.masking import mask, mask_strings, mask_text
from caseflow.runtime.turns import assignee_problem, eligible_signers, next_signer_role, pending_signoff_role
from caseflow.sla import clock_time as sla
from caseflow.sla.windows import overdue_clause
from caseflow.store.tables import cases, timers
from caseflow.views import access
from caseflow.views.work import work_for

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine
    from caseflow.runtime.snapshot import Snapshot


def masked_data(d: Definition, data: dict[str, Any], unmask: bool) -> dict[str, Any]:
    if unmask:
        return dict(data)
    pii = d.pii_fields()
    return {k: (mask(v, pii[k]) if k in pii else mask_strings(v)) for k, v in data.items()}


def log_unmask(engine: Engine, snap: Snapshot, person: Person, what: str) -> None:
    """Seeing personal data is itself an audited event."""
    now = engine.now()
    with engine.store.write() as conn:
        audit.append(conn, case_id=snap.id, workflow=snap.workflow, definition=snap.definition.sha256,
                     entries=[Entry("unmask", "unmask", snap.state, snap.state, person.id, sorted(person.roles),
                                    {}, f"personal data shown unmasked ({what})")],
                     effective_at=stamp(now), org=engine.org_sha, os_user=engine.os_user,
                     version=audit.current_version(conn, snap.id))


def show(engine: Engine, case_id: str, user: str | None, unmask: bool = False) -> dict[str, Any]:
    person = engine.person(user)
    if unmask:
        from caseflow.audit.unmask import check_unmask  # only an --unmask reads the grants
        check_unmask(engine, person, "show", case_id)
    now = engine.now()
    with engine.store.read() as conn:
        snap = engine.snapshot(conn, case_id)
        d = snap.definition
        access.require_read(engine, person, d, "show", case_id)
        clocks = sla.clocks(conn, d, engine.catalog.calendar_for(d), case_id, now)
    if unmask:
        log_unmask(engine, snap, person, "show")
    role = pending_signoff_role(d, snap.state, snap.signoffs)
    pending = None
    if role is not None:
        pending = {"role": role, "label_zh": engine.catalog.org.roles[role].label_zh
                   if role in engine.catalog.org.roles else role}
    evs = events(engine, snap, person, now)
    return {
        "id": snap.id, "workflow": snap.workflow, "label_zh": d.label_zh, "definition": d.sha256,
        "state": snap.state, "state_label_zh": d.states[snap.state].label_zh, "version": snap.version,
        "parent_case": snap.parent_case, "created_at": snap.created_at, "updated_at": snap.updated_at,
        "data": masked_data(d, snap.data, unmask), "events": evs,
        "signoffs": snap.signoffs, "pending_signoff": pending, "slas": clocks,
        "assignee": snap.assignee, "assigned_at": snap.assigned_at, "work_started_at": snap.work_started_at,
        "inbox": work_for(engine, snap, person, evs),      # what the case holds for you (views/work.py)
    }


def events(engine: Engine, snap: Snapshot, person: Person, now: datetime) -> list[dict[str, Any]]:
    """Every event a person could fire from here, and for each one what is still missing.

    An event with alternatives (one transition per department, chosen by guards) is
    described by the alternative that serves this person best: one they may fire, else
    one that only lacks fields, else one whose role they hold, else the first.
    """
    d, out = snap.definition, []
    alternatives: dict[str, list[Transition]] = {}
    for t in d.transitions_from(snap.state):
        if not t.system:
            alternatives.setdefault(t.event, []).append(t)
    scope = engine.scope(d, snap.data, now, person.id, {}, {})     # no inputs given: the same for every event
    for ts in alternatives.values():
        described = [(t, _missing(engine, snap, person, t, scope)) for t in ts]
        t, missing = min(described, key=lambda tm: _rank(person, *tm))
        out.append({"event": t.event, "label_zh": t.label_zh, "to": t.to,
                    "to_label_zh": d.states[t.to].label_zh, "allowed": not missing, "missing": missing,
                    "accepts": list(t.accepts), "inputs": list(t.inputs), "inbox": t.inbox,
                    "assignee_only": t.assignee_only})
    return out


def _rank(person: Person, t: Transition, missing: list[str]) -> int:
    if not missing:
        return 0
    if all(m.startswith("fields: ") for m in missing):
        return 1
    return 2 if (person.roles & t.roles) and not t.signoffs else 3


def _missing(engine: Engine, snap: Snapshot, person: Person, t: Transition,
             scope: tuple[dict[str, Any], Any]) -> list[str]:
    d, org = snap.definition, engine.catalog.org
    missing: list[str] = []
    if t.signoffs:
        signers = eligible_signers(t, snap.signoffs) or [next_signer_role(t, snap.signoffs)]
        missing.append(f"sign-off by {' or '.join(org.role_label(r) for r in signers)} (caseflow sign)")
    elif not (person.roles & t.roles):
        missing.append("role: one of " + ", ".join(org.role_label(r) for r in sorted(t.roles)))
    elif t.assignee_only and (why := assignee_problem(snap, t, person.id)):
        missing.append(f"assignee: {why}")
    gone = missing_fields(t, snap.data, {})
    gone = [g for g in gone if not g.startswith("input ")]
    if gone:
        accepted = [g for g in gone if g in t.accepts]
        missing.append("fields: " + ", ".join(gone) + (" (give with --set)" if accepted == gone else ""))
    act, ctx = scope
    if not gone and not t.input_required and t.guards:     # without guards the machine has nothing to refuse
        from caseflow.runtime.machine import machine_for  # so a case with none does not load transitions
        failing = machine_for(d).failing(snap.state, t, act, ctx)
        if failing:
            missing.append(f"guard: {failing[1]}")
    elif gone:
        why = _failed_known_guard(t, act, ctx)      # e.g. "forwarded to another department" before any field
        if why:
            missing.append(f"guard: {why}")
    return missing


def _failed_known_guard(t: Transition, act: dict[str, Any], ctx: Any) -> str | None:
    """The first guard that reads only fields already set and does not hold (None if none)."""
    for guard in t.guards:
        if not guard.expr.names <= act.keys():
            continue
        try:
            ok = guard.expr.evaluate(act, ctx)
        except ExpressionError:
            continue
        if ok is not True:
            return guard.message or f"guard {guard.expr.text!r} is false"
    return None


def mask_changes(d: Definition, event: str, changes: dict[str, Any], unmask: bool) -> dict[str, Any]:
    """Mask personal data in an audit row's before/after values and event inputs."""
    if unmask:
        return changes
    pii = d.pii_fields()
    for k in list(changes):
        if k in pii and isinstance(changes[k], list):
            changes[k] = [mask(v, pii[k]) for v in changes[k]]
        elif k != "@input":
            changes[k] = mask_strings(changes[k])
    inputs = changes.get("@input")
    if isinstance(inputs, dict):
        schemas = {k: v for t in d.transitions if t.event == event for k, v in t.inputs.items()}
        changes["@input"] = {k: mask(v, schemas[k]["x-pii"]) if "x-pii" in schemas.get(k, {}) else mask_strings(v)
                             for k, v in inputs.items()}
    return changes


def list_cases(engine: Engine, workflow: str | None = None, state: str | None = None,
               overdue: bool = False, limit: int = 500, person: Person | None = None, *,
               assignee: str | None = None, unassigned: bool = False) -> list[dict[str, Any]]:
    """Most recently changed first; given a `person`, only of the workflows they may read.

    `state` is a state id or its Chinese label, checked like a workflow id. Each row carries the
    case's summary (the first two required fields of its data schema, personal data masked).
    """
    if assignee and unassigned:
        raise UsageError("give --assignee or --unassigned, not both")
    q = sa.select(cases.c.id, cases.c.workflow, cases.c.state, cases.c.updated_at, cases.c.assignee,
                  cases.c.data).order_by(
        cases.c.updated_at.desc(), cases.c.id).limit(limit)
    if workflow:
        chosen = engine.catalog.get(workflow)
        if person is not None:
            access.require_read(engine, person, chosen, "list")
        q = q.where(cases.c.workflow == workflow)
    elif person is not None:
        with engine.store.read() as conn:          # the workflows that have cases (an index-only scan)
            present = list(conn.execute(sa.select(cases.c.workflow).distinct()).scalars())
        allowed = access.readable(engine, person, present)
        if allowed is not None:
            q = q.where(cases.c.workflow.in_(allowed))
    if state:
        q = q.where(cases.c.state.in_(sorted(resolve_state(engine, workflow, state))))
    if overdue:
        # the compliance report's predicate: past due now, whether or not a sweep has recorded it
        q = q.where(cases.c.id.in_(sa.select(timers.c.case_id).where(overdue_clause(sla.ts(engine.now())))))
    if assignee:
        engine.person(assignee)
        q = q.where(cases.c.assignee == assignee)
    if unassigned:
        q = q.where(cases.c.assignee.is_(None))
    with engine.store.read() as conn:
        rows = conn.execute(q).all()
    out = []
    for r in rows:
        d = engine.catalog.current.get(r.workflow)
        label = d.states[r.state].label_zh if d and r.state in d.states else r.state
        data = json.loads(r.data) if isinstance(r.data, str) else dict(r.data or {})
        summary = {k: data.get(k) for k in summary_fields(d)} if d else {}
        out.append({"id": r.id, "workflow": r.workflow, "state": r.state, "state_label_zh": label,
                    "updated_at": r.updated_at, "assignee": r.assignee,
                    "summary": masked_data(d, summary, False) if d else {}})
    return out


def summary_fields(d: Definition) -> list[str]:
    """What tells one case from another in a list: the first two required fields (form no., customer)."""
    return list(d.data_schema.get("required", []))[:2]


def resolve_state(engine: Engine, workflow: str | None, state: str) -> set[str]:
    """State ids meant by `state` (an id or a label_zh) in `workflow` or any workflow; NotFound otherwise."""
    from caseflow.definition.lint import did_you_mean
    defs = [engine.catalog.get(workflow)] if workflow else list(engine.catalog.current.values())
    ids = {s for d in defs for s in d.states}
    if state in ids:
        return {state}
    labelled = {s for d in defs for s, st in d.states.items() if st.label_zh == state}
    if labelled:
        return labelled
    hint = did_you_mean(state, sorted(ids)) or did_you_mean(state, sorted({st.label_zh for d in defs
                                                                           for st in d.states.values()}))
    raise NotFound("state", state + (f" ({hint})" if hint else ""))


def history(engine: Engine, case_id: str, user: str | None, unmask: bool = False) -> list[dict[str, Any]]:
    person = engine.person(user)
    if unmask:
        from caseflow.audit.unmask import check_unmask
        check_unmask(engine, person, "history", case_id)
    with engine.store.read() as conn:
        snap = engine.snapshot(conn, case_id)
        access.require_read(engine, person, snap.definition, "history", case_id)
        rows = audit.history(conn, case_id)
    if unmask:
        log_unmask(engine, snap, person, "history")
    d = snap.definition
    out = []
    for r in rows:
        changes = mask_changes(d, r["event"], json.loads(r["changes"]), unmask)
        out.append({"seq": r["seq"], "kind": r["kind"], "event": r["event"], "from": r["from_state"],
                    "to": r["to_state"], "actor": r["actor"], "roles": json.loads(r["roles"]),
                    "at": r["effective_at"], "recorded_at": r["recorded_at"],
                    "note": r["note"] if unmask else mask_text(r["note"]),
                    "changes": changes, "definition": r["definition"]})
    return out


__all__ = ["show", "list_cases", "summary_fields", "resolve_state", "history", "mask", "masked_data", "CaseflowError"]
