"""Diagrams of a definition in Mermaid and Graphviz DOT, with Chinese labels.

Generated from the compiled Definition rather than transitions' GraphMachine,
so sign-off chains, roles and SLA clocks can be annotated and the output is
deterministic (diffable in review).
"""

from __future__ import annotations

from .model import Definition, Transition


def _edge_label(t: Transition, with_roles: bool = True) -> str:
    parts = [f"{t.label_zh} ({t.event})"]
    if t.signoffs:
        chain = " → ".join(t.signoffs.roles)
        parts.append(f"sign-off: {chain}" + (" (4-eyes)" if t.signoffs.distinct_people else ""))
    elif t.system:
        parts.append("[timer]")
    elif with_roles:
        parts.append("[" + ", ".join(sorted(t.roles)) + "]")
    if t.guards:
        parts.append("if " + " && ".join(g.expr.text for g in t.guards))
    return "\n".join(parts)


def _sla_notes(d: Definition) -> dict[str, list[str]]:
    notes: dict[str, list[str]] = {}
    for c in d.clocks:
        for s in c.start.enter or c.stop.leave or set():
            notes.setdefault(s, []).append(f"⏱ {c.label_zh}: {c.within}")
    return notes


def to_dot(d: Definition) -> str:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    lines = [f"digraph {q(d.workflow)} {{", f"  label={q(d.label_zh + ' (' + d.workflow + ')')};",
             "  labelloc=t; rankdir=LR;", '  node [shape=box, style=rounded, fontname="Noto Sans CJK SC"];',
             '  edge [fontname="Noto Sans CJK SC", fontsize=10];', '  __start [shape=point, label=""];']
    notes = _sla_notes(d)
    for s in d.states.values():
        label = f"{s.label_zh}\n{s.id}" + "".join(f"\n{n}" for n in notes.get(s.id, []))
        shape = ", peripheries=2" if s.final else ""
        lines.append(f"  {q(s.id)} [label={q(label)}{shape}];")
    lines.append(f"  __start -> {q(d.initial)};")
    for t in d.transitions:
        for src in t.sources:
            style = ", style=dashed" if t.system else (", penwidth=2" if t.signoffs else "")
            lines.append(f"  {q(src)} -> {q(t.to)} [label={q(_edge_label(t))}{style}];")
            if t.signoffs and t.signoffs.reject_to:
                lines.append(f"  {q(src)} -> {q(t.signoffs.reject_to)} "
                             f"[label={q('驳回 (reject)')}, style=dotted, color=red];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(d: Definition) -> str:
    def clean(text: str) -> str:
        return text.replace("\n", " · ").replace(":", "：").replace('"', "'")
    lines = ["---", f"title: {d.label_zh} ({d.workflow})", "---", "stateDiagram-v2"]
    notes = _sla_notes(d)
    for s in d.states.values():
        lines.append(f'    state "{clean(s.label_zh)} ({s.id})" as {s.id}')
    lines.append(f"    [*] --> {d.initial}")
    for t in d.transitions:
        for src in t.sources:
            lines.append(f"    {src} --> {t.to} : {clean(_edge_label(t, with_roles=False))}")
            if t.signoffs and t.signoffs.reject_to:
                lines.append(f"    {src} --> {t.signoffs.reject_to} : 驳回 (reject)")
    for s in d.states.values():
        if s.final:
            lines.append(f"    {s.id} --> [*]")
        for n in notes.get(s.id, []):
            lines.append(f"    note right of {s.id} : {clean(n)}")
    return "\n".join(lines) + "\n"
