"""Moving one case to another definition version, in its own transaction.

The case row gets the new version, state, data and sign-offs with the same
optimistic check every action uses (`version = seen`); a `migrate` audit row
records old sha, new sha, the plan's sha256, the run, the state map applied and
the sign-offs before and after, so the chain stays continuous and `audit verify`
rebuilds the case from it (audit/replay.py reads the row like any other). The
clocks are brought to what the replay decided, each change with its `sla` or
`timer` row; the unique keys follow the new data. Everything or nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import chain as audit
from caseflow.audit.chain import Entry
from caseflow.definition.evaluate import stamp
from caseflow.definition.model import Definition
from caseflow.errors import InvalidData, StaleCase
from caseflow.migration.clocks import Target
from caseflow.runtime import queue
from caseflow.runtime.actions import pending_signoff_role
from caseflow.sla import windows
from caseflow.sla.clocks import BREACHED, PAUSED, RUNNING, schedule, ts
from caseflow.store.tables import case_keys, cases, timers

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

LIVE = (RUNNING, PAUSED, BREACHED)
_CLAIM = sa.select(cases).where(cases.c.id == sa.bindparam("case_id"))
_CASE_TIMERS = sa.select(timers).where(timers.c.case_id == sa.bindparam("case_id")).with_for_update()


class Busy(Exception):
    """Another transaction holds the case (PostgreSQL SKIP LOCKED): try it again later."""


class Gone(Exception):
    """The case is no longer on the version it should move from (another runner moved it)."""


@dataclass
class Move:
    """Everything one case's migration (or revert) writes, decided before the transaction."""

    case_id: str
    seen: int                           # the case version the decision was made on
    source: Definition
    dest_def: Definition
    from_state: str
    dest: str
    data_before: dict[str, Any]
    data_after: dict[str, Any]
    signoffs_before: list[dict[str, Any]]
    signoffs_after: list[dict[str, Any]]
    clocks: dict[str, Target]
    clock_mode: str                     # recompute | keep
    meta: dict[str, Any]                # @migration: from, to, plan, run, state_map, …
    event: str = "migrate"              # migrate | revert
    had_timers: bool = True             # False: the case had no timers rows when judged (a new one needs a commit,
                                        # which the version check catches), so none are read


def write(engine: Engine, m: Move, actor: str, roles: list[str], now: datetime, note: str | None,
          *, wait: bool = False) -> int:
    """Commit one move; returns the new case version. Busy (someone holds the case and `wait` is false),
    Gone or StaleCase when it cannot."""
    store = engine.store
    with store.write() as conn:
        claim = _CLAIM.with_for_update() if wait else store.backend.skip_locked(_CLAIM)
        row = conn.execute(claim, {"case_id": m.case_id}).first()
        if row is None:
            raise Busy(m.case_id)
        if row.definition != m.source.sha256:
            raise Gone(m.case_id)
        result = conn.execute(cases.update().where(cases.c.id == m.case_id, cases.c.version == m.seen).values(
            definition=m.dest_def.sha256, state=m.dest, data=_dump(m.data_after), signoffs=_dump(m.signoffs_after),
            version=m.seen + 1, updated_at=stamp(now),
            next_signoff_role=pending_signoff_role(m.dest_def, m.dest, m.signoffs_after)))
        if result.rowcount != 1:
            raise StaleCase(m.case_id)
        queue.refresh(conn, m.dest_def, m.case_id, frozenset({"?"}),       # another definition: always rewrite
                      queue.queues(m.dest_def, m.dest, m.data_after, m.signoffs_after, row.assignee))
        if m.source.unique or m.dest_def.unique:
            _keys(conn, m.dest_def, m.case_id, m.data_after, m.dest)
        changes: dict[str, Any] = {k: [m.data_before.get(k), m.data_after.get(k)]
                                   for k in sorted(set(m.data_before) | set(m.data_after))
                                   if m.data_before.get(k) != m.data_after.get(k)}
        changes["@migration"] = {**m.meta, "signoffs": [m.signoffs_before, m.signoffs_after]}
        entries = [Entry("migrate", m.event, m.from_state, m.dest, actor, roles, changes, note)]
        if m.clocks or m.had_timers:
            entries += _clocks(engine, conn, m, now)
        audit.append(conn, case_id=m.case_id, workflow=m.dest_def.workflow, definition=m.dest_def.sha256,
                     entries=entries, effective_at=stamp(now), org=engine.org_sha, os_user=engine.os_user,
                     version=m.seen + 1, after=_head(row))
    return m.seen + 1


