"""CEL compile errors in a designer's words: the message, line, column and a hint to act on.

`expressions.py` compiles; when CEL's compiler refuses, `compile_error` turns its
text into an `ExpressionError` ("unknown field 'amout' (did you mean 'amount'?)",
"CEL writes && for and", the usage of a known function).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cel_expr_python import cel

_ERR_RE = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*?)(?:\n|$)")

class ExpressionError(Exception):
    """An expression failed to compile or evaluate; line/col are within the expression."""

    def __init__(self, message: str, line: int = 1, col: int = 1, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.col, self.hint = message, line, col, hint


class ExpressionTypeError(ExpressionError):
    """The expression compiled but gives the wrong type (`got`, `want`: CEL type names)."""

    def __init__(self, got: str, want: str) -> None:
        super().__init__(f"expression is {got}, expected {want}")
        self.got, self.want = got, want


def _tname(t: cel.Type) -> str:
    return _plain_type(str(t.name()).lower())


def _plain_type(name: str) -> str:
    for long, short in (("google.protobuf.timestamp", "timestamp"), ("google.protobuf.duration", "duration"),
                        ("null_type", "null")):
        name = re.sub(re.escape(long), short, name, flags=re.IGNORECASE)
    return name


# -- compile errors in a designer's words ---------------------------------------------

_OPS = {"_>_": ">", "_<_": "<", "_>=_": ">=", "_<=_": "<=", "_==_": "==", "_!=_": "!=",
        "_+_": "+", "_-_": "-", "_*_": "*", "_/_": "/", "_%_": "%", "_&&_": "&&", "_||_": "||",
        "!_": "!", "-_": "-", "@in": "in", "_[_]": "[ ]", "_?_:_": "? :"}
_COMPARE = {">", "<", ">=", "<=", "==", "!="}
SIGNATURES = {
    "yuan": 'yuan(300) or yuan("12.50") → money',
    "days_since": "days_since(timestamp) → int",
    "working_days_since": "working_days_since(timestamp) → int",
    "local_date": "local_date(timestamp) → string",
    "years_between": "years_between(timestamp, timestamp) → int",
    "add_months": "add_months(timestamp, int) → timestamp",
    "is_set": "is_set('field') → bool",
    "size": "size(string | list | map) → int",
    "startsWith": "text.startsWith('A') → bool",
    "endsWith": "text.endsWith('A') → bool",
    "contains": "text.contains('A') → bool",
    "matches": "text.matches('^A[0-9]$') → bool",
    "timestamp": "timestamp('2025-01-01T00:00:00Z') → timestamp",
    "int": "int(value) → int",
    "string": "string(value) → string",
}
_SYNONYMS: dict[str, str | None] = {
    "len": "size", "length": "size", "startswith": "startsWith", "endswith": "endsWith",
    "isset": "is_set", "defined": "is_set", "lower": None, "upper": None, "strip": None}
_WORDS = {"None": "CEL writes null; to test whether a field is set, write is_set('field')",
          "True": "CEL writes true in lower case", "False": "CEL writes false in lower case"}
_AND_OR = "CEL writes && for and, || for or, ! for not"
_SPLIT = "split it into several guards, or move the rules into a decision table"


def compile_error(raw: str, text: str = "", variables: Mapping[str, Any] | None = None) -> ExpressionError:
    """CEL's compiler message → ExpressionError(message, line, col, hint) a designer can act on."""
    lowered = raw.lower()
    if "recursion" in lowered and ("limit" in lowered or "depth" in lowered):
        return ExpressionError("expression is nested too deeply (CEL allows 32 levels)", hint=_SPLIT)
    match = _ERR_RE.search(raw)
    if not match:
        return ExpressionError(raw.strip().splitlines()[0] if raw.strip() else "invalid expression")
    line, col, msg = int(match.group(1)), int(match.group(2)), match.group(3)
    msg = msg.replace(" (in container '')", "").strip()
    lines = text.split("\n")
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    if msg.startswith("Syntax error: "):
        return _syntax_error(msg.removeprefix("Syntax error: "), line, col, here)
    if msg.startswith("undeclared reference to "):
        return _unknown_name(msg.split("'")[1], line, col, here, variables or {})
    overload = re.match(r"found no matching overload for '([^']+)' applied to '\((.*)\)'", msg)
    if overload:
        return _no_overload(overload.group(1), _split_types(overload.group(2)), line, col)
    select = re.match(r"expression of type '([^']+)' cannot be the operand of a select operation", msg)
    if select:
        return ExpressionError(f"a {_plain_type(select.group(1))} has no fields to read with '.'", line, col,
                               "only maps (constants) and input have fields; check the name before the dot")
    if msg.startswith("reserved identifier: "):
        word = msg.split(": ", 1)[1]
        return ExpressionError(f"'{word}' is a reserved word in CEL", line, col,
                               "write a choice as condition ? a : b" if word in ("if", "else") else None)
    if "has() argument" in msg:
        return ExpressionError("has() needs a field selection", line, col,
                               "to test whether a field is set, write is_set('field')")
    return ExpressionError(msg, line, col)


