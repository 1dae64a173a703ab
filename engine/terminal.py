"""What a terminal is shown: text that cannot forge lines or send escape sequences.

A note, a customer's name or a refused value may hold a newline (which would
print a forged row in `history`), an ESC sequence (which the terminal would
obey: colours, cursor moves, a retitled window) or a right-to-left override.
Every human-readable output passes operator text through `escape`: control and
format characters become the escapes Python and JSON write (`\\n`, `\\x1b`,
`\\u202e`); Chinese text, full-width spaces and emoji stay as they are. JSON
output is not escaped here: `json.dumps` already writes them as JSON escapes.
"""

from __future__ import annotations

import unicodedata
from typing import Any

_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs"}        # controls, format (bidi, zero-width), line/paragraph separators
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """`text` with every control or format character written as an escape (printable, one line)."""
    if text.isprintable():                          # the common case, at C speed
        return text
    out = []
    for ch in text:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif unicodedata.category(ch) in _UNSAFE:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def escaped(value: Any) -> Any:
    """Every string inside `value` (dict keys and values, lists) escaped, for a human rendering of a payload."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {escape(k) if isinstance(k, str) else k: escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escaped(v) for v in value]
    return value


__all__ = ["escape", "escaped"]
