"""`caseflow verify` as a library call: declared properties → verdicts with real counterexamples.

One symbolic search per definition checks every declared property at every node
(shortest paths first). A satisfiable violation is made concrete and replayed
through the engine; only a replay the engine accepts is reported as a violation
(`violated`), a refused one is set aside as spurious and the search goes on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import z3

from caseflow.definition.model import Definition, Org
from caseflow.definition.source import parse_source
from caseflow.errors import DefinitionError
from caseflow.verification.explorer import DEFAULT_BOUND, Explorer, Node
from caseflow.verification.patterns import PATTERNS, response_clock_problem
from caseflow.verification.replay import Move, concretize, replay

MAX_SPURIOUS = 3


@dataclass(frozen=True)
class Declared:
    id: str
    label_zh: str
    source: str | None
    pattern: str
    spec: Mapping[str, Any]
    file: str
    line: int
    col: int


@dataclass
class Finding:
    prop: Declared
    status: str = "holds"             # holds | violated | unknown
    moves: list[Move] = field(default_factory=list)
    detail: str = ""                  # what the last move shows (e.g. which alternatives)
    spurious: list[str] = field(default_factory=list)


@dataclass
class Report:
    definition: Definition
    bound: int
    findings: list[Finding]
    approximations: list[tuple[str, str]]
    nodes: int = 0
    solver_calls: int = 0
    seconds: float = 0.0
    truncated: bool = False
    errors: list[DefinitionError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and all(f.status != "violated" for f in self.findings)


def declared(d: Definition) -> list[Declared]:
    """The `properties:` of a definition, with where each is written."""
    src = parse_source(d.text.encode("utf-8"), d.path)
    props = (src.data or {}).get("properties") or {}
    out = []
    for pid, p in props.items():
        pattern = next(k for k in PATTERNS if k in p)
        line, col = src.locate(["properties", pid], key=True)
        out.append(Declared(str(pid), p["label_zh"], p.get("source"), pattern, p[pattern], d.path, line, col))
    return out


def reference_errors(d: Definition, org: Org, props: list[Declared]) -> list[DefinitionError]:
    """Names a property mentions that the definition does not have."""
    from caseflow.definition.lint import did_you_mean
    src = parse_source(d.text.encode("utf-8"), d.path)
    pools = {"event": {t.event for t in d.transitions} | {"reject", "open"}, "state": set(d.states),
             "role": set(org.roles), "clock": {c.name for c in d.clocks}}
    errors = []
    for p in props:
        for kind, name, path in PATTERNS[p.pattern].refs(p.spec):
            if name not in pools[kind]:
                line, col = src.locate(["properties", p.id, p.pattern, *path])
                errors.append(DefinitionError(f"property {p.id}: unknown {kind} {name!r}", file=d.path, line=line,
                                              col=col, hint=did_you_mean(name, pools[kind])))
        if p.pattern == "response" and not errors:
            why = response_clock_problem(d, p.spec)
            if why:
                line, col = src.locate(["properties", p.id, p.pattern, "sla"])
                errors.append(DefinitionError(f"property {p.id} ({p.label_zh}): {why}", file=d.path, line=line,
                                              col=col, hint="the response must be timed by a declared SLA"))
    return errors


def verify(d: Definition, org: Org, catalog: Any, bound: int = DEFAULT_BOUND) -> Report:
    """Check every declared property of `d` within `bound` steps."""
    started = time.perf_counter()
    props = declared(d)
    errors = reference_errors(d, org, props)
    ex = Explorer(d, org, bound)
    findings = {p.id: Finding(p) for p in props}
    pending = {p.id: p for p in props} if not errors else {}

    def visit(node: Node) -> bool:
        for pid, p in list(pending.items()):
            for query, detail, probe in _queries(ex, p, node):
                model = trap_model(ex, node, query) if PATTERNS[p.pattern].special == "trap" \
                    else ex.check(node.pc + (query,))
                if model == "unknown":
                    findings[pid].status = "unknown"
                    continue
                if model is None:
                    continue
                assert not isinstance(model, str)
                moves = concretize(ex, node, model) + _probe_moves(ex, model, probe)
                result = replay(d, catalog, moves[:len(node.trace)], _confirm(ex, p, moves, probe))
                if result.ok:
                    findings[pid].status, findings[pid].moves, findings[pid].detail = "violated", moves, detail
                    del pending[pid]
                    break
                findings[pid].spurious.append(result.reason)
                if len(findings[pid].spurious) >= MAX_SPURIOUS:
                    del pending[pid]
                    break
        return bool(pending)

    if pending:
        ex.explore(visit)
    return Report(d, bound, list(findings.values()), list(ex.s.approximations), ex.stats.nodes,
                  ex.stats.solver_calls, time.perf_counter() - started, ex.stats.truncated, errors)


# -- queries per pattern -------------------------------------------------------------------------

def _queries(ex: Explorer, p: Declared, node: Node) -> list[tuple[Any, str, Any]]:
    """(violation condition, what it shows, probe) for this node."""
    pattern = PATTERNS[p.pattern]
    if pattern.special == "trap":
        exits = _trap_exits(ex, p, node)
        escape = p.spec.get("escape", [])
        return [] if exits is None else [(exits, f"no one can move the case on from {ex.d.label(node.state)}"
                                          + (f" (except by {', '.join(escape)})" if escape else ""), None)]
    if pattern.special == "exclusive":
        return _exclusive(ex, p, node)
    q = pattern.violation(ex, p.spec, node)
    return [] if q is None else [(q, "", None)]


def _exclusive(ex: Explorer, p: Declared, node: Node) -> list[tuple[Any, str, Any]]:
    cands = [t for t in ex.d.candidates(p.spec["event"], node.state) if not t.signoffs and not t.system]
    if len(cands) < 2:
        return []
    vars = ex.step_vars(node, cands, "probe")
    out = []
    for i, a in enumerate(cands):
        for b in cands[i + 1:]:
            ca, _, xa = ex.attempt(node, a, vars, vars.actor)
            cb, _, xb = ex.attempt(node, b, vars, vars.actor)
            q = z3.And(*vars.domain, ca, cb, *xa, *xb, ex.has_role(vars.actor, a.roles | b.roles))
            out.append((q, f"alternatives #{a.index + 1} and #{b.index + 1} of {p.spec['event']} "
                           f"(transitions {a.index + 1} and {b.index + 1}) are both enabled", (vars, a, b)))
    return out


def _trap_exits(ex: Explorer, p: Declared, node: Node) -> list[Any] | None:
    """The conditions under which each way on from this node is possible (None: nothing to check here)."""
    if ex.d.states[node.state].final:
        return None
    reads = _read_by_exits(ex, node.state)
    last = node.trace[-1]
    if last.kind in ("advance", "system") and last.source == last.dest and last.transition is not None \
            and not (_writes(last.transition) & (reads | {"*"})):
        return None      # a self-loop that changed nothing an exit reads: the node before covers this one
    escape = set(p.spec.get("escape", []))
    exits: list[Any] = []
    for event in ex.events_from(node.state):
        if event in escape:
            continue
        cands = [t for t in ex.d.candidates(event, node.state) if not t.signoffs]
        moving = [t for t in cands if t.to != node.state or _writes(t) & reads]
        if not moving:
            continue
        first = len(ex.s.created)
        vars = ex.step_vars(node, cands, f"exit_{event}")
        for cond, nxt in ex.fire(node, event, vars):
            if nxt.trace[-1].transition in moving:
                exits.append((z3.And(*vars.domain, cond), ex.s.created[first:]))
    for what, role, t in ex.sign_options(node):
        if what in escape:
            continue
        first = len(ex.s.created)
        vars = ex.step_vars(node, [], f"exit_{what}")
        cond, _ = ex.sign(node, what, role, t, vars)
        exits.append((z3.And(*vars.domain, cond), ex.s.created[first:]))
    return exits


def trap_model(ex: Explorer, node: Node, exits: list[Any]) -> Any:
    """Data reachable at node for which no exit is possible with any inputs (an ∃∀ query).

    The step's own variables (actor, time, inputs, over-approximated values) are
    universally quantified; z3 decides this for linear integer arithmetic. Returns a
    model, None (no trap) or "unknown".
    """
    blocked = [z3.ForAll(own, z3.Not(cond)) if own else z3.Not(cond) for cond, own in exits]
    model = ex.check(node.pc + tuple(blocked))
    if isinstance(model, str):
        ex.stats.unknown -= 1
        model = ex.check(node.pc + tuple(blocked), tactic="qsat")
    return model


def _writes(t: Any) -> set[str]:
    return set(t.accepts) | {f for f, _ in t.effects} | ({"*"} if t.decide else set())


def _read_by_exits(ex: Explorer, state: str) -> set[str]:
    names: set[str] = set()
    for t in ex.d.transitions_from(state):
        if t.to == state and not t.signoffs:
            continue
        names |= set(t.requires)
        for g in t.guards:
            names |= set(g.expr.names)
        for _, e in t.effects:
            names |= set(e.names)
    return names


def _probe_moves(ex: Explorer, model: Any, probe: Any) -> list[Move]:
    """The extra, not-performed move an `exclusive` finding is about."""
    if probe is None:
        return []
    vars, a, _ = probe
    from caseflow.verification.replay import _moment, _person, _value
    sets = {}
    for name, (given, term, kind) in {**{f: v for f, v in vars.sets.items() if f in a.accepts},
                                      **{i: v for i, v in vars.inputs.items() if i in a.inputs}}.items():
        if z3.is_true(model.eval(given, model_completion=True)):
            schema = ex.d.fields.get(name, {}) if name in vars.sets else a.inputs.get(name, {})
            sets[name] = _value(ex, model, term, kind, schema)
    return [Move("advance", a.event, _person(ex, model, vars.actor), _moment(model, vars.now), sets, None, a.to)]


def _confirm(ex: Explorer, p: Declared, moves: list[Move], probe: Any) -> Any:
    """What the replayed case must show for the violation to be real."""
    if p.pattern == "exclusive" and probe is not None:
        _, a, b = probe
        move = moves[-1]

        def both_pass(engine: Any, case_id: str) -> str | None:
            from caseflow.definition.evaluate import split_sets
            from caseflow.errors import TransitionRefused
            snap = engine.read_case(case_id)
            for t in (a, b):
                fields, inputs = split_sets(snap.definition, t, move.sets)
                try:
                    engine.decide(snap, t, {**snap.data, **fields}, inputs, move.actor, move.now)
                except TransitionRefused as exc:
                    return f"alternative #{t.index + 1} is refused: {exc}"
            return None
        return both_pass
    if p.pattern == "invariant":
        def breaks(engine: Any, case_id: str) -> str | None:
            from caseflow.definition.evaluate import activation, context, holds
            snap = engine.read_case(case_id)
            d = snap.definition
            compiled = d.env.compile(p.spec["expr"])
            act = activation(d, snap.data, {}, {}, moves[-1].now, "")
            ctx = context(d, snap.data, moves[-1].now, engine.working_days(d), engine.person_attr)
            return "the invariant holds in the replayed case" if holds(compiled, act, ctx) else None
        return breaks
    if p.pattern == "notifies":
        def notified(engine: Any, case_id: str) -> str | None:
            import sqlalchemy as sa

            from caseflow.store.tables import outbox
            with engine.store.read() as conn:
                n = conn.execute(sa.select(sa.func.count()).select_from(outbox).where(
                    outbox.c.case_id == case_id, outbox.c.role == p.spec["role"])).scalar_one()
            return f"{p.spec['role']} was notified in the replayed case" if n else None
        return notified
    return None
