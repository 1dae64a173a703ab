"""CEL trees → z3 terms, with CEL's error semantics and the engine's value rules.

Each translated expression is a `Val`: a z3 term plus `ok`, the condition under
which evaluating it raises no error. Reading an unset field is an error (guards
fail closed) unless `&&`, `||` or `? :` make it irrelevant, exactly as CEL's
commutative logic does. Value kinds:

- int   money (integer fen, ≥ 0 by the engine's value rules) and integers
- bool
- str   text as an integer code: every string the definition mentions (enum
        values, literals, people ids, attribute values) has a code; a free text
        field may also hold codes beyond the table ("some other text")
- ts    times as integer seconds (UTC)
- real  JSON numbers
- map   a constant mapping (from `constants:`), indexed by literals or enums

What cannot be translated (date arithmetic, regexes, lists of data) becomes a
fresh unconstrained value — an over-approximation — and is recorded with its
expression so the report can name it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import z3

from caseflow.verification.cel_ast import Node, Unsupported, parse

MONEY_MAX_FEN = 100_000_000_000_000          # values.MONEY_MAX (1e12 yuan) in fen
TS_MIN = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp())
TS_MAX = int(datetime(2999, 12, 31, tzinfo=UTC).timestamp())


@dataclass
class Val:
    kind: str                              # int | bool | str | ts | real | map | list | opaque
    term: Any                              # z3 term, or dict/list for map/list
    ok: Any = True                         # z3 Bool: evaluates without error
    domain: tuple[str, ...] | None = None  # for str: the enum it is drawn from, if any

    @property
    def okb(self) -> Any:
        return z3.BoolVal(True) if self.ok is True else self.ok


def field_kind(schema: Mapping[str, Any]) -> str:
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "string":
        if fmt == "money":
            return "money"
        if fmt in ("date-time", "date"):
            return "ts"
        return "str"
    return {"integer": "int", "boolean": "bool", "number": "real"}.get(str(kind), "opaque")


@dataclass
class Symbols:
    """Shared per verification run: the string table and fresh-variable factory."""

    strings: list[str] = field(default_factory=list)
    approximations: list[tuple[str, str]] = field(default_factory=list)   # (expression, why)
    counter: int = 0
    created: list[Any] = field(default_factory=list)
    lint_notes: list[tuple[str, str]] = field(default_factory=list)

    def code(self, text: str) -> int:
        if text not in self.strings:
            self.strings.append(text)
        return self.strings.index(text)

    def fresh(self, kind: str, hint: str) -> Any:
        """A new variable (never reused: the name carries a counter); every one is logged in `created`."""
        self.counter += 1
        name = f"{hint}!{self.counter}"
        var = z3.Bool(name) if kind == "bool" else (z3.Real(name) if kind == "real" else z3.Int(name))
        self.created.append(var)
        return var

    def approximate(self, expr: str, why: str) -> None:
        if (expr, why) not in self.approximations:
            self.approximations.append((expr, why))

    def text_of(self, code: int) -> str:
        return self.strings[code] if 0 <= code < len(self.strings) else f"文本{code}"


def domain_constraint(kind: str, term: Any, schema: Mapping[str, Any], symbols: Symbols) -> Any:
    """What the data schema and the engine's value rules allow for one value."""
    if kind == "money":
        return z3.And(term >= 0, term < MONEY_MAX_FEN)
    if kind == "int":
        parts = [term > -(2**63), term < 2**63]
        if "minimum" in schema:
            parts.append(term >= int(schema["minimum"]))
        if "maximum" in schema:
            parts.append(term <= int(schema["maximum"]))
        return z3.And(*parts)
    if kind == "ts":
        return z3.And(term >= TS_MIN, term <= TS_MAX)
    if kind == "str":
        if "enum" in schema:
            return z3.Or(*[term == symbols.code(str(v)) for v in schema["enum"]])
        return term >= 0
    return z3.BoolVal(True)


Lookup = Callable[[str], Val | None]


