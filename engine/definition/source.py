"""Safe YAML reading that remembers where every value came from.

PyYAML's `safe_load` silently keeps the last of two duplicate keys, expands
aliases without bound, recurses once per nesting level and forgets line
numbers. Designers need all of that caught and every later error (schema,
lint, expressions) pointed at `file:line:col`, so we compose the node tree
once, check it, and keep it beside the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from caseflow.definition.yaml_safety import check_tree
from caseflow.errors import DefinitionError
from caseflow.files import MAX_BYTES, read_workflow_bytes

MAX_DEPTH = 64                 # nesting depth of mappings/sequences



@dataclass(frozen=True)
class Source:
    """A parsed YAML document: the plain data and the node tree to locate errors."""

    path: str
    text: str
    data: Any
    root: yaml.Node | None

    def _walk(self, path: Iterable[str | int]) -> tuple[yaml.Node | None, yaml.Node | None, bool]:
        """(key node, value node, whole path found) for `path`, as deep as it exists."""
        node, key_node = self.root, None
        for step in path:
            if isinstance(node, yaml.MappingNode):
                found = next(((k, v) for k, v in node.value
                              if isinstance(k, yaml.ScalarNode) and k.value == str(step)), None)
                if found is None:
                    return key_node, node, False
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) \
                    and 0 <= step < len(node.value):
                key_node, node = None, node.value[step]
            else:
                return key_node, node, False
        return key_node, node, True

    def node(self, path: Iterable[str | int]) -> yaml.Node | None:
        """The value node at `path`, or None when the path does not exist."""
        _, value, found = self._walk(path)
        return value if found else None

    def locate(self, path: Iterable[str | int], *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of the value at `path`, or of its key.

        Walks as deep as the path exists, so a missing property points at the
        mapping that lacks it.
        """
        if self.root is None:
            return 1, 1
        key_node, node, _ = self._walk(path)
        target = key_node if key and key_node is not None else node
        assert target is not None
        return target.start_mark.line + 1, target.start_mark.column + 1

    def raw(self, node: yaml.Node) -> str:
        """The node's text exactly as written in the file."""
        return self.text[node.start_mark.index:node.end_mark.index]

    def position_in(self, path: Iterable[str | int], line: int, col: int) -> tuple[int, int]:
        """File line/col of (line, col) inside the string value at `path`.

        The value may be plain, quoted (with escapes), or a literal/folded
        block spanning lines; we align its characters with the source text,
        so an expression error points at the very token in the YAML file.
        """
        node = self.node(path)
        if not isinstance(node, yaml.ScalarNode):
            return self.locate(path)
        value = node.value
        lines = value.split("\n")
        line = min(max(line, 1), len(lines))
        offset = sum(len(x) + 1 for x in lines[:line - 1]) + min(max(col, 1), len(lines[line - 1]) + 1) - 1
        start, end = node.start_mark.index, node.end_mark.index
        if node.style in ("|", ">"):   # skip the indicator line: content starts on the next line
            start = self.text.find("\n", start, end) + 1 or start
        elif node.style in ("'", '"'):
            start += 1
        p = start
        for i, ch in enumerate(value):
            q = self.text.find(ch, p, end)   # skips indentation, quotes, escapes, folding
            if i == offset:
                return self._line_col(q if q >= 0 else p)
            if q >= 0:
                p = q + 1
        return self._line_col(min(p, max(end - 1, start)))

    def _line_col(self, index: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, index) + 1
        return line, index - (self.text.rfind("\n", 0, index) + 1) + 1

    def error(self, message: str, path: Iterable[str | int] = (), *, key: bool = False,
              hint: str | None = None) -> DefinitionError:
        line, col = self.locate(path, key=key)
        return DefinitionError(message, file=self.path, line=line, col=col, hint=hint)


def read_source(path: str | Path, display: str | None = None) -> Source:
    """Read and parse one YAML file with every safety check; raise DefinitionError."""
    shown = display or str(path)
    raw, size = read_workflow_bytes(path, shown)
    return parse_source(raw, shown, size=size)


def parse_source(raw: bytes, shown: str, *, size: int | None = None) -> Source:
    if len(raw) > MAX_BYTES:
        raise DefinitionError(
            f"file is {size or len(raw):,} bytes; workflow files are limited to {MAX_BYTES:,}",
            file=shown, line=1, col=1, hint="is this the right file? a workflow is a few KB")
    text = _decode(raw, shown)
    root = _fast_compose(text)
    if root is not None:
        check_tree(root, shown, text)
        data = yaml.SafeLoader(text).construct_document(root)
        return Source(shown, text, data, root)
    try:
        root = _Loader(text).get_single_node()
    except _TooDeep as exc:
        raise DefinitionError(f"nesting deeper than {MAX_DEPTH} levels", file=shown,
                              line=exc.mark.line + 1, col=exc.mark.column + 1,
                              hint="a workflow file is a few levels deep; is this generated?") from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, shown, text) from None
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        raise DefinitionError(f"control character U+{exc.character:04X} is not allowed",
                              file=shown, line=line, col=col,
                              hint="delete it (often pasted in from another program)") from None
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML marks its other errors
        raise DefinitionError(f"invalid YAML: {exc}", file=shown, line=1, col=1) from None
    if root is None:
        return Source(shown, text, None, None)
    check_tree(root, shown, text)
    try:
        data = yaml.SafeLoader(text).construct_document(root)
    except yaml.MarkedYAMLError as exc:  # pragma: no cover - tags are checked above
        raise _yaml_error(exc, shown, text) from None
    return Source(shown, text, data, root)


