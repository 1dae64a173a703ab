"""Who may give what at opening, and who may read a workflow's cases: the defaults (deny by default).

- `open_accepts`: the fields an operator may give when opening a case. Declared, or the
  data schema's required fields plus every field nothing downstream writes (no
  transition accepts it, no `set:` effect and no decision outcome writes it). A field a
  later step owns — the responsible person, a penalty, a signature — cannot be pre-filled.
- `read_roles`: who may read the cases. Declared, or every role that appears in the
  workflow: opening, transitions, sign-offs and notification targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from caseflow.definition.model import Action, Clock, Decision, State, Transition


def open_accepts(doc: Mapping[str, Any], fields: Mapping[str, Any], transitions: Iterable[Transition],
                 decisions: Mapping[str, Decision]) -> frozenset[str]:
    if "open_accepts" in doc:
        return frozenset(doc["open_accepts"])
    written: set[str] = set()
    for t in transitions:
        written.update(t.accepts)
        written.update(name for name, _ in t.effects)
    for decision in decisions.values():
        for _, outcome in decision.rules:
            written.update(outcome)
    required = set((doc.get("data") or {}).get("required", []))
    return frozenset(required | (set(fields) - written))


def read_roles(doc: Mapping[str, Any], open_roles: frozenset[str], states: Mapping[str, State],
               transitions: Iterable[Transition], clocks: Iterable[Clock]) -> frozenset[str]:
    if "read_roles" in doc:
        return frozenset(doc["read_roles"])
    roles = set(open_roles)
    actions: list[Action] = [a for s in states.values() for a in s.on_enter]
    for t in transitions:
        roles.update(t.roles)
        actions.extend(t.actions)
    for c in clocks:
        actions.extend(c.actions)
    roles.update(a.value for a in actions if a.kind == "notify")
    return frozenset(roles)


__all__ = ["open_accepts", "read_roles"]