def _syntax_error(msg: str, line: int, col: int, here: str) -> ExpressionError:
    found = re.search(r"(?:input|at:?) '(.*?)'(?: expecting|$)", msg)
    tok = (found.group(1) if found else "").strip()
    word_before = re.search(r"([A-Za-z_]+)\s*$", here[:max(col - 1, 0)])

    def err(message: str, hint: str | None = None, at: int = col) -> ExpressionError:
        return ExpressionError(f"syntax error: {message}", line, at, hint)

    if tok.lower() in ("and", "or", "not"):
        return err(f"unexpected '{tok}'", _AND_OR)
    if word_before and word_before.group(1).lower() == "not" and "extraneous input" in msg:
        return err("unexpected 'not'", _AND_OR, word_before.start(1) + 1)
    if "token recognition error" in msg:
        if tok in ("=>", "=<"):
            return err(f"unexpected '{tok}'", f"write {tok[::-1]}")
        if tok.startswith("="):
            return err("unexpected '='", "compare with ==; effects are written under set:, not with =")
        if tok in ("&", "|"):
            return err(f"unexpected '{tok}'", f"CEL writes {tok * 2}")
        if tok[:1] in ("'", '"'):
            return err("text in quotes is never closed", f"add the closing {tok[0]}")
        if tok == "#":
            return err("unexpected '#'", "CEL has no # comments; put the comment on a YAML line of its own")
        return err(f"unexpected '{tok}'")
    if tok == "<EOF>" and "missing ')'" in msg:
        return err("missing ')'", "a '(' is never closed")
    if tok == "<EOF>":
        return err("the expression ends too early", "something is missing after the last operator")
    if tok:
        plain_word = re.fullmatch(r"[A-Za-z_]\w*", tok) is not None
        return err(f"unexpected '{tok}'", "text goes in quotes, e.g. 'major'" if plain_word else None)
    return err(msg.split(" expecting")[0])


