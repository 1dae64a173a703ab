"""A verification report in words (one verdict line per property) and as JSON."""

from __future__ import annotations

from typing import Any

from caseflow.definition.model import Org
from caseflow.errors import DefinitionError
from caseflow.verification.check import Finding, Report

VERDICTS = {"holds": "holds", "violated": "VIOLATED", "unknown": "unknown (solver gave up)"}


def verdict_line(r: Report, f: Finding) -> str:
    """`file:line:col: 中文标签 (id): holds within bound N` — the line tests and editors read."""
    p = f.prop
    text = f"{p.file}:{p.line}:{p.col}: {p.label_zh} ({p.id}): {VERDICTS[f.status]} within bound {r.bound}"
    if f.status == "violated" and f.detail:
        text += f": {f.detail}"
    if f.status != "violated" and f.spurious:
        text += f" ({len(f.spurious)} spurious finding(s) refused by the engine)"
    return text


def render(r: Report, org: Org) -> list[str]:
    names = {p.id: p.name for p in org.people.values()}
    lines = [str(e) for e in r.errors]
    for f in r.findings:
        lines.append(verdict_line(r, f))
        if f.status == "violated":
            for i, m in enumerate(f.moves, 1):
                probe = "  (would fire)" if i > len(f.moves) - _probe_count(f) else ""
                lines.append(f"    {i}. {m.describe(r.definition, names)}{probe}")
    held = sum(f.status == "holds" for f in r.findings)
    summary = (f"{r.definition.workflow}: {held}/{len(r.findings)} properties hold within bound {r.bound} "
               f"({r.nodes} symbolic states, {r.solver_calls} solver calls, {r.seconds:.1f} s"
               + (", search truncated" if r.truncated else "") + ")")
    lines.append(summary)
    if r.approximations:
        lines.append("  over-approximated (not translated exactly): "
                     + "; ".join(f"{expr} — {why}" for expr, why in r.approximations))
    return lines


def _probe_count(f: Finding) -> int:
    return 1 if f.prop.pattern == "exclusive" else 0


def as_json(r: Report, verified_at: str | None = None) -> dict[str, Any]:
    return {
        "workflow": r.definition.workflow, "file": r.definition.path, "definition": r.definition.sha256,
        "bound": r.bound, "ok": r.ok, "verified_at": verified_at, "nodes": r.nodes,
        "solver_calls": r.solver_calls, "seconds": round(r.seconds, 3), "truncated": r.truncated,
        "over_approximations": [{"expr": e, "why": w} for e, w in r.approximations],
        "errors": [{"file": e.file, "line": e.line, "col": e.col, "message": e.message, "hint": e.hint}
                   for e in r.errors],
        "properties": [{
            "id": f.prop.id, "label_zh": f.prop.label_zh, "source": f.prop.source, "pattern": f.prop.pattern,
            "file": f.prop.file, "line": f.prop.line, "col": f.prop.col, "verdict": f.status,
            "detail": f.detail, "spurious": f.spurious,
            "counterexample": [{"kind": m.kind, "event": m.event, "actor": m.actor, "role": m.role,
                                "now": m.now.strftime("%Y-%m-%dT%H:%M:%SZ"), "set": m.sets, "state": m.state}
                               for m in f.moves]} for f in r.findings],
    }


def record_entry(r: Report, found: list[DefinitionError]) -> dict[str, Any]:
    """What the verification record keeps (see record.py) of a search and the lints `found` beside it:
    clean (ok) only when every property holds and no lint is an error."""
    from caseflow.verification.lints import Warning_
    return {"workflow": r.definition.workflow, "bound": r.bound,
            "ok": r.ok and not [e for e in found if not isinstance(e, Warning_)],
            "properties": {f.prop.id: f.status for f in r.findings}, "seconds": round(r.seconds, 3),
            "lints": [{"file": e.file, "line": e.line, "col": e.col, "message": e.message, "hint": e.hint,
                       "warning": isinstance(e, Warning_)} for e in found]}