class Translator:
    """Translate one expression against a scope (fields, inputs, constants, actor, now)."""

    def __init__(self, symbols: Symbols, lookup: Lookup, functions: Mapping[str, Callable[..., Val]],
                 text: str = "") -> None:
        self.s, self.lookup, self.functions, self.text = symbols, lookup, functions, text

    def translate(self, text: str) -> Val:
        self.text = text
        try:
            return self.node(parse(text))
        except Unsupported as exc:
            self.s.approximate(text, str(exc))
            return Val("opaque", self.s.fresh("int", "opaque"), True)

    # -- helpers ---------------------------------------------------------------------------
    def _fresh(self, kind: str, why: str) -> Val:
        self.s.approximate(self.text, why)
        z3kind = "bool" if kind == "bool" else ("real" if kind == "real" else "int")
        return Val(kind, self.s.fresh(z3kind, "approx"), True)

    def lit(self, value: Any) -> Val:
        if isinstance(value, bool):
            return Val("bool", z3.BoolVal(value))
        if isinstance(value, int):
            return Val("int", z3.IntVal(value))
        if isinstance(value, float):
            return Val("real", z3.RealVal(value))
        if isinstance(value, str):
            return Val("str", z3.IntVal(self.s.code(value)))
        if isinstance(value, dict):
            return Val("map", {k: self.lit(v) for k, v in value.items()})
        if isinstance(value, list):
            return Val("list", [self.lit(v) for v in value])
        raise Unsupported(f"literal {value!r}")

    def node(self, n: Node) -> Val:
        if n.kind == "lit":
            if n.value is None:
                raise Unsupported("null")
            return self.lit(n.value)
        if n.kind == "name":
            found = self.lookup(n.value)
            if found is None:
                raise Unsupported(f"name {n.value}")
            return found
        if n.kind == "list":
            return Val("list", [self.node(a) for a in n.args])
        if n.kind == "unary":
            inner = self.node(n.args[0])
            if n.value == "!":
                self._want(inner, "bool")
                return Val("bool", z3.Not(inner.term), inner.ok)
            self._want(inner, "int", "real")
            return Val(inner.kind, -inner.term, inner.ok)
        if n.kind == "cond":
            test, yes, no = (self.node(a) for a in n.args)
            self._want(test, "bool")
            if yes.kind == "map" or no.kind == "map":
                raise Unsupported("a choice between mappings")
            kind = yes.kind if yes.kind != "opaque" else no.kind
            ok = z3.And(test.okb, z3.If(test.term, yes.okb, no.okb))
            return Val(kind, z3.If(test.term, yes.term, no.term), ok, yes.domain or no.domain)
        if n.kind == "binary":
            return self.binary(n)
        if n.kind == "index":
            return self.index(self.node(n.args[0]), self.node(n.args[1]))
        if n.kind == "call":
            fn = self.functions.get(n.value)
            if fn is None:
                return self._fresh(_RESULT_KIND.get(n.value, "int"), f"{n.value}() is not modelled")
            return fn(self, n)
        if n.kind == "method":
            return self.method(n)
        raise Unsupported(n.kind)

    def _want(self, v: Val, *kinds: str) -> None:
        if v.kind not in kinds and v.kind != "opaque":
            raise Unsupported(f"{v.kind} where {'/'.join(kinds)} expected")

    def binary(self, n: Node) -> Val:
        op = n.value
        a, b = self.node(n.args[0]), self.node(n.args[1])
        if op in ("&&", "||"):
            self._want(a, "bool")
            self._want(b, "bool")
            if op == "&&":
                term = z3.And(a.term, b.term)
                # false && error = false; error && false = false (CEL's commutative logic)
                ok = z3.Or(z3.And(a.okb, b.okb), z3.And(a.okb, z3.Not(a.term)), z3.And(b.okb, z3.Not(b.term)))
            else:
                term = z3.Or(a.term, b.term)
                ok = z3.Or(z3.And(a.okb, b.okb), z3.And(a.okb, a.term), z3.And(b.okb, b.term))
            return Val("bool", term, ok)
        ok = _and(a.ok, b.ok)
        if op == "in":
            if b.kind == "list":
                return Val("bool", z3.Or(*[a.term == item.term for item in b.term]) if b.term else
                           z3.BoolVal(False), _and(ok, *[i.ok for i in b.term]))
            if b.kind == "map":
                return Val("bool", self._key_in(a, b.term), ok)
            raise Unsupported("'in' on data")
        if a.kind == "map" or b.kind == "map" or a.kind == "list" or b.kind == "list":
            raise Unsupported(f"'{op}' on a collection")
        if op in ("==", "!="):
            term = a.term == b.term if _same_sort(a, b) else z3.BoolVal(False)
            return Val("bool", term if op == "==" else z3.Not(term), ok)
        if op in ("<", "<=", ">", ">="):
            if a.kind == "str" or b.kind == "str":
                return self._fresh("bool", "text ordering is not modelled")
            term = {"<": a.term < b.term, "<=": a.term <= b.term, ">": a.term > b.term, ">=": a.term >= b.term}[op]
            return Val("bool", term, ok)
        if a.kind == "str" or b.kind == "str":
            return self._fresh("str", "text concatenation is not modelled")
        kind = "real" if "real" in (a.kind, b.kind) else ("ts" if "ts" in (a.kind, b.kind) else "int")
        if op == "+":
            return Val(kind, a.term + b.term, ok)
        if op == "-":
            return Val(kind, a.term - b.term, ok)
        if op == "*":
            return Val(kind, _mul(a.term, b.term), ok)
        if op in ("/", "%"):
            nonzero = b.term != 0
            if kind == "real":
                return Val(kind, a.term / b.term, _and(ok, nonzero))
            # CEL truncates toward zero; z3 div/mod are Euclidean: correct for a ≥ 0 < b, which the
            # translation of money and counts gives; otherwise fix the sign explicitly.
            q = z3.If(a.term >= 0, _div(a.term, b.term), -_div(-a.term, b.term))
            if op == "/":
                return Val(kind, q, _and(ok, nonzero))
            return Val(kind, a.term - _mul(b.term, q), _and(ok, nonzero))
        raise Unsupported(f"operator {op}")

    def _key_in(self, key: Val, mapping: dict[str, Val]) -> Any:
        return z3.Or(*[key.term == self.s.code(k) for k in mapping]) if mapping else z3.BoolVal(False)

    def index(self, base: Val, key: Val) -> Val:
        if base.kind == "map":
            if key.kind != "str":
                raise Unsupported("map index that is not text")
            items = list(base.term.items())
            if not items:
                raise Unsupported("empty map")
            kinds = {v.kind for _, v in items}
            if len(kinds) != 1 or "map" in kinds:
                raise Unsupported("mixed map values")
            found = self._key_in(key, base.term)
            term = items[-1][1].term
            for k, v in reversed(items[:-1]):
                term = z3.If(key.term == self.s.code(k), v.term, term)
            return Val(items[0][1].kind, term, _and(key.ok, found))
        if base.kind == "list":
            raise Unsupported("list index")
        return self._fresh("opaque", "indexing data is not modelled")

    def method(self, n: Node) -> Val:
        recv = self.node(n.args[0])
        args = [self.node(a) for a in n.args[1:]]
        name = n.value
        if name in ("startsWith", "endsWith", "contains") and recv.kind == "str" and len(args) == 1 \
                and args[0].kind == "str" and z3.is_int_value(args[0].term):
            needle = self.s.text_of(args[0].term.as_long())
            test = {"startsWith": str.startswith, "endsWith": str.endswith,
                    "contains": lambda s, x: x in s}[name]
            known = [i for i, s in enumerate(self.s.strings) if test(s, needle)]
            exact = z3.Or(*[recv.term == i for i in known]) if known else z3.BoolVal(False)
            if recv.domain is not None:
                return Val("bool", exact, recv.ok)
            other = self._fresh("bool", f"{name}() on free text is not modelled").term
            return Val("bool", z3.Or(exact, z3.And(recv.term >= len(self.s.strings), other)), recv.ok)
        kind = {"size": "int", "matches": "bool"}.get(name, "opaque")
        return self._fresh(kind, f".{name}() is not modelled")


