"""Diagrams of a definition in Mermaid and Graphviz DOT, with Chinese labels.

Generated from the compiled Definition rather than transitions' GraphMachine,
so sign-off chains, roles, guards and SLA/timer clocks can be annotated and
the output is deterministic (diffable in review). With an `Org`, roles are
shown by their Chinese labels.
"""

from __future__ import annotations

from caseflow.definition.model import Clock, Definition, Org, Transition

_GUARD_CHARS = 48
# Words Mermaid's stateDiagram grammar reserves; such a state id gets a prefix.
_MERMAID_RESERVED = {"end", "state", "note", "direction", "class", "classDef", "style", "click", "as",
                     "left", "right", "of", "fork", "join", "choice", "concurrent"}


def _role(role: str, org: Org | None) -> str:
    r = org.roles.get(role) if org else None
    return r.label_zh if r and r.label_zh != role else role


def signoff_note(t: Transition, org: Org | None = None) -> str:
    """'✍ sign-off 签字: 经手人 → 装修中层 … · distinct people' for a transition with sign-offs."""
    assert t.signoffs is not None
    s = t.signoffs
    chain = (" → " if s.order == "sequential" else " + ").join(_role(r, org) for r in s.roles)
    extra = " · distinct people" if s.distinct_people and len(s.roles) > 1 else ""
    order = "" if s.order == "sequential" or len(s.roles) == 1 else " (any order)"
    return f"✍ sign-off 签字: {chain}{order}{extra}"


def _guard_text(t: Transition) -> list[str]:
    """UML-style guards: [expression], shortened (a guard's message says why it fails, not what it is)."""
    out = []
    for g in t.guards:
        text = " ".join(g.expr.text.split())
        out.append("[" + (text if len(text) <= _GUARD_CHARS else text[:_GUARD_CHARS - 1] + "…") + "]")
    return out


def _duration(c: Clock) -> str:
    text = str(c.within)
    return text[:-1] if c.within.amount == 1 and text.endswith("s") else text


def _edge_lines(t: Transition, org: Org | None, with_roles: bool) -> list[str]:
    lines = [f"{t.label_zh} ({t.event})" if t.label_zh != t.event else t.event]
    if t.signoffs:
        lines.append(signoff_note(t, org))
    elif t.system:
        lines.append("⏰ system (timer)")
    elif with_roles:
        lines.append("roles: " + ", ".join(_role(r, org) for r in sorted(t.roles)))
    return lines + _guard_text(t)


def _clock_states(d: Definition, c: Clock) -> list[str]:
    """Where a clock runs: the states it starts on entering, else leaves, else its events lead to."""
    states = c.start.enter or c.stop.leave or c.pause.enter or \
        frozenset(t.to for t in d.transitions if t.event in c.start.event)
    return sorted(s for s in states if s in d.states)


def clock_notes(d: Definition) -> dict[str, list[str]]:
    """state → ['⏱ SLA 24小时内回应顾客: 24 hours', '⏰ timer 会员卡有效期: 1 year → expire']."""
    notes: dict[str, list[str]] = {}
    for c in d.clocks:
        fires = [a.value for a in c.actions if a.kind == "fire"]
        text = (f"⏱ SLA {c.label_zh}: {_duration(c)}" if c.kind == "sla"
                else f"⏰ timer {c.label_zh}: {_duration(c)}") \
            + (f" → {', '.join(fires)}" if fires else "")
        for s in _clock_states(d, c):
            notes.setdefault(s, []).append(text)
    return notes


def to_dot(d: Definition, org: Org | None = None) -> str:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    lines = [f"digraph {q(d.workflow)} {{", f"  label={q(d.label_zh + ' (' + d.workflow + ')')};",
             "  labelloc=t; rankdir=LR;",
             '  node [shape=box, style=rounded, fontname="Noto Sans CJK SC,WenQuanYi Zen Hei,sans-serif"];',
             '  edge [fontname="Noto Sans CJK SC,WenQuanYi Zen Hei,sans-serif", fontsize=10];',
             '  __start [shape=point, label=""];']
    notes = clock_notes(d)
    for s in d.states.values():
        label = "\n".join([s.label_zh, s.id, *notes.get(s.id, [])])
        shape = ", peripheries=2" if s.final else ""
        lines.append(f"  {q(s.id)} [label={q(label)}{shape}];")
    lines.append(f"  __start -> {q(d.initial)};")
    for t in d.transitions:
        for src in t.sources:
            style = ", style=dashed" if t.system else (", penwidth=2" if t.signoffs else "")
            lines.append(f"  {q(src)} -> {q(t.to)} [label={q(chr(10).join(_edge_lines(t, org, True)))}{style}];")
            if t.signoffs and t.signoffs.reject_to:
                lines.append(f"  {q(src)} -> {q(t.signoffs.reject_to)} "
                             f"[label={q('驳回 sign-off rejected')}, style=dotted, color=red, fontcolor=red];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(d: Definition, org: Org | None = None) -> str:
    def clean(text: str) -> str:
        return (text.replace("\n", " · ").replace(":", "：").replace(";", "；").replace('"', "'")
                .replace("#", "＃").replace("{", "（").replace("}", "）"))

    def sid(state: str) -> str:
        return f"s_{state}" if state in _MERMAID_RESERVED else state

    lines = ["stateDiagram-v2", f"    %% {clean(d.label_zh)} ({d.workflow}) · definition {d.sha256[:12]}"]
    for s in d.states.values():
        lines.append(f'    state "{clean(s.label_zh)} ({s.id})" as {sid(s.id)}')
    lines.append(f"    [*] --> {sid(d.initial)}")
    for t in d.transitions:
        for src in t.sources:
            label = clean(" · ".join(_edge_lines(t, org, with_roles=False)))
            lines.append(f"    {sid(src)} --> {sid(t.to)} : {label}")
            if t.signoffs and t.signoffs.reject_to:
                lines.append(f"    {sid(src)} --> {sid(t.signoffs.reject_to)} : 驳回 sign-off rejected")
    for s in d.states.values():
        if s.final:
            lines.append(f"    {sid(s.id)} --> [*]")
    for state, texts in clock_notes(d).items():
        lines.append(f"    note right of {sid(state)}")
        lines.extend(f"        {clean(text)}" for text in texts)
        lines.append("    end note")
    return "\n".join(lines) + "\n"
