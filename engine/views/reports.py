"""Reports an auditor asks for, read from cases and the audit log.

- `complaints(month)`: the 顾客投诉分类统计表 the 客服主管 fills in after every
  summary [001 §四.4(4)6)]: complaints *received* in a calendar month (by
  `received_at` in the workflow's zone, because a complaint typed in on the 2nd
  of April about a call on 31 March belongs to March), counted by category,
  channel, responsible department, severity and outcome, with every enum value
  listed even at zero so months compare line by line.
- `signoffs(...)`: every sign-off chain, round by round: who signed in which
  role and when, who rejected with what note, and whether it fired.
- `sla(...)`: delegates to `caseflow.sla.compliance` (windows per workflow, clock and month).

Nothing here is personal data (no x-pii field is reported), so no masking is
needed; case ids let the auditor trace each count back to its history.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from caseflow.definition.model import Definition
from caseflow.errors import UsageError
from caseflow.store.tables import audit, cases
from caseflow.values import add_months, format_datetime, parse_datetime, sortable_time

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

# Labels for the canonical ids of processes.md §1, used when the workflow file
# gives none (a field may carry `x-enum-labels: {value: 中文}` to override them).
FALLBACK_LABELS: dict[str, dict[str, str]] = {
    "category": {"service_attitude": "服务态度", "quality": "产品(施工)质量", "technical": "技术",
                 "service": "服务", "sales": "销售", "other": "其它"},
    "channel": {"store": "到店", "phone": "电话", "visit": "来访", "on_site": "监理现场"},
    "severity": {"normal": "一般", "major": "重大"},
    "responsible_dept": {"engineering": "工程部", "site_supervisor": "监理", "tech_dept": "技术部",
                         "sales_dept": "市场销售部", "design": "设计部", "materials": "材料部",
                         "customer_service": "客服部"},
}
OUTCOMES = {"in_progress": "处理中", "invalid": "投诉不成立（已婉转答复）", "accepted": "顾客接受处理方案",
            "accepted_final": "顾客接受最终方案", "litigation": "诉讼结案", "closed_other": "其他结案"}
UNSET = "（未填）"
DIMENSIONS = ("category", "channel", "responsible_dept", "severity")


def parse_month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text or ""):
        raise UsageError(f"--month {text!r}: expected YYYY-MM, e.g. 2025-03")
    return text


def month_range(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of a calendar month in a zone."""
    y, m = map(int, parse_month(month).split("-"))
    start = datetime(y, m, 1, tzinfo=tz)
    return start.astimezone(UTC), add_months(start, 1, tz)


def value_label(engine: Engine, d: Definition, fname: str, value: Any) -> str:
    """The Chinese label of an enum value: the workflow's own, else the spec's, else the org's."""
    if value is None:
        return UNSET
    spec = d.fields.get(fname, {})
    own = spec.get("x-enum-labels") or {}
    if value in own:
        return str(own[value])
    for alt in list(spec.get("oneOf") or []) + list(spec.get("anyOf") or []):
        if isinstance(alt, dict) and alt.get("const") == value and (alt.get("label_zh") or alt.get("title")):
            return str(alt.get("label_zh") or alt.get("title"))
    if value in FALLBACK_LABELS.get(fname, {}):
        return FALLBACK_LABELS[fname][value]
    role = engine.catalog.org.roles.get(str(value))
    return role.label_zh if role else str(value)


def outcome(d: Definition, state: str, data: dict[str, Any]) -> str:
    """How a complaint ended, read from what the closing steps recorded."""
    if state not in d.states or not d.states[state].final:
        return "in_progress"
    if data.get("valid") is False:
        return "invalid"
    if data.get("litigation_result"):
        return "litigation"
    if data.get("customer_accepted") and data.get("final_solution"):
        return "accepted_final"
    if data.get("customer_accepted"):
        return "accepted"
    return "closed_other"


_MONTH = (sa.select(cases.c.id, cases.c.state, cases.c.data)
          .where(cases.c.workflow == sa.bindparam("workflow"), cases.c.received_at >= sa.bindparam("start"),
                 cases.c.received_at < sa.bindparam("end"))
          .order_by(cases.c.id))


