"""JSON text in one fixed form, encoded by the json module's C encoder built once; stored text decoded.

`json.JSONEncoder(...).encode` builds a new C encoder object on every call (and `json.dumps` a new
JSONEncoder too); a step encodes a few small values (its data, its audit changes, each audit row
for its hash), where that construction is a quarter of the time. `encoder` builds the C encoder once
and calls it; the text is the one `JSONEncoder(...).encode` gives, byte for byte
(tests/test_jsontext.py). Without the C module (another Python) it is `JSONEncoder(...).encode`.
The circular-reference check is off: the values encoded here come from parsed input, never cycles.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:
    from _json import make_encoder
    _make_encoder: Any = make_encoder
except ImportError:                      # pragma: no cover - CPython has it
    _make_encoder = None


def encoder(*, sort_keys: bool, separators: tuple[str, str],
            default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """`JSONEncoder(ensure_ascii=False, sort_keys=…, separators=…, default=…).encode`, faster."""
    plain = json.JSONEncoder(ensure_ascii=False, sort_keys=sort_keys, separators=separators, default=default)
    if _make_encoder is None:
        return plain.encode
    item_separator, key_separator = separators
    encode_string = json.encoder.encode_basestring
    c_encode = _make_encoder(None, plain.default, encode_string, None, key_separator, item_separator,
                             sort_keys, False, True)
    join = "".join

    def encode(value: Any) -> str:
        if isinstance(value, str):        # (the C encoder takes containers and scalars; a str as encode does)
            return encode_string(value)
        return join(c_encode(value, 0))
    return encode


def decoder() -> Callable[[str], Any]:
    """`json.loads` for text this program stored (a case row's data and sign-offs), faster: the C
    scanner called directly, without `loads`'s type checks and whitespace scans around the value.
    Any text it does not take whole (whitespace, a stray byte) goes to `json.loads`, which gives the
    same value or raises the same error; the empty list, most cases' sign-offs, is not parsed."""
    loads = json.loads
    scan = json.JSONDecoder().scan_once     # type: ignore[attr-defined]  # set by __init__ (the C scanner)

    def decode(text: str) -> Any:
        if text == "[]":
            return []
        try:
            value, end = scan(text, 0)
        except StopIteration:
            return loads(text)
        return value if end == len(text) else loads(text)
    return decode


__all__ = ["encoder", "decoder"]
