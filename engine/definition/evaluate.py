"""Evaluating a transition's rules against a case: inputs, requires, guards, effects.

Pure functions over (definition, data, input, now): no database, no state
change. The runtime calls them on a snapshot and only then writes, so a
refusal can always explain itself and never leaves anything behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from caseflow.datafile import check_strings
from caseflow.definition.expressions import Compiled, EvalContext, ExpressionError, from_cel, to_cel
from caseflow.definition.lint import did_you_mean
from caseflow.definition.model import Definition, Transition
from caseflow.errors import UsageError
from caseflow.values import FORMATS, ValueProblem, format_datetime, format_money, parse_input, parse_money

if TYPE_CHECKING:       # jsonschema is imported when data is first validated, not by `show`
    from jsonschema import Draft202012Validator

_validators: dict[tuple[int, str | None], Draft202012Validator] = {}


def split_sets(definition: Definition, t: Transition | None, sets: Mapping[str, str]) -> tuple[dict, dict]:
    """Operator `--set` strings → (field updates, event inputs), typed by their schemas."""
    fields, inputs = {}, {}
    accepts = set(definition.open_accepts) if t is None else set(t.accepts)   # open: deny by default
    for key, raw in sets.items():
        if key in accepts:
            fields[key] = _parse(key, raw, definition.fields[key], definition)
        elif t is not None and key in t.inputs:
            inputs[key] = _parse(key, raw, t.inputs[key], definition)
        else:
            allowed = sorted(accepts | set(t.inputs if t else ()))
            what = f"event {t.event!r}" if t else f"opening a {definition.workflow} case"
            hint = did_you_mean(key, allowed) or (f"it accepts: {', '.join(allowed)}" if allowed
                                                  else "it accepts no --set values")
            if t is None and allowed and "it accepts" not in hint:   # opening: always name what it accepts
                hint += f"; it accepts: {', '.join(allowed)}"
            raise UsageError(f"--set {key}: not accepted by {what} ({hint})")
    return fields, inputs


def typed_data(definition: Definition, data: Mapping[str, Any], source: str = "--data") -> dict[str, Any]:
    """Typed values (a `--data` file, a JSON Lines import row) by the rules `--set` follows: money
    normalised (`1,000.50` → "1000.50", `-0` → "0.00"; `12,50` refused), a date-time without an offset
    read in the workflow's zone, dates inside the supported years, every text within the size limit."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        schema = definition.fields.get(key, {})
        typed = schema.get("type") == "string" and schema.get("format") in ("money", "date-time", "date")
        try:
            if isinstance(value, str) and typed:
                value = parse_input(value, schema, definition.tz)
            elif typed and schema.get("format") == "money" and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                value = format_money(parse_money(str(value)))     # a JSON number, written as the amount
            else:
                check_strings({key: value}, "")
        except ValueProblem as exc:
            raise UsageError(f"{source} {key}: {_unechoed(str(exc), value, schema)}") from None
        out[key] = value
    return out


def _unechoed(message: str, raw: Any, schema: Mapping[str, Any]) -> str:
    """A refusal names the field, never a personal value."""
    if "x-pii" in schema and isinstance(raw, str):
        for shown in (repr(raw), repr(raw.strip())):
            message = message.replace(shown, "the value")
    return message


def _parse(key: str, raw: str, schema: Mapping[str, Any], definition: Definition) -> Any:
    try:
        value = parse_input(raw, schema, definition.tz)
    except ValueProblem as exc:
        raise UsageError(f"--set {key}: {_unechoed(str(exc), raw, schema)}") from None
    if "enum" in schema and value not in schema["enum"]:
        hint = did_you_mean(str(value), [str(v) for v in schema["enum"]])
        raise UsageError(f"--set {key}: {value!r} is not one of {', '.join(map(str, schema['enum']))}"
                         + (f" ({hint})" if hint else ""))
    return value