def complaints(engine: Engine, month: str, workflow: str = "complaint") -> dict[str, Any]:
    """顾客投诉分类统计表 for one month."""
    month = parse_month(month)
    d = engine.catalog.get(workflow)
    start, end = month_range(month, d.tz)
    picked: list[tuple[str, str, dict[str, Any]]] = []
    with engine.store.read() as conn:     # only the month's cases, through ix_cases_workflow_received
        for r in conn.execute(_MONTH, {"workflow": workflow, "start": sortable_time(format_datetime(start)),
                                       "end": sortable_time(format_datetime(end))}):
            picked.append((r.id, r.state, json.loads(r.data)))
    dims = []
    for fname in DIMENSIONS:
        counts = Counter(data.get(fname) for _, _, data in picked)
        values = list(d.fields.get(fname, {}).get("enum", [])) + sorted(
            (v for v in counts if v is not None and v not in d.fields.get(fname, {}).get("enum", [])), key=str)
        if counts.get(None):
            values.append(None)
        dims.append({"field": fname, "label_zh": d.fields.get(fname, {}).get("label_zh", fname),
                     "rows": [{"value": v, "label_zh": value_label(engine, d, fname, v), "count": counts.get(v, 0)}
                              for v in values]})
    got = Counter(outcome(d, state, data) for _, state, data in picked)
    dims.append({"field": "outcome", "label_zh": "处理结果",
                 "rows": [{"value": k, "label_zh": zh, "count": got.get(k, 0)} for k, zh in OUTCOMES.items()]})
    return {"workflow": workflow, "label_zh": d.label_zh, "month": month, "total": len(picked),
            "closed": sum(got[k] for k in OUTCOMES if k != "in_progress"),
            "valid": sum(1 for _, _, data in picked if data.get("valid") is True),
            "dimensions": dims, "cases": [cid for cid, _, _ in picked]}


complaint_statistics = complaints       # the name `caseflow demo` calls


def render_complaint_statistics(r: dict[str, Any]) -> str:
    """The table as the 客服主管 files it: one block per dimension, Chinese labels, counts."""
    from caseflow.audit.query import to_table
    head = (f"顾客投诉分类统计表  {r['month']}  {r['label_zh']}({r['workflow']})\n"
            f"受理 {r['total']} 件，成立 {r['valid']} 件，已结案 {r['closed']} 件\n\n")
    return head + "\n\n".join(to_table([{"label": row["label_zh"], "count": row["count"]} for row in dim["rows"]],
                                        [("label", dim["label_zh"]), ("count", "件数")]) for dim in r["dimensions"])


# -- sign-off chains ------------------------------------------------------------------------

@dataclass
class _Round:
    case_id: str
    workflow: str
    state: str
    definition: str
    signatures: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "pending"
    rejection: dict[str, Any] | None = None
    finished_at: str | None = None


def signed_role(roles: list[str], required: list[str], done: list[str]) -> str | None:
    """The one role a sign-off row was given in.

    New rows record exactly that role. Rows written before (intermediate
    signatures and rejections) hold every role the signer had on the step; the
    role is then the one the engine chose: the first still-required role, in
    the step's order, that the signer holds.
    """
    if len(roles) == 1:
        return roles[0]
    held = [r for r in required if r not in done and r in roles]
    return held[0] if held else (", ".join(roles) or None)


def _mark(engine: Engine, r: Any, d: Definition | None, done: list[str]) -> dict[str, Any]:
    people, labels = engine.catalog.org.people, engine.catalog.org.roles
    t = d.signoff_transition(r.from_state) if d and r.from_state in d.states else None
    required = list(t.signoffs.roles) if t and t.signoffs else []
    role = signed_role(json.loads(r.roles), required, done)
    local = parse_datetime(r.effective_at).astimezone(d.tz).strftime("%Y-%m-%d %H:%M") if d else r.effective_at
    role_zh = "、".join(labels[x].label_zh if x in labels else x for x in role.split(", ")) if role else None
    return {"seq": r.seq, "role": role, "role_zh": role_zh, "by": r.actor,
            "name": people[r.actor].name if r.actor in people else "", "at": r.effective_at, "at_local": local,
            "recorded_at": r.recorded_at, "note": r.note}


