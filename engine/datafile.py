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
import os
import stat
from pathlib import Path
from typing import Any

from caseflow.values import ValueProblem, check_length, check_text

# The workflow loader's limits (definition/source.py MAX_BYTES, MAX_DEPTH; not imported: no YAML here).
DATA_MAX_BYTES = 1_000_000          # a --data file or one import line: 1 MB (a case is a few KB)
DATA_MAX_DEPTH = 64                 # nesting of objects and arrays
KEY_MAX = 256                       # a key is a field name


def read_limited(path: str | Path, limit: int = DATA_MAX_BYTES) -> bytes:
    """A regular file's bytes, at most `limit` (checked while reading); FIFOs, devices and directories
    are refused without being opened for reading, so nothing hangs or fills memory."""
    try:
        regular_file(path)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))   # a FIFO swapped in meanwhile: no wait
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ValueProblem("not a regular file")
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise ValueProblem(f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise ValueProblem(f"file is over {limit:,} bytes (the limit)")
    return raw


def regular_file(path: str | Path) -> None:
    """Refuse (ValueProblem) anything but a regular file, following symlinks, without opening it;
    a missing file is the caller's OSError."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueProblem(f"not a regular file ({_kind(info.st_mode)})")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


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
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueProblem:
        raise
    except ValueError as exc:
        raise ValueProblem(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueProblem("expected a JSON object")
    check_strings(data, "")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            check_length(key, "a key", KEY_MAX)
            raise ValueProblem(f"duplicate key {key!r} (JSON keeps only the last; give each field once)")
        out[key] = value
    return out


def nesting(text: str) -> int:
    """The deepest `[`/`{` nesting outside strings, without recursion; stops counting past the limit."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > DATA_MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


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
