"""One masking rule for every output: fields marked `x-pii`, and phone and ID numbers in free text.

`show`, `history`, `audit`, exports and error messages all mask through here.
Masked output carries no function of the clear value (no hash of a row that
contains it), so nothing can be brute-forced from an export. Free text is
masked by shape: mainland mobile numbers (with or without +86, spaces or
dashes: 13600001111, 136-0000-1111, +86 136 0000 1111) and 18-character ID
numbers (also written in groups).
"""

from __future__ import annotations

import re
from typing import Any

_SEP = r"[ \-.\u00a0]?"
# a mobile number: 1[3-9]x xxxx xxxx, optionally +86 / 0086 first, groups separated by one space, dash or dot
_PHONE = re.compile(r"(?<![\dA-Za-z])((?:\+?86|0086)[ \-]?)?(1[3-9]\d)" + _SEP + r"(\d{4})" + _SEP
                    + r"(\d{4})(?![\dA-Za-z])")
# an ID number: 6 + 8 + 3 digits and a check digit or X, optionally in groups
_ID_NUMBER = re.compile(r"(?<![\dA-Za-z])(\d{4})(\d{2}" + _SEP + r"\d{4}" + _SEP + r"\d{4}"
                        + _SEP + r")(\d{3}[\dXx])(?![\dA-Za-z])")
# a wider net for other long digit runs in free text (bank cards, landlines with area code)
_LONG_DIGITS = re.compile(r"(?<![\dA-Za-z])(\d{3})\d{5,}(\d{3})(?![\dA-Za-z])")


def mask(value: Any, kind: str) -> Any:
    """Keep just enough to recognise the value: 138****5678, 1101**********1234, 张*."""
    if value is None or not isinstance(value, str) or not value:
        return value
    if kind == "phone":
        return value[:3] + "*" * max(len(value) - 7, 1) + value[-4:] if len(value) > 7 else "*" * len(value)
    if kind == "id_number":
        return value[:4] + "*" * max(len(value) - 8, 1) + value[-4:] if len(value) > 8 else "*" * len(value)
    if kind == "name":
        return value[0] + "*" * (len(value) - 1)
    if kind == "date":
        return value[:4] + "-**-**" if len(value) >= 4 else "****"
    return value[:6] + "****" if len(value) > 6 else "****"


def mask_text(text: str | None) -> str | None:
    """Phone and ID numbers typed into free text (notes, reasons, descriptions, error messages)."""
    if not text:
        return text
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 10 + m.group(3), text)
    text = _PHONE.sub(lambda m: (m.group(1) or "") + m.group(2) + "****" + m.group(4), text)
    return _LONG_DIGITS.sub(lambda m: m.group(1) + "*****" + m.group(2), text)


def mask_strings(value: Any) -> Any:
    """mask_text through lists and dicts."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [mask_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: mask_strings(v) for k, v in value.items()}
    return value


__all__ = ["mask", "mask_text", "mask_strings"]