def _head(row: Any) -> tuple[int, str] | None:
    """The chain head the claimed case row keeps (revision 0008), so appending needs no lookup."""
    seq, digest = getattr(row, "audit_seq", None), getattr(row, "audit_hash", None)
    return (seq, digest) if seq is not None and digest is not None else None


def _keys(conn: Connection, d: Definition, case_id: str, data: dict[str, Any], state: str) -> None:
    """The case's unique keys are NEW's: the old ones go, the new ones are claimed (one open case per value)."""
    conn.execute(case_keys.delete().where(case_keys.c.workflow == d.workflow, case_keys.c.case_id == case_id))
    if d.states[state].final:
        return
    for f in d.unique:
        if data.get(f) is None:
            continue
        holder = conn.execute(sa.select(case_keys.c.case_id).where(
            case_keys.c.workflow == d.workflow, case_keys.c.field == f, case_keys.c.value == str(data[f]))).scalar()
        if holder and holder != case_id:
            raise InvalidData(case_id, "migrate", state, f"{f} already belongs to open case {holder}")
        conn.execute(case_keys.insert().values(workflow=d.workflow, field=f, value=str(data[f]), case_id=case_id))


def _clocks(engine: Engine, conn: Connection, m: Move, now: datetime) -> list[Entry]:
    """Bring the timers rows to the replayed targets; one audit entry per clock changed."""
    d, cal = m.dest_def, engine.catalog.calendar_for(m.dest_def)
    rows = {r.name: r for r in conn.execute(_CASE_TIMERS, {"case_id": m.case_id})}
    known = {c.name: c for c in d.clocks}
    out: list[Entry] = []
    for name in sorted(set(rows) | set(m.clocks)):
        row, target = rows.get(name), m.clocks.get(name)
        live = row is not None and row.status in LIVE
        if target is None:
            keep = m.clock_mode == "keep" and name in known
            if live and not keep:
                assert row is not None
                conn.execute(timers.update().where(timers.c.id == row.id).values(
                    status="cancelled", next_at=None, ended_at=ts(now)))
                if row.kind == "sla":
                    windows.close_window(conn, case_id=m.case_id, clock=name, now_s=ts(now), due_at=row.due_at)
                out.append(Entry(row.kind, name, None, None, "system", [], {"status": [row.status, "cancelled"]},
                                 f"cancelled by {m.event}: {d.label(m.dest)} of version {d.sha256[:12]} "
                                 f"runs no such clock"))
            continue
        if row is not None and not live and row.started_at == target.started_at:
            continue                       # it ended in this very window already (met, fired, …)
        if live and m.clock_mode == "keep":
            continue
        values: dict[str, Any] = {"status": target.status, "started_at": target.started_at,
                                  "paused_at": target.paused_at, "remaining_s": target.remaining_s}
        warned = row.warned if row is not None and row.started_at == target.started_at else 0
        if target.plan is not None:
            values.update(schedule(target.plan, cal, warned, now))
        else:
            values.update(due_at=None, next_at=None, provisional=False)
        restarted = row is None or row.started_at != target.started_at or not live
        if row is not None and live and not restarted:
            assert row is not None
            if row.status == BREACHED and target.status == RUNNING and values["due_at"] == row.due_at:
                values["status"] = BREACHED           # the same deadline, already missed
            if (values["status"], values["due_at"], row.paused_at) == (row.status, row.due_at, target.paused_at):
                continue                               # nothing changes
        if row is None:
            conn.execute(timers.insert().values(case_id=m.case_id, name=name, kind=target.kind, warned=0,
                                                ended_at=None, **values))
        else:
            conn.execute(timers.update().where(timers.c.id == row.id).values(warned=warned, ended_at=None, **values))
        if target.kind == "sla":
            if restarted:
                if row is not None and live:
                    windows.close_window(conn, case_id=m.case_id, clock=name, now_s=ts(now), due_at=row.due_at)
                windows.open_window(conn, case_id=m.case_id, workflow=d.workflow, clock=name,
                                    opened_at=target.started_at, due_at=values["due_at"], restarted=row is not None)
            else:
                windows.reschedule(conn, case_id=m.case_id, clock=name, due_at=values["due_at"])
        label = known[name].label_zh if name in known else name
        due = f"due {values['due_at']}" if values["due_at"] else "paused"
        out.append(Entry(target.kind, name, None, None, "system", [],
                         {"status": [row.status if row is not None else None, values["status"]],
                          "due_at": values["due_at"]},
                         f"recomputed by {m.event}: {label} within {known[name].within}, {due}"))
    return out


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


__all__ = ["Move", "write", "Busy", "Gone"]
