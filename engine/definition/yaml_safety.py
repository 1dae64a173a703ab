"""The checks a composed YAML tree must pass before its data is used: tags, aliases, keys.

Only plain JSON-like values, dates and merge keys are allowed; an alias may not
expand a document past MAX_NODES values or contain itself; keys are plain
scalars and never repeated (YAML 1.1's yes/no/on/off named when they collide).
`source.py` composes the tree and calls `check_tree`.
"""

from __future__ import annotations

from typing import Any

import yaml

from caseflow.errors import DefinitionError

MAX_NODES = 200_000            # values after alias expansion (billion laughs stops here)

_STD = "tag:yaml.org,2002:"
# Tags a workflow file may contain (implicit or explicit): plain JSON-like
# values, dates (so a schema error can say "quote it"), and merge keys (<<).
_ALLOWED_TAGS = frozenset(_STD + t for t in
                          ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge"))
_YAML11_WORDS = {"yes", "no", "on", "off", "y", "n", "true", "false"}


def _tag(node: yaml.Node) -> str:
    return "!!" + node.tag[len(_STD):] if node.tag.startswith(_STD) else node.tag


def check_tree(root: yaml.Node, shown: str, text: str) -> None:
    """Reject duplicate keys, odd keys, foreign tags, recursion and alias bombs.

    The common case, a tree without aliases, is one plain walk. When a node
    turns up twice (an alias), `_check_shared` takes over.
    """
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        nid = id(node)
        if nid in seen:
            return _check_shared(root, shown, text)
        seen.add(nid)
        if node.tag not in _ALLOWED_TAGS or type(node) is yaml.MappingNode:
            _check_node(node, shown, text)
        if type(node) is yaml.MappingNode:
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
        elif type(node) is yaml.SequenceNode:
            stack.extend(node.value)
    if len(seen) > MAX_NODES:
        raise _at(root, shown, f"the document holds more than {MAX_NODES:,} values",
                  "is this the right file? a workflow holds a few thousand")
    return None


def _check_shared(root: yaml.Node, shown: str, text: str) -> None:
    """The walk for trees with aliases: each distinct node once, expanded sizes memoised.

    A billion-laughs bomb is caught without expanding it, and an alias to an
    enclosing node (a recursive document) is refused.
    """
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        nid = id(node)
        if children_done:
            open_nodes.discard(nid)
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > MAX_NODES:
                raise _at(node, shown, f"aliases expand this value to more than {MAX_NODES:,} values",
                          "is this a YAML bomb? a workflow file needs no nested aliases; write the values out")
            size[nid] = total
            continue
        if nid in size:
            continue
        if nid in open_nodes:
            raise _at(node, shown, "this value contains an alias to itself",
                      "a workflow file cannot be recursive; remove the alias")
        _check_node(node, shown, text)
        open_nodes.add(nid)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise _at(child, shown, "this value contains an alias to itself",
                          "a workflow file cannot be recursive; remove the alias")
            if id(child) not in size:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_node(node: yaml.Node, shown: str, text: str) -> None:
    if node.tag not in _ALLOWED_TAGS:
        tag = _tag(node)
        source = text[node.start_mark.index:node.end_mark.index].split("\n")[0].strip()
        if isinstance(node, yaml.ScalarNode) and node.tag.startswith("!") and not node.tag.startswith("!!") \
                and source.startswith("!"):
            raise _at(node, shown, f"YAML reads {source!r} as a tag, not a value",
                      f"quote the expression: \"{source}\"" if '"' not in source
                      else f"quote the expression: '{source}'")
        raise _at(node, shown, f"YAML tag {tag!r} is not allowed",
                  "workflow files hold plain values only: text, numbers, booleans, lists and mappings")
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[Any, yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise _at(key, shown, "a mapping key must be a plain name, not a list or mapping", None)
        if key.tag == _STD + "merge":
            continue
        if key.tag != _STD + "str" and not key.style:
            what = {_STD + "bool": "a boolean", _STD + "null": "null", _STD + "int": "a number",
                    _STD + "float": "a number"}.get(key.tag, "not a string")
            extra = " (YAML 1.1 reads yes/no/on/off as booleans)" if key.value.lower() in _YAML11_WORDS else ""
            raise _at(key, shown, f"key {key.value!r} is read by YAML as {what}{extra}",
                      f"quote it: '{key.value}'" if "\n" not in key.value else None)
        if key.value in seen:
            first = seen[key.value].start_mark.line + 1
            raise _at(key, shown, f"duplicate key {key.value!r}",
                      f"first defined on line {first}; YAML would silently keep only the last one")
        seen[key.value] = key


def _at(node: yaml.Node, shown: str, message: str, hint: str | None) -> DefinitionError:
    return DefinitionError(message, file=shown, line=node.start_mark.line + 1,
                           col=node.start_mark.column + 1, hint=hint)
