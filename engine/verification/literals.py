"""The string table of a verification run: every text the definition and org.yaml mention.

Text is modelled by identity: each known string gets an integer code (see translate.py).
Small codes are neutral placeholders, so a solver's favourite small numbers read as
"文本1", not as someone's user id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from caseflow.definition.model import Definition, Org
from caseflow.verification.translate import Symbols

SYSTEM = "system"
PLACEHOLDERS = [f"文本{i}" for i in range(1, 9)]


def prime_strings(s: Symbols, d: Definition, org: Org) -> None:
    from caseflow.verification.cel_ast import Unsupported, literals, parse
    for text in PLACEHOLDERS:
        s.code(text)
    s.code("")
    for person in org.people.values():
        s.code(person.id)
        for v in person.attributes.values():
            if isinstance(v, str):
                s.code(v)
    s.code(SYSTEM)
    for schema in list(d.fields.values()) + [i for t in d.transitions for i in t.inputs.values()]:
        for v in schema.get("enum", []):
            s.code(str(v))
    for text in expressions_of(d):
        try:
            for lit in literals(parse(text)):
                if isinstance(lit, str):
                    s.code(lit)
        except Unsupported:
            continue
    for table in d.decisions.values():
        for _, outcome in table.rules:
            for v in outcome.values():
                s.code(str(v))
    _walk_constants(d.constants, s)


def expressions_of(d: Definition) -> Iterator[str]:
    for t in d.transitions:
        for g in t.guards:
            yield g.expr.text
        for _, e in t.effects:
            yield e.text
        for a in t.actions:
            if a.when:
                yield a.when.text
    for s in d.states.values():
        for a in s.on_enter:
            if a.when:
                yield a.when.text
    for table in d.decisions.values():
        for expr, _ in table.rules:
            yield expr.text
        if table.count_when:
            yield table.count_when.text
    for c in d.clocks:
        if c.when:
            yield c.when.text


def _walk_constants(value: Any, s: Symbols) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            s.code(str(k))
            _walk_constants(v, s)
    elif isinstance(value, str):
        s.code(value)