def _unknown_name(name: str, line: int, col: int, here: str, variables: Mapping[str, Any]) -> ExpressionError:
    from difflib import get_close_matches  # only for an error (not at start-up: issue #18)
    # CEL points at the '.' of a selection or the '(' of a call: point at the name instead.
    pattern = r"(?<![\w.])" + r"\s*\.\s*".join(map(re.escape, name.split("."))) + r"\b"
    found = [m for m in re.finditer(pattern, here) if m.start() < col]
    if not found:    # a method: CEL names only the method
        found = [m for m in re.finditer(r"\b" + re.escape(name) + r"\b", here) if m.start() < col]
    start, end = (found[-1].start() + 1, found[-1].end()) if found else (col, col - 1)
    if here[end:].lstrip().startswith("("):
        member = here[:start - 1].rstrip().endswith(".")
        known = sorted(SIGNATURES)
        alt = _SYNONYMS.get(name, "") or ""
        close = [alt] if alt else get_close_matches(name, known, n=1, cutoff=0.6)
        if name in _SYNONYMS and not alt:
            hint = f"CEL has no {name}(); available: " + ", ".join(known)
        elif close:
            hint = f"did you mean {close[0]}()? usage: {SIGNATURES[close[0]]}"
        else:
            hint = "available: " + ", ".join(known)
        return ExpressionError(f"unknown {'method' if member else 'function'} '{name}()'", line, start, hint)
    if name.startswith("input."):
        inputs = [v.removeprefix("input.") for v in variables if v.startswith("input.")]
        return ExpressionError(f"unknown input {name!r}", line, start,
                               _did_you_mean(name.removeprefix("input."), inputs, "input.")
                               or "declare it under the transition's input:")
    if name in _WORDS:
        return ExpressionError(f"unknown name {name!r}", line, start, _WORDS[name])
    names = [v for v in variables if not v.startswith("input.")] + ["now", "actor", "true", "false", "null"]
    return ExpressionError(f"unknown name {name!r}", line, start,
                           _did_you_mean(name, names, cutoff=0.7)
                           or f"if it is text, write it in quotes: \"'{name}'\"; fields are declared under"
                              " data.properties")


def _did_you_mean(name: str, known: list[str], prefix: str = "", cutoff: float = 0.6) -> str | None:
    from difflib import get_close_matches
    close = get_close_matches(name, known, n=1, cutoff=cutoff)
    return f"did you mean '{prefix}{close[0]}'?" if close else None


def _split_types(args: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in args:
        if ch == "," and depth == 0:
            out.append(_plain_type(cur.strip()))
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    return out + ([_plain_type(cur.strip())] if cur.strip() else [])


def _no_overload(fn: str, types: list[str], line: int, col: int) -> ExpressionError:
    op, kinds = _OPS.get(fn), set(types)
    hint = None
    if {"int", "double"} <= kinds:
        hint = 'expressions have no decimals: money is written yuan(300) or yuan("12.50"), counts as integers'
    elif "string" in kinds and kinds & {"int", "double"}:
        hint = "text and numbers do not mix: write text in quotes like 'major', numbers bare like 2"
    elif "null" in kinds:
        hint = "to test whether a field is set, write is_set('field')"
    elif "timestamp" in kinds and kinds & {"int", "string"}:
        hint = "compare times with times (now, a date-time field); days_since(t) gives whole days"
    elif "bool" in kinds and len(kinds) > 1 and op in _COMPARE:
        hint = "use a bool directly (valid, !valid)"
    if op in _COMPARE:
        return ExpressionError(f"'{op}' cannot compare {types[0]} with {types[-1]}", line, col, hint)
    if op == "!":
        return ExpressionError(f"'!' needs true/false, got {types[0]}", line, col, hint)
    if op in ("&&", "||"):
        return ExpressionError(f"'{op}' needs true/false on each side, got {' and '.join(types)}", line, col,
                               hint or "make each side a condition, e.g. points > 0")
    if op == "? :":
        return ExpressionError(f"the two branches of '? :' differ: {types[1]} and {types[2]}", line, col,
                               hint or "both branches must give the same type")
    if op == "in":
        return ExpressionError(f"'in' cannot look for {types[0]} in {types[-1]}", line, col,
                               hint or "write value in ['a', 'b']")
    if op == "[ ]":
        return ExpressionError(f"cannot index {types[0]} with {types[-1]}", line, col, hint)
    if op is not None:
        rest = f" and {types[1]}" if len(types) > 1 else ""
        return ExpressionError(f"'{op}' cannot be applied to {types[0]}{rest}", line, col, hint)
    sig = SIGNATURES.get(fn)
    return ExpressionError(f"{fn}() cannot take ({', '.join(types)})", line, col, f"usage: {sig}" if sig else hint)
