"""Property patterns: the rules a designer can declare under `properties:`, one object each.

A property in a workflow file names one pattern and its parameters:

    properties:
      four_eyes:
        label_zh: 退款前须四个不同的人依次签字
        source: 001 §四.2
        signed_before: {event: pay, roles: [handler, middle_manager], since: apply}

Each pattern object says what its parameters look like (a JSON Schema fragment,
copied into schemas/workflow.schema.json; a test keeps the two equal), which
names it refers to (checked before any search) and, for a node of the symbolic
search, the condition under which that node violates it (`violation`). The
explorer visits nodes shortest-path first, so the first satisfiable violation is
a shortest counterexample. To add a pattern, see docs/verification.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import z3

from caseflow.definition.model import Definition
from caseflow.verification.explorer import Explorer, Node, Step

_NAMES = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/id"}}
_NAME = {"$ref": "#/$defs/id"}


def fired(step: Step) -> str | None:
    """The event a step fired (a partial sign-off fires nothing; a rejection fires `reject`)."""
    if step.kind == "reject":
        return "reject"
    if step.kind == "sign":
        return step.event if step.round is not None else None
    return step.event


def entered(step: Step, state: str) -> bool:
    return step.dest == state and (step.source != state or step.kind == "open")


@dataclass(frozen=True)
class Pattern:
    key: str
    label_zh: str
    summary: str
    schema: Mapping[str, Any]
    refs: Callable[[Mapping[str, Any]], list[tuple[str, str, list[Any]]]]   # (kind, name, path in spec)
    violation: Callable[[Explorer, Mapping[str, Any], Node], Any]           # z3 Bool or None: not here
    special: str | None = None        # "trap", "exclusive": checked by dedicated code in check.py


# -- signed_before -------------------------------------------------------------------------------

def _round_ok(spec: Mapping[str, Any], signatures: tuple[tuple[str, Any], ...]) -> Any:
    roles = list(spec["roles"])
    got = [r for r, _ in signatures]
    if spec.get("order", "sequential") == "sequential":
        it = iter(got)
        if not all(r in it for r in roles):
            return z3.BoolVal(False)
    elif not set(roles) <= set(got):
        return z3.BoolVal(False)
    signer = {r: by for r, by in signatures}
    people = [signer[r] for r in roles]
    if spec.get("distinct_people", True) and len(people) > 1:
        return z3.Distinct(*people)
    return z3.BoolVal(True)


def _signed_before(ex: Explorer, spec: Mapping[str, Any], node: Node) -> Any:
    last = node.trace[-1]
    if fired(last) != spec["event"]:
        return None
    start = 0
    if spec.get("since"):
        for i, step in enumerate(node.trace[:-1]):
            if fired(step) == spec["since"]:
                start = i + 1
    rounds = [s.round for s in node.trace[start:] if s.round is not None]
    return z3.Not(z3.Or(*[_round_ok(spec, r) for r in rounds])) if rounds else z3.BoolVal(True)


# -- reached_only_via / only_after / response -----------------------------------------------------

def _reached_only_via(ex: Explorer, spec: Mapping[str, Any], node: Node) -> Any:
    if not entered(node.trace[-1], spec["state"]):
        return None
    if any(fired(s) in spec["events"] for s in node.trace):
        return None
    return z3.BoolVal(True)


def _only_after(ex: Explorer, spec: Mapping[str, Any], node: Node) -> Any:
    if fired(node.trace[-1]) != spec["event"]:
        return None
    if any(fired(s) == spec["after"] for s in node.trace[:-1]):
        return None
    return z3.BoolVal(True)


def _response(ex: Explorer, spec: Mapping[str, Any], node: Node) -> Any:
    if not ex.d.states[node.state].final:
        return None
    pending = False
    for s in node.trace:
        if entered(s, spec["after"]):
            pending = True
        if fired(s) in spec["eventually"]:
            pending = False
    return z3.BoolVal(True) if pending else None


# -- notifies / invariant ---------------------------------------------------------------------------

def _notifies(ex: Explorer, spec: Mapping[str, Any], node: Node) -> Any:
    last = node.trace[-1]
    if not entered(last, spec["enter"]):
        return None
    tr = ex.translator(node.data, None, extra={"now": _ts(node.now)})
    actions = list(ex.d.states[spec["enter"]].on_enter)
    if last.transition is not None and last.kind in ("advance", "system") or (last.kind == "sign" and last.round):
        actions += list(last.transition.actions) if last.transition else []
    runs = [z3.BoolVal(True) if a.when is None else ex.holds(a.when.text, tr)
            for a in actions if a.kind == "notify" and a.value == spec["role"]]
    when = ex.holds(spec["when"], tr) if spec.get("when") else z3.BoolVal(True)
    return z3.And(when, z3.Not(z3.Or(*runs))) if runs else when


def _invariant(ex: Explorer, spec: Mapping[str, Any], node: Node) -> Any:
    if spec.get("in") and node.state not in spec["in"]:
        return None
    tr = ex.translator(node.data, None, extra={"now": _ts(node.now)})
    return z3.Not(ex.holds(spec["expr"], tr))


def _ts(term: Any) -> Any:
    from caseflow.verification.translate import Val
    return Val("ts", term)


def _none(ex: Explorer, spec: Mapping[str, Any], node: Node) -> Any:
    return None


PATTERNS: dict[str, Pattern] = {p.key: p for p in [
    Pattern(
        "signed_before", "签字在先",
        "EVENT never fires unless a sign-off round by ROLES (distinct people, in order) completed since SINCE",
        {"type": "object", "additionalProperties": False, "required": ["event", "roles"],
         "properties": {"event": _NAME, "roles": _NAMES, "since": _NAME,
                        "distinct_people": {"type": "boolean", "default": True},
                        "order": {"enum": ["sequential", "any"], "default": "sequential"}}},
        lambda s: [("event", s["event"], ["event"])] + [("role", r, ["roles", i]) for i, r in enumerate(s["roles"])]
        + ([("event", s["since"], ["since"])] if s.get("since") else []),
        _signed_before),
    Pattern(
        "reached_only_via", "必经环节",
        "every path into STATE passes one of EVENTS",
        {"type": "object", "additionalProperties": False, "required": ["state", "events"],
         "properties": {"state": _NAME, "events": _NAMES}},
        lambda s: [("state", s["state"], ["state"])] + [("event", e, ["events", i]) for i, e in enumerate(s["events"])],
        _reached_only_via),
    Pattern(
        "no_traps", "无死角",
        "in no reachable non-final state can the data leave every person without a way on (except ESCAPE events)",
        {"type": "object", "additionalProperties": False,
         "properties": {"escape": {"type": "array", "items": _NAME}}},
        lambda s: [("event", e, ["escape", i]) for i, e in enumerate(s.get("escape", []))],
        _none, special="trap"),
    Pattern(
        "exclusive", "分支互斥",
        "no two alternatives of EVENT are ever enabled together",
        {"type": "object", "additionalProperties": False, "required": ["event"], "properties": {"event": _NAME}},
        lambda s: [("event", s["event"], ["event"])],
        _none, special="exclusive"),
    Pattern(
        "only_after", "先后顺序",
        "EVENT fires only after AFTER has fired",
        {"type": "object", "additionalProperties": False, "required": ["event", "after"],
         "properties": {"event": _NAME, "after": _NAME}},
        lambda s: [("event", s["event"], ["event"]), ("event", s["after"], ["after"])],
        _only_after),
    Pattern(
        "response", "限时响应",
        "after entering AFTER, one of EVENTUALLY fires before the case ends, and the SLA clock SLA times it",
        {"type": "object", "additionalProperties": False, "required": ["after", "eventually", "sla"],
         "properties": {"after": _NAME, "eventually": _NAMES, "sla": _NAME}},
        lambda s: [("state", s["after"], ["after"]), ("clock", s["sla"], ["sla"])]
        + [("event", e, ["eventually", i]) for i, e in enumerate(s["eventually"])],
        _response),
    Pattern(
        "notifies", "通知到人",
        "whenever the case enters ENTER (and WHEN holds), ROLE is notified",
        {"type": "object", "additionalProperties": False, "required": ["role", "enter"],
         "properties": {"role": _NAME, "enter": _NAME, "when": {"type": "string", "minLength": 1}}},
        lambda s: [("role", s["role"], ["role"]), ("state", s["enter"], ["enter"])],
        _notifies),
    Pattern(
        "invariant", "始终成立",
        "EXPR holds in every reachable case (in the states IN, default all)",
        {"type": "object", "additionalProperties": False, "required": ["expr"],
         "properties": {"expr": {"type": "string", "minLength": 1}, "in": {"type": "array", "items": _NAME}}},
        lambda s: [("state", st, ["in", i]) for i, st in enumerate(s.get("in", []))],
        _invariant),
]}


def property_schema() -> dict[str, Any]:
    """The JSON Schema of one entry under `properties:` (kept in schemas/workflow.schema.json)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["label_zh"],
        "minProperties": 2,
        "maxProperties": 4,
        "properties": {"label_zh": {"$ref": "#/$defs/label"},
                       "source": {"type": "string", "description": "The document and section the rule comes from."},
                       **{p.key: {**p.schema, "description": p.summary} for p in PATTERNS.values()}},
        "oneOf": [{"required": [key]} for key in PATTERNS],
    }


def response_clock_problem(d: Definition, spec: Mapping[str, Any]) -> str | None:
    """Why the SLA named by a `response` property does not time it, or None."""
    clock = next((c for c in d.clocks if c.name == spec["sla"]), None)
    if clock is None:
        return f"no SLA clock named {spec['sla']!r}"
    entering = {t.event for t in d.transitions if t.to == spec["after"] and spec["after"] not in t.sources}
    starts = spec["after"] in clock.start.enter or (entering and entering <= clock.start.event) \
        or (spec["after"] == d.initial and "open" in clock.start.event)
    if not starts:
        return f"clock {clock.name!r} does not start on entering {spec['after']!r}"
    wanted = set(spec["eventually"])
    stops = set(clock.stop.event)
    for state in clock.stop.leave:
        stops |= {t.event for t in d.transitions_from(state) if t.to != state}
    for state in clock.stop.enter:
        stops |= {t.event for t in d.transitions if t.to == state}
    if not stops or not stops <= wanted:
        extra = ", ".join(sorted(stops - wanted)) or "nothing"
        return f"clock {clock.name!r} also stops on {extra}, not only on {', '.join(sorted(wanted))}"
    return None
