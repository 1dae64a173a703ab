"""The event log behind every `caseflow export` format: cases, their rows, activities and bookkeeping.

Rows come from `audit.query`, so they are filtered and masked exactly as
`caseflow audit` filters and masks them (and an `--unmask` is checked and
logged the same way). Each row becomes one `Record`:

- `fields`: the row's hashed columns as stored (roles and changes as their
  canonical JSON text) — what `export verify` recomputes the chain from. A
  masked export carries no `hash`/`prev_hash`/`mac`: a hash over a row with
  personal data, or over any row chained after one, lets the masked value be
  brute-forced back; an unmasked export carries them all;
- `activity`: the process step a mining tool should see — `open`, the
  transition's event, `sign:<role>` for a signature, `reject:<role>` for a
  rejection (a bare `reject` may be a workflow's own event) — or None for a
  bookkeeping row (SLA, timer, warning, escalation, notification, decision,
  fire, spawn, unmask), which each format attaches to the step it follows;
- `timestamp`: the effective time in UTC with milliseconds and `Z`, made
  strictly increasing within a case (+1 ms where rows share an instant), so
  tools that order by time keep the log's `seq` order; the stored time stays
  in `fields["effective_at"]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from caseflow.audit import query as auditlog
from caseflow.audit.chain import canonical
from caseflow.store.tables import audit, cases
from caseflow.values import parse_datetime
from caseflow.views.reports import signed_role

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

ACTIVITY_KINDS = ("open", "transition", "signoff", "reject", "migrate")     # migrate: activity "migrate" or "revert"
HASH_FIELDS = ("prev_hash", "hash", "mac")
# every column of an audit row except its database id: the hashed ones, the hash, and any added later
RECORD_FIELDS = tuple(c.name for c in audit.columns if c.name != "id")
INT_FIELDS = ("seq", "case_version")
ORDER_FIELDS = ("order_no",)        # data fields naming the customer's order: OCEL objects of type `order`


def ms(moment: datetime) -> str:
    """UTC, milliseconds, `Z`: the one timestamp format of every export."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class ExportQuery:
    workflow: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Record:
    fields: dict[str, Any]
    activity: str | None
    role: str | None
    label_zh: str
    timestamp: str

    @property
    def seq(self) -> int:
        return int(self.fields["seq"])


@dataclass
class Trace:
    case_id: str
    workflow: str
    definition: str
    parent_case: str | None
    order: str | None
    state: str | None
    records: list[Record] = field(default_factory=list)

    def steps(self) -> Iterator[tuple[Record, list[Record]]]:
        """Each activity with the bookkeeping rows that follow it (rows before the first one go with it)."""
        pending: list[Record] = []
        current: Record | None = None
        for r in self.records:
            if r.activity is None:
                pending.append(r)
                continue
            if current is not None:
                yield current, pending
                pending = []
            current = r
        if current is not None:
            yield current, pending

    def leading(self) -> list[Record]:
        """Bookkeeping with no activity in the export before it (a time-filtered export)."""
        first = next((i for i, r in enumerate(self.records) if r.activity is not None), len(self.records))
        return self.records[:first]


@dataclass
class EventLog:
    traces: list[Trace]
    masked: bool
    people: dict[str, str]            # user id → name, for every actor in the log
    query: ExportQuery


def collect(engine: Engine, q: ExportQuery, user: str | None = None, unmask: bool = False,
            what: str = "caseflow export") -> EventLog:
    """The filtered, masked event log (raises NotFound for an unknown --workflow)."""
    if q.workflow:
        engine.catalog.get(q.workflow)
    shown = auditlog.query(engine, auditlog.AuditQuery(workflow=q.workflow, since=q.since, until=q.until),
                           user, unmask, what=what)
    shown.sort(key=lambda r: (r["case_id"], r["seq"]))
    raw = _raw(engine, [r["id"] for r in shown]) if unmask else {}
    meta = _cases(engine, {r["case_id"] for r in shown})
    traces: dict[str, Trace] = {}
    org = engine.catalog.org
    for r in shown:
        t = traces.get(r["case_id"])
        if t is None:
            state, parent, order = meta.get(r["case_id"], (None, None, None))
            t = traces[r["case_id"]] = Trace(r["case_id"], r["workflow"], r["definition"], parent, order, state)
        t.records.append(_record(engine, t, r, raw.get(r["id"])))
    people = {a: org.people[a].name for t in traces.values() for a in {x.fields["actor"] for x in t.records}
              if a in org.people}
    return EventLog(list(traces.values()), not unmask, people, q)


