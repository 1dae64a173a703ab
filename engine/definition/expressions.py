"""CEL guards and effects: typed at load, evaluated fail-closed at run time.

We use CEL (cel-expr-python, Google's CEL-C++) because its compile step is a
real type checker: `ponts >= 1000` or `tier > 5` fails `caseflow validate`,
not a customer's case. CEL has no decimals, so money is an `int` in fen inside
expressions and `Decimal` yuan everywhere else; conversion happens here only.
Run-time errors come back from CEL as truthy ERROR values, so `evaluate` turns
them into `ExpressionError` and guards fail closed.
"""

from __future__ import annotations

import contextvars
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from cel_expr_python import cel

from caseflow import values

MAX_EXPR_CHARS = 2000

T = cel.Type
_ERR_RE = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*?)(?:\n|$)")


class ExpressionError(Exception):
    """An expression failed to compile or evaluate; line/col are within the expression."""

    def __init__(self, message: str, line: int = 1, col: int = 1, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.col, self.hint = message, line, col, hint


class ExpressionTypeError(ExpressionError):
    """The expression compiled but gives the wrong type (`got`, `want`: CEL type names)."""

    def __init__(self, got: str, want: str) -> None:
        super().__init__(f"expression is {got}, expected {want}")
        self.got, self.want = got, want


@dataclass
class EvalContext:
    """What the built-in functions need that CEL cannot pass them."""

    tz: ZoneInfo
    now: datetime
    data: Mapping[str, Any]
    working_days_since: Callable[[datetime, datetime], int] | None = None
    person_attr: Callable[[str, str], Any] | None = None


_ctx: contextvars.ContextVar[EvalContext] = contextvars.ContextVar("caseflow_eval")


def cel_type(schema: Mapping[str, Any]) -> cel.Type:
    """The CEL type of a field from its JSON Schema fragment."""
    kind = schema.get("type")
    if isinstance(kind, list):
        return T.DYN
    if kind == "string":
        return T.INT if schema.get("format") == "money" else (
            T.TIMESTAMP if schema.get("format") in ("date-time", "date") else T.STRING)
    if kind == "integer":
        return T.INT
    if kind == "boolean":
        return T.BOOL
    if kind == "number":
        return T.DOUBLE
    if kind == "array":
        items = schema.get("items", {})
        return T.List(T.STRING if items.get("type") == "string" and "format" not in items else T.DYN)
    if kind == "object":
        return T.Map(T.STRING, T.DYN)
    return T.DYN


def constant_type(value: Any) -> cel.Type:
    if isinstance(value, bool):
        return T.BOOL
    if isinstance(value, int):
        return T.INT
    if isinstance(value, str):
        return T.STRING
    if isinstance(value, dict):
        inner = {constant_type(v).name() for v in value.values()}
        return T.Map(T.STRING, constant_type(next(iter(value.values()))) if len(inner) == 1 else T.DYN)
    return T.DYN


def _yuan_int(x: int) -> int:
    return x * 100


def _yuan_str(s: str) -> int:
    return values.to_fen(values.parse_money(s))


def _local(ts: datetime) -> datetime:
    return ts.astimezone(_ctx.get().tz)


def _days_since(ts: datetime) -> int:
    return (_local(_ctx.get().now).date() - _local(ts).date()).days


def _working_days_since(ts: datetime) -> int:
    ctx = _ctx.get()
    if ctx.working_days_since is None:
        raise ValueError("this workflow has no calendar")
    return ctx.working_days_since(ts, ctx.now)


def _years_between(a: datetime, b: datetime) -> int:
    da, db = _local(a).date(), _local(b).date()
    return db.year - da.year - ((db.month, db.day) < (da.month, da.day))


def _add_months(ts: datetime, n: int) -> datetime:
    return values.add_months(ts, n, _ctx.get().tz)


def _person_attr(person: str, key: str) -> str:
    """An attribute of a person in org.yaml (e.g. employment), so rules need not retype it."""
    ctx = _ctx.get()
    value = ctx.person_attr(person, key) if ctx.person_attr else None
    if value is None:
        raise ValueError(f"person {person!r} has no {key!r} in org.yaml")
    return str(value)


def _is_set(name: str) -> bool:
    return _ctx.get().data.get(name) is not None


def _functions() -> list[cel.FunctionDecl]:
    Ov, F = cel.Overload, cel.FunctionDecl
    return [
        F("yuan", [Ov("yuan_int", T.INT, [T.INT], impl=_yuan_int),
                   Ov("yuan_string", T.INT, [T.STRING], impl=_yuan_str)]),
        F("days_since", [Ov("days_since_ts", T.INT, [T.TIMESTAMP], impl=_days_since)]),
        F("working_days_since", [Ov("wds_ts", T.INT, [T.TIMESTAMP], impl=_working_days_since)]),
        F("local_date", [Ov("local_date_ts", T.STRING, [T.TIMESTAMP],
                           impl=lambda ts: _local(ts).date().isoformat())]),
        F("years_between", [Ov("years_between_ts", T.INT, [T.TIMESTAMP, T.TIMESTAMP],
                              impl=_years_between)]),
        F("add_months", [Ov("add_months_ts", T.TIMESTAMP, [T.TIMESTAMP, T.INT], impl=_add_months)]),
        F("is_set", [Ov("is_set_string", T.BOOL, [T.STRING], impl=_is_set)]),
        F("person_attr", [Ov("person_attr_string_string", T.STRING, [T.STRING, T.STRING], impl=_person_attr)]),
    ]


class Environment:
    """A CEL environment for one workflow: its fields, inputs and constants."""

    def __init__(self, variables: Mapping[str, cel.Type]) -> None:
        self.variables = dict(variables)
        self._env = cel.NewEnv(variables=self.variables, functions=_functions())

    def compile(self, text: str, *, want: cel.Type | None = None) -> Compiled:
        if len(text) > MAX_EXPR_CHARS:
            raise ExpressionError(f"expression is {len(text):,} characters; the limit is {MAX_EXPR_CHARS:,}",
                                  hint="split it into several guards, or move the rules into a decision table")
        if not text.strip():
            raise ExpressionError("expression is empty", hint="write a condition such as is_set('field')")
        try:
            program = self._env.compile(text)
        except RuntimeError as exc:
            raise compile_error(str(exc), text, self.variables) from None
        got = program.return_type()
        if want is not None and want != T.DYN and got != want and got != T.DYN \
                and not want.is_assignable_from(got):
            raise ExpressionTypeError(_tname(got), _tname(want))
        return Compiled(text, program, _names_in(text, self.variables))


def _tname(t: cel.Type) -> str:
    return _plain_type(str(t.name()).lower())


def _plain_type(name: str) -> str:
    for long, short in (("google.protobuf.timestamp", "timestamp"), ("google.protobuf.duration", "duration"),
                        ("null_type", "null")):
        name = re.sub(re.escape(long), short, name, flags=re.IGNORECASE)
    return name


# -- compile errors in a designer's words ---------------------------------------------

_OPS = {"_>_": ">", "_<_": "<", "_>=_": ">=", "_<=_": "<=", "_==_": "==", "_!=_": "!=",
        "_+_": "+", "_-_": "-", "_*_": "*", "_/_": "/", "_%_": "%", "_&&_": "&&", "_||_": "||",
        "!_": "!", "-_": "-", "@in": "in", "_[_]": "[ ]", "_?_:_": "? :"}
_COMPARE = {">", "<", ">=", "<=", "==", "!="}
SIGNATURES = {
    "yuan": 'yuan(300) or yuan("12.50") → money',
    "days_since": "days_since(timestamp) → int",
    "working_days_since": "working_days_since(timestamp) → int",
    "local_date": "local_date(timestamp) → string",
    "years_between": "years_between(timestamp, timestamp) → int",
    "add_months": "add_months(timestamp, int) → timestamp",
    "is_set": "is_set('field') → bool",
    "size": "size(string | list | map) → int",
    "startsWith": "text.startsWith('A') → bool",
    "endsWith": "text.endsWith('A') → bool",
    "contains": "text.contains('A') → bool",
    "matches": "text.matches('^A[0-9]$') → bool",
    "timestamp": "timestamp('2025-01-01T00:00:00Z') → timestamp",
    "int": "int(value) → int",
    "string": "string(value) → string",
}
_SYNONYMS: dict[str, str | None] = {
    "len": "size", "length": "size", "startswith": "startsWith", "endswith": "endsWith",
    "isset": "is_set", "defined": "is_set", "lower": None, "upper": None, "strip": None}
_WORDS = {"None": "CEL writes null; to test whether a field is set, write is_set('field')",
          "True": "CEL writes true in lower case", "False": "CEL writes false in lower case"}
_AND_OR = "CEL writes && for and, || for or, ! for not"
_SPLIT = "split it into several guards, or move the rules into a decision table"


def compile_error(raw: str, text: str = "", variables: Mapping[str, Any] | None = None) -> ExpressionError:
    """CEL's compiler message → ExpressionError(message, line, col, hint) a designer can act on."""
    lowered = raw.lower()
    if "recursion" in lowered and ("limit" in lowered or "depth" in lowered):
        return ExpressionError("expression is nested too deeply (CEL allows 32 levels)", hint=_SPLIT)
    match = _ERR_RE.search(raw)
    if not match:
        return ExpressionError(raw.strip().splitlines()[0] if raw.strip() else "invalid expression")
    line, col, msg = int(match.group(1)), int(match.group(2)), match.group(3)
    msg = msg.replace(" (in container '')", "").strip()
    lines = text.split("\n")
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    if msg.startswith("Syntax error: "):
        return _syntax_error(msg.removeprefix("Syntax error: "), line, col, here)
    if msg.startswith("undeclared reference to "):
        return _unknown_name(msg.split("'")[1], line, col, here, variables or {})
    overload = re.match(r"found no matching overload for '([^']+)' applied to '\((.*)\)'", msg)
    if overload:
        return _no_overload(overload.group(1), _split_types(overload.group(2)), line, col)
    select = re.match(r"expression of type '([^']+)' cannot be the operand of a select operation", msg)
    if select:
        return ExpressionError(f"a {_plain_type(select.group(1))} has no fields to read with '.'", line, col,
                               "only maps (constants) and input have fields; check the name before the dot")
    if msg.startswith("reserved identifier: "):
        word = msg.split(": ", 1)[1]
        return ExpressionError(f"'{word}' is a reserved word in CEL", line, col,
                               "write a choice as condition ? a : b" if word in ("if", "else") else None)
    if "has() argument" in msg:
        return ExpressionError("has() needs a field selection", line, col,
                               "to test whether a field is set, write is_set('field')")
    return ExpressionError(msg, line, col)


def _syntax_error(msg: str, line: int, col: int, here: str) -> ExpressionError:
    found = re.search(r"(?:input|at:?) '(.*?)'(?: expecting|$)", msg)
    tok = (found.group(1) if found else "").strip()
    word_before = re.search(r"([A-Za-z_]+)\s*$", here[:max(col - 1, 0)])

    def err(message: str, hint: str | None = None, at: int = col) -> ExpressionError:
        return ExpressionError(f"syntax error: {message}", line, at, hint)

    if tok.lower() in ("and", "or", "not"):
        return err(f"unexpected '{tok}'", _AND_OR)
    if word_before and word_before.group(1).lower() == "not" and "extraneous input" in msg:
        return err("unexpected 'not'", _AND_OR, word_before.start(1) + 1)
    if "token recognition error" in msg:
        if tok in ("=>", "=<"):
            return err(f"unexpected '{tok}'", f"write {tok[::-1]}")
        if tok.startswith("="):
            return err("unexpected '='", "compare with ==; effects are written under set:, not with =")
        if tok in ("&", "|"):
            return err(f"unexpected '{tok}'", f"CEL writes {tok * 2}")
        if tok[:1] in ("'", '"'):
            return err("text in quotes is never closed", f"add the closing {tok[0]}")
        if tok == "#":
            return err("unexpected '#'", "CEL has no # comments; put the comment on a YAML line of its own")
        return err(f"unexpected '{tok}'")
    if tok == "<EOF>" and "missing ')'" in msg:
        return err("missing ')'", "a '(' is never closed")
    if tok == "<EOF>":
        return err("the expression ends too early", "something is missing after the last operator")
    if tok:
        plain_word = re.fullmatch(r"[A-Za-z_]\w*", tok) is not None
        return err(f"unexpected '{tok}'", "text goes in quotes, e.g. 'major'" if plain_word else None)
    return err(msg.split(" expecting")[0])


def _unknown_name(name: str, line: int, col: int, here: str, variables: Mapping[str, Any]) -> ExpressionError:
    # CEL points at the '.' of a selection or the '(' of a call: point at the name instead.
    pattern = r"(?<![\w.])" + r"\s*\.\s*".join(map(re.escape, name.split("."))) + r"\b"
    found = [m for m in re.finditer(pattern, here) if m.start() < col]
    if not found:    # a method: CEL names only the method
        found = [m for m in re.finditer(r"\b" + re.escape(name) + r"\b", here) if m.start() < col]
    start, end = (found[-1].start() + 1, found[-1].end()) if found else (col, col - 1)
    if here[end:].lstrip().startswith("("):
        member = here[:start - 1].rstrip().endswith(".")
        known = sorted(SIGNATURES)
        alt = _SYNONYMS.get(name, "") or ""
        close = [alt] if alt else difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if name in _SYNONYMS and not alt:
            hint = f"CEL has no {name}(); available: " + ", ".join(known)
        elif close:
            hint = f"did you mean {close[0]}()? usage: {SIGNATURES[close[0]]}"
        else:
            hint = "available: " + ", ".join(known)
        return ExpressionError(f"unknown {'method' if member else 'function'} '{name}()'", line, start, hint)
    if name.startswith("input."):
        inputs = [v.removeprefix("input.") for v in variables if v.startswith("input.")]
        return ExpressionError(f"unknown input {name!r}", line, start,
                               _did_you_mean(name.removeprefix("input."), inputs, "input.")
                               or "declare it under the transition's input:")
    if name in _WORDS:
        return ExpressionError(f"unknown name {name!r}", line, start, _WORDS[name])
    names = [v for v in variables if not v.startswith("input.")] + ["now", "actor", "true", "false", "null"]
    return ExpressionError(f"unknown name {name!r}", line, start,
                           _did_you_mean(name, names, cutoff=0.7)
                           or f"if it is text, write it in quotes: \"'{name}'\"; fields are declared under"
                              " data.properties")


def _did_you_mean(name: str, known: list[str], prefix: str = "", cutoff: float = 0.6) -> str | None:
    close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    return f"did you mean '{prefix}{close[0]}'?" if close else None


def _split_types(args: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in args:
        if ch == "," and depth == 0:
            out.append(_plain_type(cur.strip()))
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    return out + ([_plain_type(cur.strip())] if cur.strip() else [])


def _no_overload(fn: str, types: list[str], line: int, col: int) -> ExpressionError:
    op, kinds = _OPS.get(fn), set(types)
    hint = None
    if {"int", "double"} <= kinds:
        hint = 'expressions have no decimals: money is written yuan(300) or yuan("12.50"), counts as integers'
    elif "string" in kinds and kinds & {"int", "double"}:
        hint = "text and numbers do not mix: write text in quotes like 'major', numbers bare like 2"
    elif "null" in kinds:
        hint = "to test whether a field is set, write is_set('field')"
    elif "timestamp" in kinds and kinds & {"int", "string"}:
        hint = "compare times with times (now, a date-time field); days_since(t) gives whole days"
    elif "bool" in kinds and len(kinds) > 1 and op in _COMPARE:
        hint = "use a bool directly (valid, !valid)"
    if op in _COMPARE:
        return ExpressionError(f"'{op}' cannot compare {types[0]} with {types[-1]}", line, col, hint)
    if op == "!":
        return ExpressionError(f"'!' needs true/false, got {types[0]}", line, col, hint)
    if op in ("&&", "||"):
        return ExpressionError(f"'{op}' needs true/false on each side, got {' and '.join(types)}", line, col,
                               hint or "make each side a condition, e.g. points > 0")
    if op == "? :":
        return ExpressionError(f"the two branches of '? :' differ: {types[1]} and {types[2]}", line, col,
                               hint or "both branches must give the same type")
    if op == "in":
        return ExpressionError(f"'in' cannot look for {types[0]} in {types[-1]}", line, col,
                               hint or "write value in ['a', 'b']")
    if op == "[ ]":
        return ExpressionError(f"cannot index {types[0]} with {types[-1]}", line, col, hint)
    if op is not None:
        rest = f" and {types[1]}" if len(types) > 1 else ""
        return ExpressionError(f"'{op}' cannot be applied to {types[0]}{rest}", line, col, hint)
    sig = SIGNATURES.get(fn)
    return ExpressionError(f"{fn}() cannot take ({', '.join(types)})", line, col, f"usage: {sig}" if sig else hint)


def _names_in(text: str, variables: Mapping[str, Any]) -> frozenset[str]:
    """Which declared variables an expression mentions (to name unset fields)."""
    tokens = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?", text))
    tokens |= {t.split(".")[0] for t in tokens}
    return frozenset(t for t in tokens if t in variables)


@dataclass(frozen=True)
class Compiled:
    text: str
    program: Any
    names: frozenset[str]

    def evaluate(self, activation: Mapping[str, Any], ctx: EvalContext) -> Any:
        """Evaluate and return a plain Python value; raise ExpressionError on any error."""
        missing = sorted(n for n in self.names if n not in activation)
        token = _ctx.set(ctx)
        try:
            result = self.program.eval(data=activation)
        except Exception as exc:  # the binding raises for unconvertible inputs
            raise ExpressionError(str(exc).splitlines()[0]) from None
        finally:
            _ctx.reset(token)
        if result.type() == T.ERROR:
            if missing:
                raise ExpressionError(f"field {missing[0]} is not set")
            raise ExpressionError(str(result.value()).splitlines()[0])
        return result.plain_value()


def to_cel(value: Any, schema: Mapping[str, Any]) -> Any:
    """Stored (JSON) value → CEL input value."""
    if value is None:
        return None
    fmt = schema.get("format")
    if fmt == "money":
        return values.to_fen(Decimal(value))
    if fmt == "date-time":
        return values.parse_datetime(value)
    if fmt == "date":
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=_ctx_tz())
    return value


def _ctx_tz() -> ZoneInfo:
    ctx = _ctx.get(None)
    return ctx.tz if ctx else ZoneInfo("Asia/Shanghai")


def from_cel(value: Any, schema: Mapping[str, Any], tz: ZoneInfo) -> Any:
    """CEL result → stored (JSON) value for a field of this schema."""
    fmt = schema.get("format")
    if fmt == "money":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ExpressionError(f"money effect produced {type(value).__name__}, expected int fen")
        return values.format_money(values.from_fen(value))
    if fmt == "date-time" and isinstance(value, datetime):
        return values.format_datetime(value)
    if fmt == "date" and isinstance(value, datetime):
        return value.astimezone(tz).date().isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return _plain(value, tz)


def _plain(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return values.format_datetime(value)
    if isinstance(value, list):
        return [_plain(v, tz) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, tz) for k, v in value.items()}
    return value


__all__ = ["Environment", "Compiled", "EvalContext", "ExpressionError", "ExpressionTypeError",
           "compile_error", "cel_type",
           "constant_type", "to_cel", "from_cel", "InvalidOperation"]
