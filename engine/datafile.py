"""Operator JSON: `--data` files and the rows of a JSON Lines import, read with the YAML loader's limits.

`json.loads` keeps the last of two duplicate keys, recurses once per nesting
level (a file of 100,000 `[` ends in RecursionError) and reads any size. Here
a `--data` file must be a regular file of at most DATA_MAX_BYTES, nested at
most DATA_MAX_DEPTH levels (the workflow loader's MAX_DEPTH), without a
duplicate key, and every key and string must be storable text within
values.STRING_MAX. Every refusal is one ValueProblem line that names the key,
never its value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from caseflow.files import check_regular as regular_file
from caseflow.files import read_bounded
from caseflow.values import JSON_MAX_DEPTH, ValueProblem, check_length, check_text, nesting, no_duplicates

# The workflow loader's limits (definition/source.py MAX_BYTES, MAX_DEPTH; not imported: no YAML here).
DATA_MAX_BYTES = 1_000_000          # a --data file or one import line: 1 MB (a case is a few KB)
DATA_MAX_DEPTH = JSON_MAX_DEPTH     # nesting of objects and arrays
KEY_MAX = 256                       # a key is a field name


def read_limited(path: str | Path, limit: int = DATA_MAX_BYTES) -> bytes:
    """A regular file's bytes, at most `limit` (files.py: FIFOs, devices and directories refused unread)."""
    raw, _ = read_bounded(path, limit)
    if len(raw) > limit:
        raise ValueProblem(f"file is over {limit:,} bytes (the limit)")
    return raw


def load_data(raw: bytes | str) -> dict[str, Any]:
    """One JSON object with the limits above; raises ValueProblem (one line)."""
    if isinstance(raw, bytes):
        if len(raw) > DATA_MAX_BYTES:
            raise ValueProblem(f"over {DATA_MAX_BYTES:,} bytes (the limit)")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueProblem(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    else:
        text = raw
        if len(text) > DATA_MAX_BYTES:
            raise ValueProblem(f"over {DATA_MAX_BYTES:,} characters (the limit)")
    deepest = nesting(text)
    if deepest > DATA_MAX_DEPTH:
        raise ValueProblem(f"nesting deeper than {DATA_MAX_DEPTH} levels")
    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except ValueProblem:
        raise
    except ValueError as exc:
        raise ValueProblem(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueProblem("expected a JSON object")
    check_strings(data, "")
    return data


def check_strings(value: Any, where: str) -> None:
    """Every key and string storable (no NUL, no lone surrogate) and within the text limit."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        name = f"{where}.{key}" if where else str(key)
        if isinstance(key, str):
            check_length(key, "a key", KEY_MAX)
            check_text(key, f"key {name!r}")
        if isinstance(item, str):
            check_text(item, name)
            check_length(item, name)
        elif isinstance(item, (dict, list)):
            check_strings(item, name)


__all__ = ["DATA_MAX_BYTES", "DATA_MAX_DEPTH", "regular_file", "read_limited", "load_data", "nesting", "check_strings"]
