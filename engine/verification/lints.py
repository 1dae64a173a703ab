"""Lints from the same translation: money against bare numbers, literals outside enums, constant guards.

- `repair_cost < 5000` on a money field compares fen: 5000 is 50.00 yuan. Error.
- `defect == 'leek'` where the field's enum is [leak, …] can never be true. Error.
- A guard no case data in the schema's domains (and the engine's value rules,
  e.g. money ≥ 0) can make true is an error; one that is always true is a
  warning (it is redundant, not wrong).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import z3

from caseflow.definition.lint import did_you_mean
from caseflow.definition.model import Definition, Org
from caseflow.definition.source import Source, parse_source
from caseflow.errors import DefinitionError
from caseflow.verification.cel_ast import Node, Unsupported, parse
from caseflow.verification.explorer import Explorer, Field, StepVars
from caseflow.verification.translate import field_kind

_COMPARE = {"<", "<=", ">", ">=", "==", "!="}


class Warning_(DefinitionError):
    """A finding that does not make the file invalid (printed as `warning:`)."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: warning: {self.message}"
        return f"{where} ({self.hint})" if self.hint else where


def expressions(src: Source) -> Iterator[tuple[list[Any], str, int | None]]:
    """(YAML path, text, transition index or None) of every expression in the file."""
    doc = src.data if isinstance(src.data, dict) else {}
    for i, t in enumerate(doc.get("transitions") or []):
        yield from _guards(t.get("when"), ["transitions", i, "when"], i)
        for f, text in (t.get("set") or {}).items():
            yield ["transitions", i, "set", f], text, None
        for j, a in enumerate(t.get("actions") or []):
            if "when" in a:
                yield ["transitions", i, "actions", j, "when"], a["when"], None
    for sid, s in (doc.get("states") or {}).items():
        for j, a in enumerate((s or {}).get("on_enter") or []):
            if "when" in a:
                yield ["states", sid, "on_enter", j, "when"], a["when"], None
    for name, table in (doc.get("decisions") or {}).items():
        for j, r in enumerate(table.get("rules") or []):
            yield ["decisions", name, "rules", j, "when"], r["when"], None


def _guards(raw: Any, path: list[Any], i: int) -> Iterator[tuple[list[Any], str, int | None]]:
    if raw is None:
        return
    if isinstance(raw, str):
        yield path, raw, i
        return
    for j, item in enumerate(raw):
        if isinstance(item, str):
            yield path + [j], item, i
        else:
            yield path + [j, "expr"], item["expr"], i


def check(d: Definition, org: Org) -> list[DefinitionError]:
    src = parse_source(d.text.encode("utf-8"), d.path)
    out: list[DefinitionError] = []
    ex = Explorer(d, org)
    for path, text, index in expressions(src):
        try:
            tree = parse(text)
        except Unsupported:
            continue
        inputs = d.transitions[path[1]].inputs if path[0] == "transitions" else {}
        for message, needle, hint in _literal_problems(d, tree, inputs):
            line, col = _at(src, path, text, needle)
            out.append(DefinitionError(message, file=d.path, line=line, col=col, hint=hint))
        if index is not None:
            constant = _constant(ex, d, d.transitions[index], text)
            if constant is not None:
                line, col = src.position_in(path, 1, 1)
                what = f"guard {text!r} of {d.event_label(d.transitions[index].event)}"
                if constant:
                    out.append(Warning_(f"{what} is always true for the data schema and the engine's value rules",
                                        file=d.path, line=line, col=col, hint="it can be removed"))
                else:
                    out.append(DefinitionError(f"{what} can never be true for any case data",
                                               file=d.path, line=line, col=col,
                                               hint="check the field names, values and units"))
    return out


def _at(src: Source, path: list[Any], text: str, needle: str) -> tuple[int, int]:
    found = re.search(re.escape(needle), text)
    before = text[:found.start()] if found else ""
    return src.position_in(path, before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)


def _kind_of(d: Definition, inputs: Any, n: Node) -> tuple[str, Any] | None:
    if n.kind != "name":
        return None
    name = str(n.value)
    schema = inputs.get(name.removeprefix("input."), None) if name.startswith("input.") else d.fields.get(name)
    return (field_kind(schema), schema) if schema is not None else None


def _literal_problems(d: Definition, n: Node, inputs: Any) -> Iterator[tuple[str, str, str | None]]:
    if n.kind == "binary" and (n.value in _COMPARE or n.value == "in"):
        a, b = n.args
        for side, other in ((a, b), (b, a)):
            known = _kind_of(d, inputs, side)
            if known is None:
                continue
            kind, schema = known
            if kind == "money" and n.value in _COMPARE and other.kind == "lit" \
                    and isinstance(other.value, int) and not isinstance(other.value, bool) and other.value != 0:
                yuan = f"{other.value / 100:.2f}"
                yield (f"'{side.value} {n.value} {other.value}' compares money with the bare number {other.value}, "
                       f"which is {other.value} fen = {yuan} yuan", str(other.value),
                       f"write yuan(\"{yuan}\") if {yuan} yuan is meant, or yuan({other.value}) for {other.value} yuan")
            if "enum" in schema:
                allowed = [str(v) for v in schema["enum"]]
                literals = [other] if other.kind == "lit" else list(other.args) if other.kind == "list" else []
                for lit in literals:
                    if lit.kind == "lit" and isinstance(lit.value, str) and lit.value not in allowed:
                        yield (f"{lit.value!r} is not one of {side.value}'s values ({', '.join(allowed)}), "
                               f"so this comparison is always {'true' if n.value == '!=' else 'false'}",
                               lit.value, did_you_mean(lit.value, allowed))
    for child in n.args:
        yield from _literal_problems(d, child, inputs)


def _constant(ex: Explorer, d: Definition, t: Any, text: str) -> bool | None:
    """True/False if the guard has that value for every data the domains allow; None otherwise."""
    before = len(ex.s.approximations)
    data: dict[str, Field] = {}
    pc: list[Any] = []
    required = set(d.data_schema.get("required", []))
    for name, schema in d.fields.items():
        kind = field_kind(schema)
        term, dom = ex.fresh_value(kind, schema, name)
        given = z3.BoolVal(True) if name in required else ex.s.fresh("bool", f"set_{name}")
        pc.append(z3.Implies(given, dom))
        data[name] = Field(kind, term, given)
    vars = ex.step_vars(ex.initial(), [t], "lint")
    pc += vars.domain[2:]                   # not the two bounds on time between steps
    pc += [data[f].set for f in t.requires if f in data]
    pc += [vars.inputs[i][0] for i in t.input_required if i in vars.inputs]
    if not t.system:
        pc.append(ex.has_role(vars.actor, t.roles))
    tr = ex.translator(data, StepVars(vars.actor, vars.now, vars.sets, vars.inputs), t.inputs)
    given_all = [g for g, _, _ in vars.inputs.values()]
    cond = ex.holds(text, tr)
    if len(ex.s.approximations) > before:
        return None
    if ex.check(pc + [*given_all, z3.Not(cond)]) is None:
        return True
    if ex.check(pc + [cond]) is None:
        return False
    return None
