"""Bounded symbolic exploration of one workflow definition, as the engine would run it.

A symbolic node is (state, sign-offs given so far, one z3 term and one `is_set`
flag per data field, the path condition, the trace of steps). Breadth-first
search from every possible opening gives the shortest event sequences first.
Each step is one thing a person (or a timer) can do in the engine:

- advance EVENT: the first alternative (in file order) whose requires, guards,
  effects and data schema pass fires; accepted fields and event inputs are fresh
  variables over their domains, the actor is any org.yaml holder of its roles;
- sign / reject: the next sign-off role (sequential) or any remaining one,
  signed by a holder who (with distinct_people) has not signed yet;
- a system event (timers, SLA breaches, fire actions) whenever its guard holds
  — time is not modelled, so timers may fire at any moment (over-approximation).

The bound: every sequence of at most `bound` steps in which no (state, number of
sign-offs) occurs more than `visits` times. Within it the search is exhaustive.

The API is reusable: `fire(node, event, vars)` takes the step's variables from
the caller, so two definitions can be stepped with shared inputs (`caseflow diff`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import z3

from caseflow.definition.model import Definition, Org, Transition
from caseflow.verification.literals import SYSTEM, prime_strings
from caseflow.verification.nodes import Field, Node, Stats, Step, StepVars
from caseflow.verification.translate import Symbols, Translator, Val, builtin_functions, domain_constraint, field_kind

_QF = z3.Then("simplify", "solve-eqs", "smt")
_X = z3.Int("placeholder")            # stands for the person in prebuilt role and attribute terms
DEFAULT_BOUND = 12
VISITS = 2
SOLVER_MS = 5000
OPEN_FROM = 1767225600                  # 2026-01-01T00:00:00Z: counterexamples open in 2026
OPEN_UNTIL = OPEN_FROM + 365 * 86400
STEP_SECONDS = 30 * 86400               # at most 30 days between two steps of a counterexample


class Explorer:
    def __init__(self, definition: Definition, org: Org, bound: int = DEFAULT_BOUND, visits: int = VISITS,
                 symbols: Symbols | None = None) -> None:
        self.d, self.org, self.bound, self.visits = definition, org, bound, visits
        self.s = symbols or Symbols()
        self.stats = Stats()
        prime_strings(self.s, definition, org)
        self._role_tables: dict[frozenset[str], Any] = {}
        self._attr_tables: dict[str, tuple[Any, Any]] = {}
        self.functions = builtin_functions(self._person_attr)
        self.schemas: dict[str, Mapping[str, Any]] = dict(definition.fields)

    # -- strings and people -------------------------------------------------------------------
    def person_code(self, pid: str) -> int:
        return self.s.code(pid)

    def holders(self, roles: Any) -> list[int]:
        return [self.person_code(p.id) for p in self.org.people.values() if p.roles & set(roles)]

    def has_role(self, actor: Any, roles: Any) -> Any:
        """actor holds one of roles: a disjunction over holders, built once per role set and
        instantiated by substitution (arrays would be cheaper to build but slow down ∀ queries)."""
        key = frozenset(roles)
        if key not in self._role_tables:
            codes = self.holders(roles)
            self._role_tables[key] = z3.Or(*[_X == c for c in codes]) if codes else z3.BoolVal(False)
        return z3.substitute(self._role_tables[key], (_X, actor))

    def _person_attr(self, tr: Translator, who: Val, key: str) -> Val:
        """An org.yaml attribute of a person: a choice over people, built once per key."""
        if key not in self._attr_tables:
            pairs = [(self.person_code(p.id), ({"name": p.name} | dict(p.attributes)).get(key))
                     for p in self.org.people.values()]
            pairs = [(c, v) for c, v in pairs if v is not None]
            if not pairs:
                self._attr_tables[key] = (z3.IntVal(0), z3.BoolVal(False))
            else:
                term: Any = z3.IntVal(self.s.code(str(pairs[-1][1])))
                for c, v in reversed(pairs[:-1]):
                    term = z3.If(_X == c, self.s.code(str(v)), term)
                self._attr_tables[key] = (term, z3.Or(*[_X == c for c, _ in pairs]))
        term, known = self._attr_tables[key]
        return Val("str", z3.substitute(term, (_X, who.term)),
                   z3.And(who.okb, z3.substitute(known, (_X, who.term))))

    # -- translation --------------------------------------------------------------------------
    def translator(self, data: Mapping[str, Field], vars: StepVars | None,
                   input_schemas: Mapping[str, Any] | None = None, extra: Mapping[str, Val] | None = None
                   ) -> Translator:
        constants = self.d.constants

        def lookup(name: str) -> Val | None:
            if extra and name in extra:
                return extra[name]
            if name in data:
                f = data[name]
                schema = self.schemas.get(name, {})
                kind = "int" if f.kind == "money" else f.kind
                return Val(kind, f.term, f.set, tuple(map(str, schema["enum"])) if "enum" in schema else None)
            if name in constants:
                return Translator(self.s, lambda _: None, {}).lit(constants[name])
            if name.startswith("input.") and vars is not None:
                short = name.removeprefix("input.")
                if short in vars.inputs and (input_schemas is None or short in input_schemas):
                    given, value, kind = vars.inputs[short]
                    schema = (input_schemas or {}).get(short, {})
                    return Val("int" if kind == "money" else kind, value, given,
                               tuple(map(str, schema["enum"])) if "enum" in schema else None)
                return Val("int", z3.IntVal(0), z3.BoolVal(False))
            if name == "now" and vars is not None:
                return Val("ts", vars.now)
            if name == "actor" and vars is not None:
                return Val("str", vars.actor)
            return None
        return Translator(self.s, lookup, self.functions)

    def holds(self, text: str, tr: Translator) -> Any:
        v = tr.translate(text)
        if v.kind == "opaque":
            return v.term > 0 if v.term.sort() == z3.IntSort() else v.term
        if v.kind != "bool":
            return z3.BoolVal(False)
        return z3.And(v.okb, v.term)

    # -- nodes ----------------------------------------------------------------------------------
    def fresh_value(self, kind: str, schema: Mapping[str, Any], hint: str) -> tuple[Any, Any]:
        term = self.s.fresh("bool" if kind == "bool" else ("real" if kind == "real" else "int"), hint)
        return term, domain_constraint(kind, term, schema, self.s)

    def initial(self) -> Node:
        """Every possible opening: any data the schema allows, opened by a holder of open_roles."""
        pc: list[Any] = []
        data: dict[str, Field] = {}
        required = set(self.d.data_schema.get("required", []))
        sets: dict[str, tuple[Any, Any, str]] = {}
        for name, schema in self.d.fields.items():
            kind = field_kind(schema)
            term, dom = self.fresh_value(kind, schema, name)
            if name not in required and name not in self.d.open_accepts:
                data[name] = Field(kind, term, z3.BoolVal(False))     # opening is deny-by-default (open_accepts)
                continue
            given = z3.BoolVal(True) if name in required else self.s.fresh("bool", f"set_{name}")
            pc.append(z3.Implies(given, dom) if name not in required else dom)
            data[name] = Field(kind, term, given)
            sets[name] = (given, term, kind)
        actor = self.s.fresh("int", "actor")
        pc.append(self.has_role(actor, self.d.open_roles))
        now = self.s.fresh("int", "now")
        pc.append(z3.And(now >= OPEN_FROM, now < OPEN_UNTIL))     # readable times; time is not modelled
        step = Step("open", "open", None, None, self.d.initial, actor, None, now, sets, {})
        return Node(self.d.initial, data, (), tuple(pc), (step,), {(self.d.initial, 0): 1}, now)

    def step_vars(self, node: Node, transitions: list[Transition], tag: str) -> StepVars:
        """Fresh variables for one step covering every alternative in `transitions`."""
        vars = StepVars(self.s.fresh("int", f"actor@{tag}"), self.s.fresh("int", f"now@{tag}"))
        vars.domain.append(vars.now >= node.now)
        vars.domain.append(vars.now <= node.now + STEP_SECONDS)
        for t in transitions:
            for f in t.accepts:
                if f not in vars.sets and f in self.d.fields:
                    schema = self.d.fields[f]
                    kind = field_kind(schema)
                    term, dom = self.fresh_value(kind, schema, f"{f}@{tag}")
                    given = self.s.fresh("bool", f"given_{f}@{tag}")
                    vars.sets[f] = (given, term, kind)
                    vars.domain.append(z3.Implies(given, dom))
            for i, schema in t.inputs.items():
                if i not in vars.inputs:
                    kind = field_kind(schema)
                    term, dom = self.fresh_value(kind, schema, f"input.{i}@{tag}")
                    given = self.s.fresh("bool", f"given_input.{i}@{tag}")
                    vars.inputs[i] = (given, term, kind)
                    vars.domain.append(z3.Implies(given, dom))
        return vars

    def attempt(self, node: Node, t: Transition, vars: StepVars, actor: Any,
                data: Mapping[str, Field] | None = None) -> tuple[Any, dict[str, Field], list[Any]]:
        """(may fire, data after, extra constraints) for transition t from node with these inputs."""
        base = dict(node.data if data is None else data)
        conds: list[Any] = []
        for f, (given, value, _kind) in vars.sets.items():
            if f in t.accepts:
                old = base[f]
                base[f] = Field(old.kind, z3.If(given, value, old.term), z3.Or(given, old.set))
            else:
                conds.append(z3.Not(given))              # the engine refuses --set of a field not accepted
        for i, (given, _, _) in vars.inputs.items():
            if i not in t.inputs:
                conds.append(z3.Not(given))
        empty = self.s.code("")
        for f in t.requires:
            fld = base.get(f)
            if fld is None:
                conds.append(z3.BoolVal(False))
                continue
            conds.append(fld.set)
            if fld.kind == "str":
                conds.append(fld.term != empty)
        for i in t.input_required:
            given, value, kind = vars.inputs.get(i, (z3.BoolVal(False), None, ""))
            conds.append(given)
            if kind == "str":
                conds.append(value != empty)
        for name in t.not_by:                    # conflict of interest: not the person named in this field
            for fld in (node.data.get(name) if data is None else data.get(name), base.get(name)):
                if fld is not None:
                    conds.append(z3.Implies(fld.set, actor != fld.term))
        scope_vars = StepVars(actor, vars.now, vars.sets, vars.inputs)
        tr = self.translator(base, scope_vars, t.inputs)
        for g in t.guards:
            conds.append(self.holds(g.expr.text, tr))
        after = dict(base)
        extra: list[Any] = []
        for f, compiled in t.effects:
            v = tr.translate(compiled.text)
            schema = self.d.fields[f]
            kind = field_kind(schema)
            if v.kind == "opaque" or v.kind == "map" or v.kind == "list":
                term, dom = self.fresh_value(kind, schema, f"{f}=approx")
                self.s.approximate(compiled.text, f"effect on {f} is not modelled")
                extra.append(dom)
                after[f] = Field(kind, term, z3.BoolVal(True))
                continue
            conds.append(v.okb)
            conds.append(domain_constraint(kind, v.term, schema, self.s))   # the schema check after effects
            after[f] = Field(kind, v.term, z3.BoolVal(True))
        for name in t.decide:
            self._decision(name, after, extra)
        return z3.And(*conds) if conds else z3.BoolVal(True), after, extra

    def _decision(self, name: str, data: dict[str, Field], extra: list[Any]) -> None:
        """A decision table's outcome: any of its outcome values (count is not modelled)."""
        table = self.d.decisions[name]
        fields: dict[str, set[str]] = {}
        for _, outcome in table.rules:
            for k, v in outcome.items():
                fields.setdefault(k, set()).add(str(v))
        self.s.approximate(f"decision {name}", "outcome chosen among its rules' outcomes (counts not modelled)")
        for f, options in fields.items():
            if f not in data:
                continue
            old = data[f]
            term = self.s.fresh("int", f"{f}=decision")
            keep = self.s.fresh("bool", f"{f}=kept")
            extra.append(z3.If(keep, term == old.term, z3.Or(*[term == self.s.code(o) for o in sorted(options)])))
            data[f] = Field(old.kind, term, z3.If(keep, old.set, z3.BoolVal(True)))

    # -- successors -------------------------------------------------------------------------------
    def events_from(self, state: str) -> list[str]:
        seen: list[str] = []
        for t in self.d.transitions_from(state):
            if t.event not in seen:
                seen.append(t.event)
        return seen

    def fire(self, node: Node, event: str, vars: StepVars) -> list[tuple[Any, Node]]:
        """Each way `advance EVENT` (or a system event) can fire: (condition, next node)."""
        out = []
        cands = self.d.candidates(event, node.state)
        people = [t for t in cands if not t.system and not t.signoffs]
        for t in cands:
            if t.signoffs:
                continue
            if t.system:
                actor = z3.IntVal(self.s.code(SYSTEM))
                cond, after, extra = self.attempt(node, t, vars, actor)
                earlier = [u for u in cands[:cands.index(t)] if u.system]
                prio = [z3.Not(self.attempt(node, u, vars, actor)[0]) for u in earlier]
                kind = "system"
            else:
                actor = vars.actor
                cond, after, extra = self.attempt(node, t, vars, actor)
                earlier = [u for u in people[:people.index(t)]]
                prio = [z3.Implies(self.has_role(actor, u.roles), z3.Not(self.attempt(node, u, vars, actor)[0]))
                        for u in earlier]
                prio.append(self.has_role(actor, t.roles))
                kind = "advance"
            full = z3.And(cond, *prio)          # may fire; `extra` only shapes the data afterwards
            step = Step(kind, event, t, node.state, t.to, None if t.system else actor, None, vars.now,
                        {f: v for f, v in vars.sets.items() if f in t.accepts},
                        {i: v for i, v in vars.inputs.items() if i in t.inputs})
            out.append((full, self._next(node, t.to, after, (), step, list(vars.domain) + [full, *extra])))
        return out

    def sign_options(self, node: Node) -> list[tuple[str, str, Transition]]:
        """(sign|reject, role, transition) a person could do now."""
        t = self.d.signoff_transition(node.state)
        if t is None or t.signoffs is None:
            return []
        done = [r for r, _ in node.signoffs]
        remaining = [r for r in t.signoffs.roles if r not in done]
        eligible = remaining[:1] if t.signoffs.order == "sequential" else remaining
        out = [("sign", r, t) for r in eligible]
        if t.signoffs.reject_to:
            out += [("reject", r, t) for r in eligible]
        return out

    def sign(self, node: Node, what: str, role: str, t: Transition, vars: StepVars) -> tuple[Any, Node]:
        assert t.signoffs is not None
        signer = vars.actor
        conds = [self.has_role(signer, [role])]
        if t.signoffs.distinct_people:
            conds += [signer != by for _, by in node.signoffs]
        for name in t.not_by:
            if name in node.data:
                conds.append(z3.Implies(node.data[name].set, signer != node.data[name].term))
        done = [r for r, _ in node.signoffs]
        remaining = [r for r in t.signoffs.roles if r not in done]
        empty = StepVars(signer, vars.now)
        if what == "reject":
            step = Step("reject", t.event, t, node.state, t.signoffs.reject_to or node.state, signer, role,
                        vars.now, {}, {})
            cond = z3.And(*conds)
            return cond, self._next(node, step.dest, dict(node.data), (), step, list(vars.domain) + [cond])
        ok, after, extra = self.attempt(node, t, empty, signer)
        cond = z3.And(*conds, ok)
        signatures = node.signoffs + ((role, signer),)
        if len(remaining) > 1:
            step = Step("sign", t.event, t, node.state, node.state, signer, role, vars.now, {}, {})
            return cond, self._next(node, node.state, dict(node.data), signatures, step, list(vars.domain) + [cond])
        step = Step("sign", t.event, t, node.state, t.to, signer, role, vars.now, {}, {}, round=signatures)
        return cond, self._next(node, t.to, after, (), step, list(vars.domain) + [cond, *extra])

    def _next(self, node: Node, state: str, data: Mapping[str, Field], signoffs: tuple[tuple[str, Any], ...],
              step: Step, constraints: list[Any]) -> Node:
        key = (state, len(signoffs))
        visits = dict(node.visits)
        visits[key] = visits.get(key, 0) + 1
        return Node(state, data, signoffs, node.pc + tuple(constraints), node.trace + (step,), visits, step.now)

    def successors(self, node: Node) -> Iterator[Node]:
        """Every next node (not yet checked for satisfiability)."""
        if self.d.states[node.state].final:
            return
        for event in self.events_from(node.state):
            cands = self.d.candidates(event, node.state)
            if all(t.signoffs for t in cands):
                continue
            vars = self.step_vars(node, cands, event)
            for _, nxt in self.fire(node, event, vars):
                yield nxt
        for what, role, t in self.sign_options(node):
            vars = self.step_vars(node, [], what)
            yield self.sign(node, what, role, t, vars)[1]

    # -- solving ----------------------------------------------------------------------------------
    def check(self, constraints: Any, tactic: str | None = None) -> z3.ModelRef | None | str:
        """A model if satisfiable, None if not, "unknown" if the solver gave up.

        A fresh solver per query: z3's incremental (push/pop) mode skips the
        preprocessing that makes these small queries fast (measured 4-10x).
        """
        self.stats.solver_calls += 1
        quantified = any(z3.is_quantifier(c) for c in constraints)
        if tactic:
            solver = z3.Tactic(tactic).solver()
        elif quantified:
            solver = z3.Solver()
        else:
            solver = _QF.solver()
        solver.set("timeout", SOLVER_MS)
        solver.add(*constraints)
        result = solver.check()
        if result == z3.sat:
            return solver.model()
        if result == z3.unknown:
            self.stats.unknown += 1
            return "unknown"
        return None

    def explore(self, visit: Callable[[Node], bool], limit: int = 20000) -> Stats:
        """Breadth-first over satisfiable nodes; `visit` returns False to stop early."""
        queue: deque[Node] = deque([self.initial()])
        while queue:
            node = queue.popleft()
            if self.check(node.pc) is None:
                continue
            self.stats.nodes += 1
            if not visit(node):
                break
            if self.stats.nodes >= limit:
                self.stats.truncated = True
                break
            if node.depth >= self.bound:
                continue
            for nxt in self.successors(node):
                if max(nxt.visits.values()) <= self.visits:
                    queue.append(nxt)
        return self.stats
