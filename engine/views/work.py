"""What a case holds for one person: the inbox group rule, in one place.

`caseflow show` states it for the case it shows (its `inbox` field) and `caseflow inbox`
lists the cases where it is not None, so the two can never disagree (docs/inbox.md):

  assigned     assigned to me (always listed, first)
  signoff      a sign-off I may give now (the next of a sequential chain; any unsigned
               role of an `order: any` one), unless I signed already and signers must differ
  ready        I may fire one of its to-do events now
  needs_input  I may fire one once the named fields are given
  to_claim     only the assignment is missing: I may claim it (assignee_only events)
  to_assign    unassigned, waiting for an assignee_only event, and I assign for the workflow

Cases assigned to someone else are theirs: they hold only the sign-off for a signer.
`events` is `views.cases.events` for this person (to-do events only count: `inbox: true`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from caseflow.definition.model import Person
from caseflow.runtime.turns import eligible_signers

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine
    from caseflow.runtime.snapshot import Snapshot

GROUPS = ("assigned", "signoff", "ready", "needs_input", "to_claim", "to_assign")
LABELS_ZH = {"assigned": "分派给我", "signoff": "待我签字", "ready": "可办理", "needs_input": "待补充信息",
             "to_claim": "待认领", "to_assign": "待分派"}


def work_for(engine: Engine, snap: Snapshot, person: Person,
             events: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """{group, group_label_zh, ready, needs_input, signoff} of this case for this person, or None."""
    d = snap.definition
    if d.states[snap.state].final:
        return None
    evs = [e for e in events if e["inbox"]]
    ready = [e for e in evs if e["allowed"]]
    needs = [e for e in evs if not e["allowed"] and all(m.startswith("fields: ") for m in e["missing"])]
    claim = [e for e in evs if snap.assignee is None and e["assignee_only"]
             and all(m.startswith(("assignee: ", "fields: ")) for m in e["missing"])]
    signoff = my_signoff(engine, snap, person)
    if snap.assignee == person.id:
        group = "assigned"
    elif signoff:
        group = "signoff"
    elif snap.assignee is not None:
        return None
    elif ready:
        group = "ready"
    elif needs:
        group = "needs_input"
    elif claim:
        group = "to_claim"
    elif person.roles & d.assign_roles and any(e["assignee_only"] for e in evs):
        group = "to_assign"
    else:
        return None
    return {"group": group, "group_label_zh": LABELS_ZH[group],
            "ready": [{"event": e["event"], "label_zh": e["label_zh"], "inputs": e["inputs"]} for e in ready],
            "needs_input": [{"event": e["event"], "label_zh": e["label_zh"], "fields": _fields(e["missing"])}
                            for e in needs],
            "signoff": signoff}


def my_signoff(engine: Engine, snap: Snapshot, person: Person) -> dict[str, str] | None:
    """The sign-off this person may give now, in which role (as `caseflow sign` would choose it)."""
    t = snap.definition.signoff_transition(snap.state)
    if t is None or t.signoffs is None or len(snap.signoffs) >= len(t.signoffs.roles):
        return None
    role = next((r for r in eligible_signers(t, snap.signoffs) if r in person.roles), None)
    if role is None:
        return None
    if t.signoffs.distinct_people and any(s["by"] == person.id for s in snap.signoffs):
        return None
    roles = engine.catalog.org.roles
    return {"role": role, "label_zh": roles[role].label_zh if role in roles else role}


def _fields(missing: list[str]) -> list[str]:
    names: list[str] = []
    for m in missing:
        text = m.removeprefix("fields: ").removesuffix(" (give with --set)")
        names += [n.strip() for n in text.split(",") if n.strip()]
    return names


__all__ = ["work_for", "my_signoff", "GROUPS", "LABELS_ZH"]
