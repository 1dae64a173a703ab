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
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from cel_expr_python import cel

from caseflow import values
from caseflow.definition.cel_errors import ExpressionError, ExpressionTypeError, _tname, compile_error
from caseflow.records import field, record

MAX_EXPR_CHARS = 2000

T = cel.Type


@record
class EvalContext:
    """What the built-in functions need that CEL cannot pass them."""

    tz: ZoneInfo
    now: datetime
    data: Mapping[str, Any]
    working_days_since: Callable[[datetime, datetime], int] | None = None
    person_attr: Callable[[str, str], Any] | None = None
    inputs: Mapping[str, Any] | None = None      # the event's inputs, for is_set('input.NAME')


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
    ctx = _ctx.get()
    if name.startswith("input."):            # was this event input given?
        return (ctx.inputs or {}).get(name.removeprefix("input.")) is not None
    return ctx.data.get(name) is not None


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
        self._cel: Any = None

    @property
    def _env(self) -> Any:
        """The CEL environment, made on first use: an unpickled definition (definition/cache.py) that
        `caseflow show` evaluates nothing of does not pay ~1 ms for it."""
        if self._cel is None:
            self._cel = cel.NewEnv(variables=self.variables, functions=_functions())
        return self._cel


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
        return Compiled(text, program, _names_in(text, self.variables), self)




def _names_in(text: str, variables: Mapping[str, Any]) -> frozenset[str]:
    """Which declared variables an expression mentions (to name unset fields)."""
    tokens = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?", text))
    tokens |= {t.split(".")[0] for t in tokens}
    return frozenset(t for t in tokens if t in variables)


@record(frozen=True)
class Compiled:
    """A checked expression. Its CEL program is rebuilt on first use after unpickling (definition cache)."""

    text: str
    program: Any
    names: frozenset[str]
    env: Environment | None = field(default=None, repr=False, compare=False)   # pickled: definition/cache.py

    def __reduce__(self) -> tuple[Any, ...]:
        return (Compiled, (self.text, None, self.names, self.env))

    def evaluate(self, activation: Mapping[str, Any], ctx: EvalContext) -> Any:
        """Evaluate and return a plain Python value; raise ExpressionError on any error.

        The program is given only the variables it mentions (`names`): the binding converts every
        value it is given, and a whole case's activation cost three times the evaluation. Should
        that fail, the whole activation decides, as it always did (the outcome and the message are
        the whole activation's)."""
        program = self.program
        if program is None:                         # unpickled: recompile the checked text once
            program = self.env._env.compile(self.text)  # type: ignore[union-attr]
            object.__setattr__(self, "program", program)
        token = _ctx.set(ctx)
        try:
            try:
                result = program.eval(data={n: activation[n] for n in self.names if n in activation})
            except Exception:  # noqa: BLE001 - decided again below on the whole activation
                result = None
            if result is None or result.type() == T.ERROR:
                try:
                    result = program.eval(data=activation)
                except Exception as exc:  # the binding raises for unconvertible inputs
                    raise ExpressionError(str(exc).splitlines()[0]) from None
        finally:
            _ctx.reset(token)
        if result.type() == T.ERROR:
            missing = sorted(n for n in self.names if n not in activation)
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
        return values.parse_datetime(value, _ctx_tz())      # a stored time without offset: the workflow's zone
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