def _rounds(engine: Engine, rows: list[Any], defs: dict[str, Definition | None]) -> list[_Round]:
    """Walk one case's rows: signatures gather into a round until it fires, is rejected or left."""
    out: list[_Round] = []
    cur: _Round | None = None
    for r in rows:
        d = defs.get(r.definition)
        if r.kind == "signoff":
            if cur is None:
                cur = _Round(r.case_id, r.workflow, r.from_state, r.definition)
                out.append(cur)
            cur.signatures.append(_mark(engine, r, d, [s["role"] for s in cur.signatures]))
        elif r.kind == "reject":
            if cur is None:
                cur = _Round(r.case_id, r.workflow, r.from_state, r.definition)
                out.append(cur)
            mark = _mark(engine, r, d, [s["role"] for s in cur.signatures])
            cur.outcome, cur.rejection, cur.finished_at = "rejected", {**mark, "to": r.to_state}, r.effective_at
            cur = None
        elif cur is not None and r.kind == "transition" and r.from_state == cur.state \
                and (r.to_state != r.from_state or r.event == _event(defs.get(cur.definition), cur.state)):
            fired = r.event == _event(defs.get(cur.definition), cur.state)
            cur.outcome, cur.finished_at = ("approved" if fired else "abandoned"), r.effective_at
            cur = None
    return out


def _event(d: Definition | None, state: str) -> str | None:
    t = d.signoff_transition(state) if d else None
    return t.event if t else None


def signoffs(engine: Engine, workflow: str | None = None, since: datetime | None = None,
             until: datetime | None = None) -> list[dict[str, Any]]:
    """Sign-off rounds with any signature or rejection in [since, until)."""
    from caseflow.audit.query import DefinitionCache
    kinds = ("signoff", "reject", "transition")
    touched = sa.select(audit.c.case_id).where(audit.c.kind.in_(("signoff", "reject")))
    if workflow:
        touched = touched.where(audit.c.workflow == workflow)
    with engine.store.read() as conn:
        rows = conn.execute(sa.select(audit).where(audit.c.case_id.in_(touched), audit.c.kind.in_(kinds))
                            .order_by(audit.c.case_id, audit.c.seq)).all()
        loader = DefinitionCache(engine, conn)
        defs = {sha: loader.get(sha, None) for sha in {r.definition for r in rows}}
    by_case: dict[str, list[Any]] = {}
    for r in rows:
        by_case.setdefault(r.case_id, []).append(r)
    out = []
    for case_id in sorted(by_case, key=lambda c: by_case[c][0].effective_at):
        for n, rnd in enumerate(_rounds(engine, by_case[case_id], defs), 1):
            marks = rnd.signatures + ([rnd.rejection] if rnd.rejection else [])
            if not any(_within(m["at"], since, until) for m in marks):
                continue
            out.append(_round_dict(engine, rnd, n, defs.get(rnd.definition)))
    return out


def _within(stamp: str, since: datetime | None, until: datetime | None) -> bool:
    at = parse_datetime(stamp)
    return (since is None or at >= since) and (until is None or at < until)


def _round_dict(engine: Engine, rnd: _Round, n: int, d: Definition | None) -> dict[str, Any]:
    t = d.signoff_transition(rnd.state) if d else None
    required = list(t.signoffs.roles) if t and t.signoffs else []
    zh = {"approved": "已通过", "rejected": "已驳回", "pending": "待签", "abandoned": "未完成（案件已离开该状态）"}
    return {"case_id": rnd.case_id, "workflow": rnd.workflow, "round": n, "state": rnd.state,
            "state_zh": d.states[rnd.state].label_zh if d and rnd.state in d.states else rnd.state,
            "event": t.event if t else None, "event_zh": t.label_zh if t else None,
            "required": [{"role": r, "role_zh": engine.catalog.org.roles[r].label_zh
                          if r in engine.catalog.org.roles else r} for r in required],
            "signatures": rnd.signatures, "outcome": rnd.outcome, "outcome_zh": zh[rnd.outcome],
            "rejection": rnd.rejection, "finished_at": rnd.finished_at}


def sla(engine: Engine, workflow: str | None, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """SLA compliance per workflow, clock and month, counted per window (the SLA module owns what "met" means)."""
    from caseflow.sla.compliance import compliance
    return compliance(engine, workflow, since, until)


__all__ = ["complaints", "complaint_statistics", "render_complaint_statistics", "signoffs", "sla", "outcome",
           "value_label", "parse_month", "month_range", "OUTCOMES"]
