"""Whose turn it is on a case: the sign-off it waits for, who may sign now, the assignee rule.

Pure functions of a definition and a snapshot's fields, shared by the write side (runtime/actions.py,
queue.py, assignment.py) and the read side (`show`, the inbox), which imports nothing that writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from caseflow.definition.model import Definition, Transition

if TYPE_CHECKING:
    from caseflow.runtime.snapshot import Snapshot


def pending_signoff_role(d: Definition, state: str, given: list[dict[str, Any]]) -> str | None:
    """The role whose sign-off a case in `state` waits for (stored as cases.next_signoff_role), or None."""
    t = d.signoff_transition(state)
    if t is None or t.signoffs is None or len(given) >= len(t.signoffs.roles):
        return None
    return next_signer_role(t, given)


def next_signer_role(t: Transition, given: list[dict[str, Any]]) -> str:
    assert t.signoffs is not None
    done = [s["role"] for s in given]
    remaining = [r for r in t.signoffs.roles if r not in done] or list(t.signoffs.roles)
    return remaining[0]


def eligible_signers(t: Transition, given: Sequence[Mapping[str, Any]]) -> list[str]:
    """The roles that may sign now: the next one (sequential) or every unsigned one (`order: any`)."""
    assert t.signoffs is not None
    done = {s["role"] for s in given}
    remaining = [r for r in t.signoffs.roles if r not in done]
    return remaining[:1] if t.signoffs.order == "sequential" else remaining


def assignee_problem(snap: Snapshot, t: Transition, user: str) -> str | None:
    """Why `user` may not fire an `assignee_only` transition now (None: they may)."""
    if not t.assignee_only or snap.assignee == user:
        return None
    if snap.assignee is None:
        return f"only the case's assignee may do this and it has none: claim it first (caseflow claim {snap.id})"
    return f"only the assignee {snap.assignee} may do this"


__all__ = ["pending_signoff_role", "next_signer_role", "eligible_signers", "assignee_problem"]
