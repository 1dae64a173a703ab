"""The quick field check before jsonschema (definition/evaluate.py): it may send a valid value on to
jsonschema, but it must never accept a value jsonschema refuses — a step would store invalid data."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from caseflow.definition.evaluate import _quick_of
from caseflow.definition.schema import format_checker

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000),
                    st.floats(-1000, 1000, allow_nan=False), st.text(max_size=8),
                    st.sampled_from(["12.50", "2025-01-24T17:00:00Z", "2025-01-24", "1,000.00", "x" * 12]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.text(max_size=2), SCALARS, max_size=2))
TYPES = st.sampled_from(["string", "integer", "number", "boolean", "null", "array", "object"])


@st.composite
def field_schemas(draw: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"label_zh": "字段", "x-pii": "name"} if draw(st.booleans()) else {}
    if draw(st.booleans()):
        schema["type"] = draw(st.one_of(TYPES, st.lists(TYPES, min_size=1, max_size=3, unique=True)))
    if draw(st.booleans()):
        schema["enum"] = draw(st.lists(SCALARS, min_size=1, max_size=4))
    if draw(st.booleans()):
        schema["format"] = draw(st.sampled_from(["money", "date-time", "date", "email"]))
    for word in ("maxLength", "minLength"):
        if draw(st.booleans()):
            schema[word] = draw(st.integers(0, 10))
    for word in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if draw(st.booleans()):
            schema[word] = draw(st.integers(-100, 100))
    if draw(st.booleans()):
        schema["pattern"] = draw(st.sampled_from(["^[0-9]+$", "a", "^.{2,}$"]))
    return schema


@settings(max_examples=1500, deadline=None)
@given(field_schemas(), VALUES)
def test_the_quick_check_accepts_only_what_jsonschema_accepts(schema: dict[str, Any], value: Any) -> None:
    checker = format_checker()
    quick = _quick_of(schema)
    if schema.get("format") == "email":           # not caseflow's own format: left to jsonschema
        assert quick is None
        return
    assert quick is not None
    valid = not list(Draft202012Validator(schema, format_checker=checker).iter_errors(value))
    if quick(value):
        assert valid, f"the quick check accepted {value!r} for {schema}, which jsonschema refuses"


def test_a_schema_with_a_keyword_it_does_not_know_goes_to_jsonschema() -> None:
    assert _quick_of({"type": "string", "multipleOf": 2}) is None
    assert _quick_of({"type": "array", "items": {"type": "string"}}) is None
    assert _quick_of({"type": "string", "enum": [["a"]]}) is None


def test_the_quick_check_accepts_the_usual_valid_values() -> None:
    assert _quick_of({"type": "string", "format": "money", "label_zh": "金额"})("12.50")  # type: ignore[misc]
    assert _quick_of({"type": "string", "enum": ["a", "b"]})("b")  # type: ignore[misc]
    assert not _quick_of({"type": "string", "format": "money"})("12.5.0")  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(st.lists(SCALARS, min_size=1, max_size=5), SCALARS)
def test_an_enum_takes_its_own_values_of_their_own_type_only(allowed: list[Any], value: Any) -> None:
    """The enum check is a lookup by (type, value): each member passes it (a step skips jsonschema for it), and
    a value passes only when a member of the same type equals it (True is not 1, 1 is not 1.0)."""
    quick = _quick_of({"enum": allowed})
    assert quick is not None
    assert all(quick(member) for member in allowed)
    assert quick(value) == any(type(value) is type(e) and value == e for e in allowed)
    assert not quick([value]) and not quick({"k": value})      # containers are never enum scalars here