def activation(definition: Definition, data: Mapping[str, Any], inputs: Mapping[str, Any],
               input_schemas: Mapping[str, Mapping[str, Any]], now: datetime, actor: str,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CEL variables for one evaluation; unset fields are left out (they fail closed)."""
    act: dict[str, Any] = dict(definition.constants)
    for name, schema in _converted(definition):
        value = data.get(name)
        if value is not None:
            act[name] = value if schema is None else to_cel(value, schema)
    for name, value in inputs.items():
        if value is not None:
            act[f"input.{name}"] = to_cel(value, input_schemas.get(name, {}))
    act["now"], act["actor"] = now, actor
    act.update(extra or {})
    return act


_CONVERTED = ("money", "date-time", "date")      # the formats to_cel converts; other values go in as stored


@lru_cache(maxsize=64)
def _converted(definition: Definition) -> tuple[tuple[str, Mapping[str, Any] | None], ...]:
    """Each field with its schema if to_cel converts its values, else None."""
    return tuple((name, schema if schema.get("format") in _CONVERTED else None)
                 for name, schema in definition.fields.items())


def context(definition: Definition, data: Mapping[str, Any], now: datetime,
            working_days: Callable[[datetime, datetime], int] | None,
            person_attr: Callable[[str, str], Any] | None = None,
            inputs: Mapping[str, Any] | None = None) -> EvalContext:
    return EvalContext(definition.tz, now, data, working_days, person_attr, inputs)


def scope(definition: Definition, data: Mapping[str, Any], now: datetime, actor: str, *,
          inputs: Mapping[str, Any] | None = None, input_schemas: Mapping[str, Mapping[str, Any]] | None = None,
          working_days: Callable[[datetime, datetime], int] | None = None,
          person_attr: Callable[[str, str], Any] | None = None) -> tuple[dict[str, Any], EvalContext]:
    """The one builder of what an expression sees: (CEL activation, evaluation context).

    Guards, effects, decision tables, action and clock `when`s and `show`'s
    possible-events all evaluate through it (the runtime fills `working_days`
    and `person_attr` from the catalog: `Engine.scope`).
    """
    return (activation(definition, data, inputs or {}, input_schemas or {}, now, actor),
            context(definition, data, now, working_days, person_attr, inputs))


def missing_fields(t: Transition, data: Mapping[str, Any], inputs: Mapping[str, Any]) -> list[str]:
    gone = [f for f in t.requires if data.get(f) in (None, "")]
    gone += [f"input {i}" for i in t.input_required if inputs.get(i) in (None, "")]
    return gone


def failed_guard(t: Transition, act: Mapping[str, Any], ctx: EvalContext) -> str | None:
    """The first guard that does not hold, described for the operator; None if all hold."""
    failing = failing_guard(t, act, ctx)
    return failing[1] if failing else None


def failing_guard(t: Transition, act: Mapping[str, Any], ctx: EvalContext) -> tuple[str, str] | None:
    """(CEL text, description for the operator) of the first guard that does not hold; None if all hold."""
    for guard in t.guards:
        why = guard.message or f"guard {guard.expr.text!r} is false"
        try:
            ok = guard.expr.evaluate(act, ctx)
        except ExpressionError as exc:
            return guard.expr.text, (f"{why} ({exc.message})" if guard.message
                                     else f"guard {guard.expr.text!r} failed: {exc.message}")
        if ok is not True:
            return guard.expr.text, why
    return None


def holds(expr: Compiled | None, act: Mapping[str, Any], ctx: EvalContext) -> bool:
    """A side condition (action `when`, clock `when`): fails closed."""
    if expr is None:
        return True
    try:
        return expr.evaluate(act, ctx) is True
    except ExpressionError:
        return False


def apply_effects(definition: Definition, t: Transition, act: Mapping[str, Any],
                  ctx: EvalContext) -> dict[str, Any]:
    """Evaluate every `set` on the pre-event data (simultaneous assignment)."""
    out = {}
    for field_name, expr in t.effects:
        try:
            value = expr.evaluate(act, ctx)
            out[field_name] = from_cel(value, definition.fields[field_name], definition.tz)
        except ExpressionError as exc:
            raise ValueProblem(f"effect {field_name} = {expr.text!r} failed: {exc.message}") from None
    return out


def evaluate_decision(definition: Definition, name: str, act: Mapping[str, Any], ctx: EvalContext,
                      count: int | None) -> dict[str, Any] | None:
    """First matching rule's outcome (hit policy FIRST), or None."""
    table = definition.decisions[name]
    scope = dict(act)
    if count is not None:
        scope["count"] = count
    for expr, outcome in table.rules:
        if holds(expr, scope, ctx):
            return dict(outcome)
    return None


_SIMPLE_KEYS = {"type", "properties", "required", "title", "description", "$schema", "$comment"}


def schema_problem(definition: Definition, data: Mapping[str, Any],
                   before: Mapping[str, Any] | None = None) -> str | None:
    """None if the data fits the workflow's data schema, else one line saying where not.

    Given the data `before` a change, and a schema whose rules are per field (type,
    properties, required — no cross-field keywords), only the changed fields are
    validated: the rest were valid when stored. This halves the cost of an advance.
    """
    present = {k: v for k, v in data.items() if v is not None}
    missing = [name for name in definition.data_schema.get("required", []) if name not in present]
    if missing:                     # all of them in one refusal, not one per try
        names = ", ".join(repr(name) for name in missing)
        return f"{names} {'is a required property' if len(missing) == 1 else 'are required properties'}"
    simple = _is_simple(definition)
    if before is None or not simple:
        if simple:
            quick = _quick_table(definition)
            for k, v in present.items():
                q = quick.get(k)
                if q is None or not q(v):
                    break
            else:
                return None                     # (a new case's data: every field surely valid)
        return _first_problem(_validator(definition, None), present, ())
    for name, value in present.items():
        if before.get(name) != value:
            if _surely_valid(definition, name, value):
                continue                        # jsonschema would find nothing
            problem = _first_problem(_validator(definition, name), value, (name,))
            if problem:
                return problem
    return None


# A field schema of these keywords only is checked by a plain function first (most are `type`, `enum`,
# `format`, and labels); only a value it does not accept goes to jsonschema, which has the last word and
# writes the message. The function accepts nothing jsonschema would refuse.
_ANNOTATIONS = {"label_zh", "title", "description", "default", "examples", "$comment", "deprecated",
                "readOnly", "writeOnly"}
_QUICK_KEYWORDS = {"type", "enum", "const", "format", "maxLength", "minLength", "pattern", "minimum", "maximum",
                   "exclusiveMinimum", "exclusiveMaximum"}
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_quick: dict[tuple[str, str], Callable[[Any], bool] | None] = {}


def _surely_valid(definition: Definition, field: str, value: Any) -> bool:
    quick = _quick_check(definition, field)
    return quick is not None and quick(value)


def _quick_check(definition: Definition, field: str) -> Callable[[Any], bool] | None:
    key = (definition.sha256, field)
    if key not in _quick:
        schema = definition.data_schema.get("properties", {}).get(field)
        _quick[key] = _quick_of(schema) if isinstance(schema, Mapping) else None
    return _quick[key]


@lru_cache(maxsize=64)
def _quick_table(definition: Definition) -> dict[str, Callable[[Any], bool] | None]:
    """`_quick_check` of every field of the data schema."""
    return {f: _quick_check(definition, f) for f in definition.data_schema.get("properties", {})}


def _quick_of(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """A check that accepts a value only if every keyword of `schema` surely does; None if `schema` has
    a keyword it does not know, or a `format` that is not caseflow's own (values.FORMATS: jsonschema
    runs the same functions; its other formats are left to it, so a step that checks only fields of
    caseflow's formats does not import jsonschema)."""
    if any(k not in _QUICK_KEYWORDS and k not in _ANNOTATIONS and not k.startswith("x-") for k in schema):
        return None
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if kinds is not None and (not isinstance(kinds, list) or any(k not in _TYPES for k in kinds)):
        return None
    tests: list[Callable[[Any], bool]] = []
    if kinds is not None:
        one_of = tuple(_TYPES[k] for k in kinds)
        tests.append(one_of[0] if len(one_of) == 1 else lambda v: any(t(v) for t in one_of))
    if "enum" in schema or "const" in schema:
        allowed = list(schema["enum"]) if "enum" in schema else [schema["const"]]
        if not all(type(e) in (str, int, float, bool, type(None)) for e in allowed):
            return None
        tests.append(_one_of_values(allowed))
    if "format" in schema:
        if schema["format"] not in FORMATS:
            return None
        tests.append(FORMATS[schema["format"]])
    lengths: tuple[tuple[str, Callable[[Any, Any], bool]], ...] = (
        ("maxLength", lambda v, n: len(v) <= n), ("minLength", lambda v, n: len(v) >= n))
    for word, holds in lengths:
        if word in schema:
            tests.append(_bounded(_TYPES["string"], holds, schema[word]))
    if "pattern" in schema:
        rx = re.compile(schema["pattern"])
        tests.append(lambda v: not isinstance(v, str) or rx.search(v) is not None)
    bounds: tuple[tuple[str, Callable[[Any, Any], bool]], ...] = (
        ("minimum", lambda v, n: v >= n), ("maximum", lambda v, n: v <= n),
        ("exclusiveMinimum", lambda v, n: v > n), ("exclusiveMaximum", lambda v, n: v < n))
    for word, holds in bounds:
        if word in schema:
            tests.append(_bounded(_TYPES["number"], holds, schema[word]))
    return _all_of(tests) if tests else (lambda v: True)


def _all_of(tests: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """`all(t(v) for t in tests)`, as a chain of `and`s (a check runs for every field of every step)."""
    first, rest = tests[0], tests[1:]
    if not rest:
        return first
    then = _all_of(rest)
    return lambda v: first(v) and then(v)


def _one_of_values(allowed: list[Any]) -> Callable[[Any], bool]:
    """`enum`/`const` of scalars: the value is one of them, of the same type (1 is not True, nor 1.0).
    A lookup by (type, value); NaN equals nothing, so it is left out."""
    known = frozenset((type(e), e) for e in allowed if e == e)
    return lambda v: type(v) in _SCALARS and (type(v), v) in known


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _bounded(applies: Callable[[Any], bool], holds: Callable[[Any, Any], bool], bound: Any) -> Callable[[Any], bool]:
    """A bound keyword: it holds, or the value is not of the kind it applies to (jsonschema ignores those)."""
    return lambda v: not applies(v) or holds(v, bound)


@lru_cache(maxsize=64)
def _is_simple(definition: Definition) -> bool:
    schema = definition.data_schema
    return set(schema) <= _SIMPLE_KEYS and schema.get("type", "object") == "object" \
        and not any("$ref" in str(v) for v in schema.get("properties", {}).values())


def _validator(definition: Definition, field: str | None) -> Draft202012Validator:
    key = (id(definition), field)
    if key not in _validators:
        schema = definition.data_schema if field is None else \
            definition.data_schema.get("properties", {}).get(field, {})
        from jsonschema import Draft202012Validator

        from caseflow.definition.schema import format_checker
        _validators[key] = Draft202012Validator(schema, format_checker=format_checker())
    return _validators[key]


def _first_problem(validator: Draft202012Validator, instance: Any, prefix: tuple[str, ...]) -> str | None:
    from jsonschema.exceptions import best_match
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    where = ".".join(str(p) for p in (*prefix, *error.absolute_path))
    message = _without_value(error)
    return f"{where}: {message}" if where else message


_KEYWORD_TEXT = {"type": "must be of type {}", "enum": "must be one of {}", "const": "must be {}",
                 "maxLength": "is longer than {} characters", "minLength": "is shorter than {} characters",
                 "pattern": "does not match the pattern {}", "format": "is not a valid {}",
                 "minimum": "must be at least {}", "maximum": "must be at most {}",
                 "exclusiveMinimum": "must be more than {}", "exclusiveMaximum": "must be less than {}",
                 "maxItems": "has more than {} items", "minItems": "has fewer than {} items"}


def _without_value(error: Any) -> str:
    """jsonschema's message echoes the value ('13955556666 is not of type ...'); ours names the rule.
    Refusals go to the screen and the attempts log: they must not carry personal data."""
    if error.validator in ("required", "additionalProperties", "dependentRequired"):
        return str(error.message)                   # these name fields, not values
    template = _KEYWORD_TEXT.get(str(error.validator))
    if template is None:
        return f"does not fit the data schema ({error.validator})"
    rule = error.validator_value
    if isinstance(rule, list):
        rule = ", ".join(map(str, rule))
    return template.format(rule)


def stamp(now: datetime) -> str:
    return format_datetime(now)
