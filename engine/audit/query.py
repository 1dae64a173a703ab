"""The audit log for auditors: filter it, mask it, export it.

Rows come back as plain dicts in one shape for every output format, with the
Chinese labels an auditor reads; an unmasked export also carries the hashes
that let it be checked against the database later (a masked one does not: a
hash of a row is a function of its personal data). Personal data (`x-pii` fields of the row's own
definition version, plus phone and ID numbers typed into free text) is masked
here, once, so no format can forget it. `--unmask` needs a role with
`can_unmask`; a refusal goes to the attempts log, and a granted unmasking is
written as one `unmask` audit row per case whose personal data was shown, in
that case's own chain: "who has seen this customer's phone number?" is then
answered by the case's history, and no export exists without its log rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import chain
from caseflow.audit import unmask as unmasking
from caseflow.audit.chain import Entry
from caseflow.definition import kinds
from caseflow.definition.model import Definition, Person
from caseflow.errors import NotFound, UsageError
from caseflow.masking import mask, mask_strings, mask_text
from caseflow.store.tables import attempts, audit, cases
from caseflow.values import ValueProblem, format_datetime, parse_datetime
from caseflow.views import cases as views

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

KIND_ZH = {"open": "立案", "transition": "流转", "signoff": "签字", "reject": "驳回", "decision": "决策表",
           "timer": "计时", "sla": "时限", "sla_warning": "时限预警", "unmask": "查看个人信息",
           "assign": "分派", "work": "开始办理", "migrate": "版本迁移",
           **kinds.labels()}   # + each action kind's
AUDIT_COLUMNS = ("id", "case_id", "seq", "workflow", "kind", "event", "event_zh", "from_state", "from_zh",
                 "to_state", "to_zh", "actor", "actor_name", "roles", "changes", "note", "effective_at",
                 "effective_local", "recorded_at", "definition", "prev_hash", "hash")
ATTEMPT_COLUMNS = ("id", "case_id", "workflow", "event", "actor", "actor_name", "error", "reason",
                   "effective_at", "effective_local", "recorded_at", "prev_hash", "hash")
SIGNATURE_EVENTS = {"sign": "signoff", "reject": "reject"}     # event name → the row kind of that act
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class AuditQuery:
    """Filters; times are aware datetimes, `until` exclusive."""

    case: str | None = None
    workflow: str | None = None
    actor: str | None = None
    event: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    attempts: bool = False
    limit: int | None = None


def parse_bound(text: str | None, tz: ZoneInfo, *, end: bool = False) -> datetime | None:
    """'2025-03-01' or an ISO time, read in the workflow's zone; a bare date as --until means
    the end of that day, because an auditor asking "until 31 March" means all of it."""
    if not text:
        return None
    try:
        value = parse_datetime(text, tz)
    except ValueProblem as exc:
        raise UsageError(f"{'--until' if end else '--since'}: {exc}") from None
    if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        value += timedelta(days=1)
    return value


def default_tz(engine: Engine, workflow: str | None) -> ZoneInfo:
    """The zone people mean when they type a time: the workflow's, or the one all share."""
    current = engine.catalog.current
    if workflow and workflow in current:
        return current[workflow].tz
    zones = {d.tz.key for d in current.values()}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else DEFAULT_TZ


# -- masking --------------------------------------------------------------------------------

