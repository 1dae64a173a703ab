"""Safe YAML reading that remembers where every value came from.

PyYAML's `safe_load` silently keeps the last of two duplicate keys, expands
aliases without bound and forgets line numbers. Designers need all three caught
and every later error (schema, lint, expressions) pointed at `file:line:col`,
so we compose the node tree once, check it, and keep it beside the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import DefinitionError

MAX_BYTES = 1_000_000          # a real workflow file is a few KB
MAX_NODES = 200_000            # after alias expansion (billion laughs stops here)
MAX_DEPTH = 64                 # nesting depth of mappings/sequences


@dataclass(frozen=True)
class Source:
    """A parsed YAML document: the plain data and the node tree to locate errors."""

    path: str
    text: str
    data: Any
    root: yaml.Node | None

    def locate(self, path: Iterable[str | int], *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of the value at `path`, or of its key.

        Walks as deep as the path exists, so a missing property points at the
        mapping that lacks it.
        """
        node = self.root
        if node is None:
            return 1, 1
        key_node: yaml.Node | None = None
        for step in path:
            if isinstance(node, yaml.MappingNode):
                found = next(((k, v) for k, v in node.value if k.value == step), None)
                if found is None:
                    break
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) \
                    and 0 <= step < len(node.value):
                key_node, node = None, node.value[step]
            else:
                break
        target = key_node if key and key_node is not None else node
        return target.start_mark.line + 1, target.start_mark.column + 1

    def error(self, message: str, path: Iterable[str | int] = (), *, key: bool = False,
              hint: str | None = None) -> DefinitionError:
        line, col = self.locate(path, key=key)
        return DefinitionError(message, file=self.path, line=line, col=col, hint=hint)


def read_source(path: str | Path, display: str | None = None) -> Source:
    """Read and parse one YAML file with every safety check; raise DefinitionError."""
    shown = display or str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DefinitionError(f"cannot read file: {exc.strerror}", file=shown, line=1, col=1) from None
    return parse_source(raw, shown)


def parse_source(raw: bytes, shown: str) -> Source:
    if len(raw) > MAX_BYTES:
        raise DefinitionError(
            f"file is {len(raw):,} bytes; workflow files are limited to {MAX_BYTES:,}",
            file=shown, line=1, col=1, hint="split it or remove generated content")
    text = _decode(raw, shown)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, shown, text) from None
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML always marks its errors
        raise DefinitionError(str(exc), file=shown, line=1, col=1) from None
    if root is None:
        return Source(shown, text, None, None)
    _check_tree(root, shown)
    try:
        data = yaml.SafeLoader(text).construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, shown, text) from None
    return Source(shown, text, data, root)


def _decode(raw: bytes, shown: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[:exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise DefinitionError(f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                              file=shown, line=line, col=col,
                              hint="save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


def _yaml_error(exc: yaml.MarkedYAMLError, shown: str, text: str) -> DefinitionError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    hint = None
    if "'\\t'" in problem or "\\t" in problem:
        problem, hint = "tab character used for indentation", "indent with spaces"
    elif "found undefined tag" in problem or "could not determine a constructor" in problem:
        problem, hint = "custom YAML tags are not allowed", "use plain values"
    return DefinitionError(f"invalid YAML: {problem}", file=shown, line=line, col=col, hint=hint)


def _check_tree(root: yaml.Node, shown: str) -> None:
    """Reject duplicate keys, excessive nesting and alias bombs before constructing."""
    budget = [MAX_NODES]
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        budget[0] -= 1
        if budget[0] < 0:
            raise _at(node, shown, f"document expands to more than {MAX_NODES:,} values "
                      "(aliases nested too deeply?)", "remove the repeated aliases")
        if depth > MAX_DEPTH:
            raise _at(node, shown, f"nesting deeper than {MAX_DEPTH} levels", None)
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen and key.value != "<<":
                        first = seen[key.value].start_mark.line + 1
                        raise _at(key, shown, f"duplicate key {key.value!r}",
                                  f"first defined on line {first}")
                    seen[key.value] = key
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def _at(node: yaml.Node, shown: str, message: str, hint: str | None) -> DefinitionError:
    return DefinitionError(message, file=shown, line=node.start_mark.line + 1,
                           col=node.start_mark.column + 1, hint=hint)