_RESULT_KIND = {"days_since": "int", "working_days_since": "int", "years_between": "int",
                "add_months": "ts", "local_date": "str", "timestamp": "ts", "duration": "int",
                "matches": "bool", "int": "int", "string": "str"}


def _and(*oks: Any) -> Any:
    real = [o for o in oks if o is not True]
    return True if not real else (real[0] if len(real) == 1 else z3.And(*real))


def _same_sort(a: Val, b: Val) -> bool:
    try:
        return bool(a.term.sort() == b.term.sort())
    except AttributeError:
        return False


def _mul(a: Any, b: Any) -> Any:
    """Multiply, pushing the product into choices between constants (keeps arithmetic linear)."""
    if z3.is_app_of(b, z3.Z3_OP_ITE) and not z3.is_int_value(a):
        return z3.If(b.arg(0), _mul(a, b.arg(1)), _mul(a, b.arg(2)))
    if z3.is_app_of(a, z3.Z3_OP_ITE) and not z3.is_int_value(b):
        return z3.If(a.arg(0), _mul(a.arg(1), b), _mul(a.arg(2), b))
    return a * b


def _div(a: Any, b: Any) -> Any:
    if z3.is_app_of(b, z3.Z3_OP_ITE):
        return z3.If(b.arg(0), _div(a, b.arg(1)), _div(a, b.arg(2)))
    return a / b


def builtin_functions(person_attr: Callable[[Translator, Val, str], Val]) -> dict[str, Callable[..., Val]]:
    """The engine's CEL functions the verifier models exactly."""

    def yuan(tr: Translator, n: Node) -> Val:
        arg = tr.node(n.args[0])
        if arg.kind == "int":
            return Val("int", _mul(arg.term, z3.IntVal(100)), arg.ok)
        if arg.kind == "str" and z3.is_int_value(arg.term):
            from caseflow import values
            return Val("int", z3.IntVal(values.to_fen(values.parse_money(tr.s.text_of(arg.term.as_long())))))
        raise Unsupported("yuan() of data")

    def is_set(tr: Translator, n: Node) -> Val:
        arg = n.args[0]
        if arg.kind != "lit" or not isinstance(arg.value, str):
            raise Unsupported("is_set() of a computed name")
        found = tr.lookup(arg.value)
        if found is None:
            return Val("bool", z3.BoolVal(False))
        return Val("bool", found.okb)

    def size(tr: Translator, n: Node) -> Val:
        arg = tr.node(n.args[0])
        if arg.kind == "str":
            empty = z3.IntVal(tr.s.code(""))
            n_ = tr._fresh("int", "size() of text").term
            return Val("int", z3.If(arg.term == empty, 0, z3.If(n_ >= 1, n_, 1)), arg.ok)
        return tr._fresh("int", "size() of a collection")

    def attr(tr: Translator, n: Node) -> Val:
        who, key = tr.node(n.args[0]), n.args[1]
        if key.kind != "lit" or not isinstance(key.value, str):
            raise Unsupported("person_attr() with a computed key")
        return person_attr(tr, who, key.value)

    return {"yuan": yuan, "is_set": is_set, "size": size, "person_attr": attr}
