"""A small parser for the CEL subset caseflow workflows use, giving a tree to translate.

The engine runs CEL through cel-expr-python, which type-checks but does not hand
out its syntax tree; the verifier needs one to translate guards and effects into
solver terms. Every expression here already compiled in the engine, so this
parser only has to be right, not helpful: anything it does not know raises
`Unsupported` and the translator over-approximates that expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class Unsupported(Exception):
    """An expression (or part) the verifier cannot translate; the message says what."""


@dataclass(frozen=True)
class Node:
    kind: str                 # lit | name | call | method | index | list | unary | binary | cond
    value: Any = None         # literal value, name, function/method name or operator
    args: tuple[Node, ...] = ()


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+\.\d+|\d+u?|0x[0-9a-fA-F]+)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]])
""", re.VERBOSE)

_BINARY = [("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">=", "in"), ("+", "-"), ("*", "/", "%")]


def tokenize(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise Unsupported(f"cannot read {text[pos:pos + 10]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup or "", m.group()))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def take(self, want: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise Unsupported("expression ends early")
        tok = self.toks[self.i]
        if want is not None and tok[1] != want:
            raise Unsupported(f"expected {want!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.cond()
        if self.i != len(self.toks):
            raise Unsupported(f"unexpected {self.peek()!r}")
        return node

    def cond(self) -> Node:
        test = self.binary(0)
        if self.peek() == "?":
            self.take("?")
            yes = self.cond()
            self.take(":")
            no = self.cond()
            return Node("cond", None, (test, yes, no))
        return test

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in _BINARY[level]:
            op = self.take()[1]
            right = self.binary(level + 1)
            left = Node("binary", op, (left, right))
        return left

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            return Node("unary", "!", (self.unary(),))
        if self.peek() == "-":
            self.take()
            inner = self.unary()
            if inner.kind == "lit" and isinstance(inner.value, int):
                return Node("lit", -inner.value)
            return Node("unary", "-", (inner,))
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while self.peek() in (".", "[", "("):
            tok = self.take()[1]
            if tok == ".":
                name = self.take()[1]
                if self.peek() == "(":
                    node = Node("method", name, (node, *self.call_args()))
                elif node.kind == "name":
                    node = Node("name", f"{node.value}.{name}")
                else:
                    raise Unsupported(f"field selection .{name}")
            elif tok == "[":
                key = self.cond()
                self.take("]")
                node = Node("index", None, (node, key))
            else:
                raise Unsupported("call of a non-function")
        return node

    def call_args(self) -> tuple[Node, ...]:
        self.take("(")
        args = []
        while self.peek() != ")":
            args.append(self.cond())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return tuple(args)

    def primary(self) -> Node:
        kind, tok = self.take()
        if kind == "num":
            if "." in tok:
                return Node("lit", float(tok))
            return Node("lit", int(tok.rstrip("u"), 0))
        if kind == "str":
            return Node("lit", _unquote(tok))
        if kind == "name":
            if tok in ("true", "false"):
                return Node("lit", tok == "true")
            if tok == "null":
                return Node("lit", None)
            if self.peek() == "(":
                return Node("call", tok, self.call_args())
            return Node("name", tok)
        if tok == "(":
            inner = self.cond()
            self.take(")")
            return inner
        if tok == "[":
            items = []
            while self.peek() != "]":
                items.append(self.cond())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            return Node("list", None, tuple(items))
        raise Unsupported(f"unexpected {tok!r}")


def _unquote(tok: str) -> str:
    body = tok[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(text: str) -> Node:
    """The syntax tree of one CEL expression, or `Unsupported`."""
    return _Parser(text).parse()


def literals(node: Node) -> list[Any]:
    """Every literal in a tree (the verifier's table of known strings)."""
    found = [node.value] if node.kind == "lit" else []
    for a in node.args:
        found += literals(a)
    return found