def _raw(engine: Engine, ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    with engine.store.read() as conn:
        for start in range(0, len(ids), 500):
            for row in conn.execute(sa.select(audit).where(audit.c.id.in_(ids[start:start + 500]))):
                out[row.id] = dict(row._mapping)
    return out


def _cases(engine: Engine, ids: set[str]) -> dict[str, tuple[str, str | None, str | None]]:
    """Per case: current state, parent case, order number (none of them personal data)."""
    out = {}
    wanted = sorted(ids)
    with engine.store.read() as conn:
        for start in range(0, len(wanted), 500):
            q = sa.select(cases.c.id, cases.c.state, cases.c.parent_case, cases.c.data).where(
                cases.c.id.in_(wanted[start:start + 500]))
            for row in conn.execute(q):
                data = json.loads(row.data)
                order = next((str(data[f]) for f in ORDER_FIELDS if data.get(f)), None)
                out[row.id] = (row.state, row.parent_case, order)
    return out


def _record(engine: Engine, trace: Trace, r: dict[str, Any], raw: dict[str, Any] | None) -> Record:
    if raw is not None:                  # unmasked: the row exactly as stored, hashes included
        fields = {k: raw.get(k) for k in RECORD_FIELDS}
    else:                                # masked: as `audit` shows it, no hashes
        fields = {k: r.get(k) for k in RECORD_FIELDS if k not in HASH_FIELDS}
        fields["roles"], fields["changes"] = canonical(r["roles"]), canonical(r["changes"])
    activity, role = _activity(engine, trace, r)
    previous = trace.records[-1].timestamp if trace.records else None
    at = parse_datetime(r["effective_at"])
    if previous is not None and ms(at) <= previous:
        at = parse_datetime(previous) + timedelta(milliseconds=1)
    return Record(fields, activity, role, _label(engine, r, activity, role), ms(at))


def _activity(engine: Engine, trace: Trace, r: dict[str, Any]) -> tuple[str | None, str | None]:
    kind, roles = r["kind"], list(r["roles"])
    if kind not in ACTIVITY_KINDS:
        return None, None
    if kind in ("signoff", "reject"):
        d = engine.catalog.current.get(r["workflow"])
        t = d.signoff_transition(r["from_state"]) if d and r["from_state"] in d.states else None
        required = list(t.signoffs.roles) if t and t.signoffs else []
        done = []
        for x in reversed(trace.records):
            if x.fields["kind"] != "signoff":
                if x.activity is not None:
                    break
                continue
            done.append(x.role or "")
        role = signed_role(roles, required, done)
        return f"{'sign' if kind == 'signoff' else 'reject'}:{role}", role
    if kind == "open":
        return "open", ", ".join(roles) or None
    return r["event"], (roles[0] if len(roles) == 1 else ", ".join(roles) or None)


def _label(engine: Engine, r: dict[str, Any], activity: str | None, role: str | None) -> str:
    if activity and activity.startswith(("sign:", "reject:")) and role:
        found = engine.catalog.org.roles.get(role)
        return f"{'签字' if activity.startswith('sign:') else '驳回'}：{found.label_zh if found else role}"
    return str(r.get("event_zh") or r["event"])


def record_from(fields: dict[str, Any]) -> dict[str, Any]:
    """A record read back from a file: integers as integers, absent fields as None."""
    out = {k: fields.get(k) for k in RECORD_FIELDS}
    for k in INT_FIELDS:
        value = out.get(k)
        out[k] = int(value) if value is not None and value != "" else None
    return out


__all__ = ["collect", "EventLog", "Trace", "Record", "ExportQuery", "ms", "record_from", "RECORD_FIELDS",
           "HASH_FIELDS", "INT_FIELDS"]