_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _fast_compose(text: str) -> yaml.Node | None:
    """Compose with libyaml when it is there and the document is plainly fine; else None.

    libyaml is ten times faster than PyYAML, but its composer recurses in C
    (deep nesting would crash the process, not raise), so the nesting depth is
    checked on its event stream first. Any problem at all, and an empty
    document, go to the pure-Python path, which owns every error message.
    """
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, _STARTS):
                depth += 1
                if depth >= MAX_DEPTH:
                    return None
            elif isinstance(event, _ENDS):
                depth -= 1
        return yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__("too deep")
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader whose composer stops at MAX_DEPTH (PyYAML recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _line_col(text: str, index: int) -> tuple[int, int]:
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def _decode(raw: bytes, shown: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[line_start:exc.start].decode("utf-8", "replace")) + 1
        raise DefinitionError(f"file is not valid UTF-8: byte 0x{raw[exc.start]:02x}",
                              file=shown, line=line, col=col,
                              hint="save the file as UTF-8; it may have been saved as GBK or Latin-1") from None
    return text.removeprefix("\ufeff")


def _yaml_error(exc: yaml.MarkedYAMLError, shown: str, text: str) -> DefinitionError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    context = (exc.context or "").strip()
    message, hint = f"invalid YAML: {problem}", None
    if "'\\t'" in problem and mark is not None:
        before = text[mark.index - mark.column:mark.index]
        if before.strip() == "":
            message, hint = "tab character used for indentation", "YAML indents with spaces only"
        else:
            message, hint = "tab character between values", "use spaces (YAML does not accept tabs here)"
    elif "but found another document" in problem:
        message, hint = "a second YAML document in the same file", "one workflow per file; remove the '---' line"
    elif "expected <block end>" in problem:
        message = "indentation does not line up with the lines above"
        hint = "keys of one mapping (and items of one list) must start in the same column"
    elif problem == "mapping values are not allowed here":
        message = "unexpected ':' (a value cannot contain ': ' unless it is quoted)"
        hint = "quote the value, or check the indentation of this line"
    elif "found unexpected end of stream" in problem and "quoted scalar" in context and exc.context_mark:
        line, col = exc.context_mark.line + 1, exc.context_mark.column + 1
        message, hint = "quoted string is never closed", "add the closing quote"
    elif "found undefined alias" in problem:
        message = problem.replace("found undefined alias", "alias to an undefined anchor")
        hint = "define the anchor (&name) before the alias (*name)"
    elif "could not find expected ':'" in problem and exc.context_mark:
        line, col = exc.context_mark.line + 1, exc.context_mark.column + 1
        message = "this line has no ':' (expected key: value)"
        hint = "add ': ' after the key, or indent the line as part of the value above"
    elif "expected '<document start>'" in problem:
        message = "this line does not fit into the document above"
        hint = "check the indentation of this line and the line before it"
    elif problem == "sequence entries are not allowed here":
        message = "a '- ' list item where a key: value was expected"
        hint = "put list items on their own lines under the key, indented the same"
    elif "expected chomping or indentation indicators" in problem or (
            "expected a comment or a line break" in problem and "block scalar" in context):
        if exc.context_mark:
            line, col = exc.context_mark.line + 1, exc.context_mark.column + 1
        message = "a value starting with '|' or '>' starts a block of text"
        hint = "quote the value, e.g. \"|| x\" or \">= 3\""
    elif "expected alphabetic or numeric character" in problem and ("anchor" in context or "alias" in context):
        if exc.context_mark:
            line, col = exc.context_mark.line + 1, exc.context_mark.column + 1
        message = "a value starting with '&' or '*' is read as a YAML anchor or alias"
        hint = "quote the value, e.g. \"&& x\""
    elif "found duplicate anchor" in context or "second occurrence" in problem:
        message = "the same anchor (&name) is defined twice"
        hint = "give each anchor its own name"
    elif "while parsing a flow" in context and ("but got" in problem or "but found" in problem):
        got = problem.rsplit("'", 2)[-2] if problem.count("'") >= 2 else "?"
        got = {"<scalar>": "a value", "<block end>": "end of block"}.get(got, repr(got))
        inside = "{...}" if "mapping" in context else "[...]"
        message = f"unexpected {got} inside {inside}"
        hint = "separate items with ', '; quote values that contain ': ', brackets or commas"
    elif "directive" in context:
        message, hint = "a line starting with '%' is read as a YAML directive", "remove the '%', or quote the value"
    elif "expected the node content" in problem:
        got = problem.rsplit("'", 2)[-2] if problem.count("'") >= 2 else "?"
        message = f"unexpected {got!r} where a value should start"
        hint = "quote the value if it starts with , [ ] { } or another YAML sign"
    elif "unknown escape character" in problem:
        got = problem.rsplit("'", 2)[-2] if problem.count("'") >= 2 else "?"
        message = f"unknown escape '\\{got}' in a double-quoted string"
        hint = "write \\\\ for a backslash, or use single quotes"
    elif "cannot start any token" in problem:
        char = problem.split("'")[1] if "'" in problem else problem
        message = f"a value cannot start with {char!r}"
        hint = "put the value in quotes"
    return DefinitionError(message, file=shown, line=line, col=col, hint=hint)
