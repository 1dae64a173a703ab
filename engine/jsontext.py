"""JSON text in one fixed form, encoded by the json module's C encoder built once.

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


__all__ = ["encoder"]
