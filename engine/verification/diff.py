"""Two versions of a workflow compared: by structure (aligned by id) and by behaviour.

The structural diff aligns states, roles, fields, constants, clocks, decisions and
properties by id, and transitions by (event, from, alternative number). The
behavioural diff steps both definitions side by side with the same inputs (the
explorer's `step_vars` + `fire` API, one shared set of solver variables) and returns
the shortest event sequence one version accepts and the other refuses, with
concrete data and people. A changed guard gets a witness: data one version's guard
allows and the other's refuses.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import z3

from caseflow.definition.model import Definition, Org, Transition
from caseflow.verification.explorer import DEFAULT_BOUND, Explorer, Field, Node, StepVars
from caseflow.verification.replay import Move, concretize
from caseflow.verification.translate import Symbols, field_kind


@dataclass
class Change:
    kind: str            # state | transition | role | field | constant | clock | decision | property
    id: str
    change: str          # added | removed | changed
    old: Any = None
    new: Any = None

    def line(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.change]
        if self.change == "changed":
            return f"{sign} {self.kind} {self.id}: {self.old} → {self.new}"
        return f"{sign} {self.kind} {self.id}"


def _transition_key(d: Definition, t: Transition) -> str:
    same = [u for u in d.transitions if u.event == t.event and u.sources == t.sources]
    alt = f"#{same.index(t) + 1}" if len(same) > 1 else ""
    return f"{t.event}{alt} ({'|'.join(t.sources)} → {t.to})"


def _transition_view(t: Transition) -> dict[str, Any]:
    return {"to": t.to, "roles": sorted(t.roles), "guards": [g.expr.text for g in t.guards],
            "requires": list(t.requires), "accepts": list(t.accepts), "inputs": sorted(t.inputs),
            "effects": {f: e.text for f, e in t.effects}, "decide": list(t.decide),
            "signoffs": None if t.signoffs is None else {"roles": list(t.signoffs.roles),
                                                         "order": t.signoffs.order,
                                                         "distinct_people": t.signoffs.distinct_people,
                                                         "reject_to": t.signoffs.reject_to},
            "actions": [(a.kind, a.value, a.when.text if a.when else None) for a in t.actions]}


def _compare(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            out.append(Change(kind, key, "removed", old[key], None))
        elif key not in old:
            out.append(Change(kind, key, "added", None, new[key]))
        elif old[key] != new[key]:
            if isinstance(old[key], dict) and isinstance(new[key], dict):
                for part in sorted(set(old[key]) | set(new[key])):
                    if old[key].get(part) != new[key].get(part):
                        out.append(Change(kind, f"{key}.{part}", "changed", old[key].get(part), new[key].get(part)))
            else:
                out.append(Change(kind, key, "changed", old[key], new[key]))
    return out


def structural(a: Definition, b: Definition) -> list[Change]:
    from caseflow.verification.check import declared

    def states(d: Definition) -> dict[str, Any]:
        return {s.id: {"label_zh": s.label_zh, "initial": s.initial, "final": s.final,
                       "on_enter": [(x.kind, x.value, x.when.text if x.when else None) for x in s.on_enter]}
                for s in d.states.values()}

    def clocks(d: Definition) -> dict[str, Any]:
        return {c.name: {"kind": c.kind, "within": str(c.within), "start": repr(c.start), "stop": repr(c.stop),
                         "when": c.when.text if c.when else None} for c in d.clocks}

    def roles(d: Definition) -> dict[str, Any]:
        return {r: True for t in d.transitions for r in t.roles}

    def props(d: Definition) -> dict[str, Any]:
        return {p.id: {"pattern": p.pattern, "spec": dict(p.spec)} for p in declared(d)}

    def decisions(d: Definition) -> dict[str, Any]:
        return {n: {"rules": [(e.text, dict(o)) for e, o in t.rules]} for n, t in d.decisions.items()}

    return (_compare("state", states(a), states(b))
            + _compare("transition", {_transition_key(a, t): _transition_view(t) for t in a.transitions},
                       {_transition_key(b, t): _transition_view(t) for t in b.transitions})
            + _compare("role", roles(a), roles(b))
            + _compare("field", dict(a.fields), dict(b.fields))
            + _compare("constant", dict(a.constants), dict(b.constants))
            + _compare("clock", clocks(a), clocks(b))
            + _compare("decision", decisions(a), decisions(b))
            + _compare("property", props(a), props(b)))


# -- behaviour --------------------------------------------------------------------------------

@dataclass
class Difference:
    accepted_by: str                 # "old" | "new"
    moves: list[Move] = field(default_factory=list)
    event: str = ""


def _shared_initial(ea: Explorer, eb: Explorer) -> tuple[Node, Node]:
    na = ea.initial()
    data = dict(na.data)
    pc = list(na.pc)
    required = set(eb.d.data_schema.get("required", []))
    for name, schema in eb.d.fields.items():
        if name in data and data[name].kind == field_kind(schema):
            continue
        term, dom = eb.fresh_value(field_kind(schema), schema, name)
        given = z3.BoolVal(True) if name in required else eb.s.fresh("bool", f"set_{name}")
        pc.append(z3.Implies(given, dom))
        data[name] = Field(field_kind(schema), term, given)
    pc += [data[r].set for r in required]
    nb = Node(eb.d.initial, {k: v for k, v in data.items() if k in eb.d.fields}, (), tuple(pc), na.trace,
              {(eb.d.initial, 0): 1}, na.now)
    na = Node(na.state, {k: v for k, v in data.items() if k in ea.d.fields}, (), tuple(pc), na.trace, na.visits,
              na.now)
    return na, nb


def _merge_vars(ea: Explorer, eb: Explorer, na: Node, nb: Node, ta: list[Transition], tb: list[Transition],
                tag: str) -> StepVars:
    vars = ea.step_vars(na, ta, tag)
    more = eb.step_vars(nb, tb, tag)
    for name, v in more.sets.items():
        vars.sets.setdefault(name, v)
    for name, v in more.inputs.items():
        vars.inputs.setdefault(name, v)
    vars.domain += more.domain[2:]
    return vars


def behavioural(a: Definition, b: Definition, org: Org, bound: int = DEFAULT_BOUND,
                limit: int = 3000) -> Difference | None:
    """The shortest sequence of actions one version accepts and the other refuses, or None within bound.

    Actions are `advance EVENT` (and system events) and sign/reject by a role; both versions
    take the same inputs, people and times. Each side of a pair of nodes keeps its own data;
    the pair shares one path condition.
    """
    symbols = Symbols()
    ea, eb = Explorer(a, org, bound, symbols=symbols), Explorer(b, org, bound, symbols=symbols)
    na0, nb0 = _shared_initial(ea, eb)
    queue: deque[tuple[Node, Node, tuple[Any, ...]]] = deque([(na0, nb0, na0.pc)])
    seen = 0
    while queue and seen < limit:
        na, nb, pc = queue.popleft()
        seen += 1
        if na.depth >= bound or ea.check(pc) is None:
            continue
        for label, vars, fa, fb in _actions(ea, eb, na, nb):
            any_a = z3.Or(*[c for c, _ in fa]) if fa else z3.BoolVal(False)
            any_b = z3.Or(*[c for c, _ in fb]) if fb else z3.BoolVal(False)
            base = pc + tuple(vars.domain)
            for side, yes, no, ex, pairs in (("old", any_a, any_b, ea, fa), ("new", any_b, any_a, eb, fb)):
                model = ex.check(base + (yes, z3.Not(no)))
                if model is not None and not isinstance(model, str):
                    nxt = next(n for c, n in pairs if z3.is_true(model.eval(c, model_completion=True)))
                    return Difference(side, concretize(ex, nxt, model), label)
            for cond_a, xa in fa:
                for cond_b, xb in fb:
                    if max(xa.visits.values()) <= ea.visits and max(xb.visits.values()) <= eb.visits:
                        queue.append((xa, xb, base + (cond_a, cond_b)))
    return None


def _actions(ea: Explorer, eb: Explorer, na: Node, nb: Node) -> list[tuple[str, StepVars, list[Any], list[Any]]]:
    out = []
    for event in dict.fromkeys(ea.events_from(na.state) + eb.events_from(nb.state)):
        ca = [t for t in ea.d.candidates(event, na.state) if not t.signoffs]
        cb = [t for t in eb.d.candidates(event, nb.state) if not t.signoffs]
        if not ca and not cb:
            continue
        vars = _merge_vars(ea, eb, na, nb, ca, cb, event)
        out.append((event, vars, ea.fire(na, event, vars) if ca else [], eb.fire(nb, event, vars) if cb else []))
    sa = {(w, r): t for w, r, t in ea.sign_options(na)}
    sb = {(w, r): t for w, r, t in eb.sign_options(nb)}
    for key in dict.fromkeys(list(sa) + list(sb)):
        vars = ea.step_vars(na, [], key[0])
        fa = [ea.sign(na, key[0], key[1], sa[key], vars)] if key in sa else []
        fb = [eb.sign(nb, key[0], key[1], sb[key], vars)] if key in sb else []
        out.append((f"{key[0]} as {key[1]}", vars, fa, fb))
    return out


def guard_witnesses(a: Definition, b: Definition, org: Org) -> list[dict[str, Any]]:
    """For each transition (aligned by key) whose guards changed: data one version allows, the other refuses."""
    from caseflow.verification.replay import _value
    out = []
    symbols = Symbols()
    ea, eb = Explorer(a, org, symbols=symbols), Explorer(b, org, symbols=symbols)
    na, nb = _shared_initial(ea, eb)
    old = {_transition_key(a, t): t for t in a.transitions}
    new = {_transition_key(b, t): t for t in b.transitions}
    for key in sorted(set(old) & set(new)):
        ta, tb = old[key], new[key]
        if [g.expr.text for g in ta.guards] == [g.expr.text for g in tb.guards] and ta.requires == tb.requires:
            continue
        vars = _merge_vars(ea, eb, na, nb, [ta], [tb], "witness")
        na_state = Node(ta.sources[0], na.data, (), na.pc, na.trace, na.visits, na.now)
        nb_state = Node(tb.sources[0], nb.data, (), nb.pc, nb.trace, nb.visits, nb.now)
        ca = ea.attempt(na_state, ta, vars, vars.actor)[0]
        cb = eb.attempt(nb_state, tb, vars, vars.actor)[0]
        for allows, yes, no in (("old", ca, cb), ("new", cb, ca)):
            model = ea.check(na.pc + nb.pc + tuple(vars.domain) + (yes, z3.Not(no)))
            if model is None or isinstance(model, str):
                continue
            data = {n: _value(ea, model, f.term, f.kind, a.fields.get(n) or b.fields.get(n) or {})
                    for n, f in {**na.data, **nb.data}.items() if z3.is_true(model.eval(f.set, model_completion=True))}
            inputs = {n: _value(ea, model, v, k, a.fields.get(n) or b.fields.get(n) or {})
                      for n, (g, v, k) in {**vars.sets, **vars.inputs}.items()
                      if z3.is_true(model.eval(g, model_completion=True))}
            out.append({"transition": key, "allowed_by": allows, "data": data, "inputs": inputs,
                        "old_guards": [g.expr.text for g in ta.guards], "new_guards": [g.expr.text for g in tb.guards]})
    return out
