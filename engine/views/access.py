"""Read authorisation: who may see which cases, and who may read the whole log (docs/security.md).

A person sees a workflow's cases if they hold one of its `read_roles` (default: every role
that appears in it) or a role with `can_audit`; the audit log, its exports, reports and
verification need `can_audit`. A refusal is recorded in the attempts log like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from caseflow.errors import NotPermitted

if TYPE_CHECKING:
    from caseflow.definition.model import Definition, Person
    from caseflow.runtime.engine import Engine

def may_read(engine: Engine, person: Person, d: Definition) -> bool:
    """A role of the workflow's `read_roles`, or `can_audit`, lets a person see its cases."""
    return bool(person.roles & d.read_roles) or engine.catalog.org.may(person, "can_audit")


def readable(engine: Engine, person: Person, among: Iterable[str]) -> list[str] | None:
    """Which of the workflows `among` (those with cases) `person` may see; None means every one (can_audit).
    Only these are compiled, not every file in the directory."""
    if engine.catalog.org.may(person, "can_audit"):
        return None
    current = engine.catalog.current
    return [w for w in among if w in current and person.roles & current[w].read_roles]


def require_read(engine: Engine, person: Person, d: Definition, what: str, case_id: str | None = None) -> None:
    if may_read(engine, person, d):
        return
    with engine._recording(what, case_id, person.id, d.workflow):
        held = ", ".join(engine.catalog.org.role_label(r) for r in sorted(person.roles)) or "none"
        raise NotPermitted(person.id, f"read {d.workflow} cases", f"none of its read_roles (holds: {held})")


def require_audit(engine: Engine, person: Person, what: str) -> None:
    """The audit log, its exports, reports and verification need a role with `can_audit`."""
    if engine.catalog.org.may(person, "can_audit"):
        return
    with engine._recording(what, None, person.id):
        held = ", ".join(engine.catalog.org.role_label(r) for r in sorted(person.roles)) or "none"
        raise NotPermitted(person.id, what, f"no role with can_audit in org.yaml (holds: {held})")


__all__ = ["may_read", "readable", "require_read", "require_audit"]