def mask_changes(d: Definition | None, event: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Personal fields and event inputs by their x-pii kind (as `history` does), personal fields
    in decision outcomes, then phone and ID numbers anywhere in the remaining text."""
    out = views.mask_changes(d, event, dict(changes), False) if d is not None else dict(changes)
    pii = d.pii_fields() if d is not None else {}
    outcome = out.get("outcome")
    if isinstance(outcome, dict):
        out["outcome"] = {k: (mask(v, pii[k]) if k in pii else v) for k, v in outcome.items()}
    return {k: (v if k in pii else mask_strings(v)) for k, v in out.items()}


def check_unmask(engine: Engine, user: str | None, what: str) -> Person:
    """The person, if they may see personal data unmasked (audit/unmask.py; a refusal is recorded)."""
    person = engine.person(user)
    unmasking.check_unmask(engine, person, what)
    return person


# -- query ----------------------------------------------------------------------------------

class DefinitionCache:
    """Each row is labelled and masked by the definition version it was written under."""

    def __init__(self, engine: Engine, conn: Connection) -> None:
        self.engine, self.conn = engine, conn
        self.cache: dict[str, Definition | None] = {}

    def get(self, sha: str | None, workflow: str | None) -> Definition | None:
        key = sha or f"wf:{workflow}"
        if key not in self.cache:
            try:
                self.cache[key] = self.engine.definition_of(self.conn, sha) if sha else None
            except Exception:  # noqa: BLE001 - a missing definition text still lets the log be read
                self.cache[key] = None
            if self.cache[key] is None and workflow:
                self.cache[key] = self.engine.catalog.current.get(workflow)
        return self.cache[key]


def _where(table: sa.Table, q: AuditQuery) -> list[Any]:
    conds: list[Any] = []
    for col, value in (("case_id", q.case), ("workflow", q.workflow), ("actor", q.actor)):
        if value:
            conds.append(table.c[col] == value)
    if q.event and table is audit and q.event in SIGNATURE_EVENTS:
        # rows written before every signature was logged as `sign` carry the step's event
        conds.append(sa.or_(table.c.event == q.event, table.c.kind == SIGNATURE_EVENTS[q.event]))
    elif q.event:
        conds.append(table.c.event == q.event)
    # stamps are ISO text: narrow in SQL to whole seconds, then compare exactly in Python
    if q.since:
        conds.append(table.c.effective_at >= q.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    if q.until:
        upper = (q.until + timedelta(seconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        conds.append(table.c.effective_at < upper)
    return conds


def _in_range(stamp: str, q: AuditQuery) -> bool:
    if not (q.since or q.until):
        return True
    at = parse_datetime(stamp)
    return (q.since is None or at >= q.since) and (q.until is None or at < q.until)


def _local(stamp: str, d: Definition | None) -> str:
    return parse_datetime(stamp).astimezone(d.tz if d else DEFAULT_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _audit_row(r: dict[str, Any], d: Definition | None, engine: Engine, unmask: bool) -> dict[str, Any]:
    people = engine.catalog.org.people
    changes = json.loads(r["changes"])
    if not unmask:
        changes = mask_changes(d, r["event"], changes)

    def state_zh(s: str | None) -> str | None:
        return d.states[s].label_zh if d and s and s in d.states else s

    if r["kind"] in ("open", "transition") and d is not None:
        t = next((t for t in d.transitions if t.event == r["event"]), None)
        event_zh = t.label_zh if t else (KIND_ZH["open"] if r["kind"] == "open" else r["event"])
    else:
        event_zh = {**KIND_ZH, **kinds.labels()}.get(r["kind"], r["kind"])   # kinds registered later too
    return {"id": r["id"], "case_id": r["case_id"], "seq": r["seq"], "workflow": r["workflow"], "kind": r["kind"],
            "event": r["event"], "event_zh": event_zh, "from_state": r["from_state"],
            "from_zh": state_zh(r["from_state"]), "to_state": r["to_state"], "to_zh": state_zh(r["to_state"]),
            "actor": r["actor"], "actor_name": people[r["actor"]].name if r["actor"] in people else "",
            "roles": json.loads(r["roles"]), "changes": changes,
            "note": r["note"] if unmask else mask_text(r["note"]), "effective_at": r["effective_at"],
            "effective_local": _local(r["effective_at"], d), "recorded_at": r["recorded_at"],
            "definition": r["definition"], **_hashes(r, unmask)}


def _hashes(r: dict[str, Any], shown: bool) -> dict[str, Any]:
    """Hashes only beside clear values: a row's hash is a function of its personal data, so a
    masked export that carried it could be brute-forced back (a phone number in milliseconds)."""
    return {"prev_hash": r["prev_hash"], "hash": r["hash"]} if shown else {}


def _attempt_row(r: dict[str, Any], d: Definition | None, engine: Engine, unmask: bool) -> dict[str, Any]:
    people = engine.catalog.org.people
    # attempts of no case (a refused open) stay masked: there is no case log to record an unmasking in
    shown = unmask and r["case_id"] is not None
    return {"id": r["id"], "case_id": r["case_id"], "workflow": r["workflow"], "event": r["event"],
            "actor": r["actor"], "actor_name": people[r["actor"]].name if r["actor"] in people else "",
            "error": r["error"], "reason": r["reason"] if shown else mask_text(r["reason"]),
            "effective_at": r["effective_at"], "effective_local": _local(r["effective_at"], d),
            "recorded_at": r["recorded_at"], **_hashes(r, shown)}


def _fetch(engine: Engine, conn: Connection, q: AuditQuery, unmask: bool) -> tuple[list[dict[str, Any]],
                                                                                       set[str]]:
    """Rows as shown, plus the cases whose personal data an unmasked view reveals."""
    table = attempts if q.attempts else audit
    order = [table.c.id] if q.attempts else [table.c.id, table.c.case_id]
    shape = _attempt_row if q.attempts else _audit_row
    defs = DefinitionCache(engine, conn)
    rows, revealed = [], set()
    for r in conn.execute(sa.select(table).where(*_where(table, q)).order_by(*order)):
        m = dict(r._mapping)
        if not _in_range(m["effective_at"], q):
            continue
        d = defs.get(m.get("definition"), m["workflow"])
        shown = shape(m, d, engine, unmask)
        if unmask and m["case_id"] and _without_hashes(shown) != shape(m, d, engine, False):
            revealed.add(m["case_id"])
        rows.append(shown)
        if q.limit and len(rows) >= q.limit:
            break
    return rows, revealed


def _without_hashes(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("prev_hash", "hash")}


def _log_unmask(engine: Engine, person: Person, case_ids: Iterable[str], what: str) -> None:
    """One `unmask` row in each case's own chain, all in one transaction, before anything is shown."""
    now, real = format_datetime(engine.now()), format_datetime(datetime.now(UTC))
    with engine.store.write() as conn:
        for case_id in sorted(case_ids):
            row = conn.execute(sa.select(cases.c.workflow, cases.c.definition, cases.c.state)
                               .where(cases.c.id == case_id)).first()
            if row is None:     # the case row is gone: chain the record to what the log says
                last = conn.execute(sa.select(audit.c.workflow, audit.c.definition, audit.c.to_state)
                                    .where(audit.c.case_id == case_id, audit.c.to_state.is_not(None))
                                    .order_by(audit.c.seq.desc()).limit(1)).first()
                if last is None:
                    continue
                workflow, definition, state = last
            else:
                workflow, definition, state = row
            chain.append(conn, case_id=case_id, workflow=workflow, definition=definition,
                         entries=[Entry("unmask", "unmask", state, state, person.id, sorted(person.roles), {},
                                        f"personal data shown unmasked ({what})")],
                         effective_at=now, recorded_at=real, version=chain.current_version(conn, case_id))


def query(engine: Engine, q: AuditQuery, user: str | None = None, unmask: bool = False,
          what: str = "audit export") -> list[dict[str, Any]]:
    """Filtered audit (or attempts) rows, masked unless an authorised user unmasks (then logged)."""
    person = check_unmask(engine, user, what) if unmask else None
    from caseflow.views.access import require_audit
    require_audit(engine, person or engine.person(user), what)
    with engine.store.read() as conn:
        if q.case and not _case_exists(conn, q.case):
            raise NotFound("case", q.case)
        rows, revealed = _fetch(engine, conn, q, unmask)
    if person is not None and revealed:
        _log_unmask(engine, person, revealed, what)
    return rows


def _case_exists(conn: Connection, case_id: str) -> bool:
    return (conn.execute(sa.select(cases.c.id).where(cases.c.id == case_id)).first() is not None
            or conn.execute(sa.select(audit.c.id).where(audit.c.case_id == case_id).limit(1)).first() is not None
            or conn.execute(sa.select(attempts.c.id).where(attempts.c.case_id == case_id).limit(1)).first()
            is not None)


# -- export ---------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    """CSV cells: lists and dicts as JSON text, so `json.loads` gives them back exactly."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...], bom: bool = False) -> str:
    """RFC 4180 via the csv module; a UTF-8 BOM makes Excel read the Chinese text right."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in columns])
    return ("\ufeff" if bom else "") + buf.getvalue()


def to_jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in rows)


def to_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], most: int = 40) -> str:
    """Aligned text with Chinese headers: the one table renderer, views/table.py."""
    from caseflow.views.table import render_table
    return render_table([{k: _cell(r.get(k)) for k, _ in columns} for r in rows], columns, most=most)


def _changes_text(changes: dict[str, Any]) -> str:
    parts = [f"{k}={v[1]}" if isinstance(v, list) and len(v) == 2 else f"{k}={_cell(v)}"
             for k, v in changes.items()]
    return ", ".join(parts)


def table_rows(rows: list[dict[str, Any]], attempts: bool) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """What a person reads in a terminal: local time, names, Chinese labels."""
    if attempts:
        cols = [("id", "编号"), ("effective_local", "时间"), ("who", "操作人"), ("case_id", "案件"),
                ("event", "事件"), ("error", "拒绝类型"), ("reason", "原因")]
        shaped = [{**r, "who": f"{r['actor_name']}({r['actor']})" if r["actor_name"] else r["actor"]} for r in rows]
        return shaped, cols
    cols = [("case_id", "案件"), ("seq", "序号"), ("effective_local", "时间"), ("who", "操作人"),
            ("event_zh", "事件"), ("move", "状态"), ("note", "备注"), ("changes_text", "变更")]
    shaped = []
    for r in rows:
        move = (f"{r['from_zh']}→{r['to_zh']}" if r["from_state"] and r["to_state"] != r["from_state"]
                else (r["to_zh"] or ""))
        who = f"{r['actor_name']}({r['actor']})" if r["actor_name"] else r["actor"]
        shaped.append({**r, "who": who, "move": move, "changes_text": _changes_text(r["changes"])})
    return shaped, cols


def render(rows: list[dict[str, Any]], fmt: str, *, attempts: bool = False, bom: bool = False) -> str:
    """One text for every format; the caller writes it to stdout or a file."""
    if bom and fmt != "csv":
        raise UsageError("--bom applies to --format csv only")
    if fmt == "csv":
        columns: tuple[str, ...] = ATTEMPT_COLUMNS if attempts else AUDIT_COLUMNS
        if rows and "hash" not in rows[0]:             # masked: no hashes (see _hashes)
            columns = tuple(c for c in columns if c not in ("prev_hash", "hash"))
        return to_csv(rows, columns, bom)
    if fmt == "jsonl":
        return to_jsonl(rows)
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    if not rows:
        return "(no rows)\n"
    shaped, cols = table_rows(rows, attempts)
    return to_table(shaped, cols) + "\n"


__all__ = ["AuditQuery", "query", "render", "to_csv", "to_table", "parse_bound", "default_tz",
           "mask_text", "mask_changes", "AUDIT_COLUMNS", "ATTEMPT_COLUMNS", "KIND_ZH"]
