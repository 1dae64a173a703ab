"""The audit chain's hashes and the stored case data are JSON text in one fixed form: the fast encoder
(caseflow.jsontext) writes exactly what `json.JSONEncoder(...).encode` writes, for any value a case holds."""

from __future__ import annotations

import datetime
import decimal
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseflow.jsontext import decoder, encoder

SHAPES = [((",", ":"), str), ((", ", ": "), None)]       # the audit chain's canonical form; the case data's
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(values)
@pytest.mark.parametrize(("separators", "default"), SHAPES)
def test_the_text_is_json_encoders_own(separators: tuple[str, str], default: Any, value: Any) -> None:
    plain = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=separators, default=default)
    assert encoder(sort_keys=True, separators=separators, default=default)(value) == plain.encode(value)


def test_values_json_cannot_hold_go_through_default_or_are_refused() -> None:
    canonical = encoder(sort_keys=True, separators=(",", ":"), default=str)
    odd = {"due": datetime.date(2025, 3, 3), "amount": decimal.Decimal("80000.00"), "中文": "上海\"\n"}
    assert canonical(odd) == '{"amount":"80000.00","due":"2025-03-03","中文":"上海\\"\\n"}'
    strict = encoder(sort_keys=True, separators=(", ", ": "))
    with pytest.raises(TypeError, match="not JSON serializable"):
        strict({"amount": decimal.Decimal("1")})
    assert strict(float("inf")) == json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode(float("inf"))


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(["", " ", "\n", " \t"]))
@pytest.mark.parametrize(("separators", "default"), SHAPES)
def test_stored_text_decodes_to_json_loads_own_value(separators: tuple[str, str], default: Any, value: Any,
                                                    pad: str) -> None:
    """The case row's data and sign-offs read back exactly as json.loads reads them (also with
    whitespace around the value, which caseflow never writes but a hand-edited row may hold)."""
    text = pad + encoder(sort_keys=True, separators=separators, default=default)(value) + pad
    assert decoder()(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "[", "[] x", "{\"a\": 1,}", "nul", "1 2"])
def test_text_that_is_not_json_is_refused_as_json_loads_refuses_it(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        decoder()(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)
