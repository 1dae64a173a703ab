"""The compiled, immutable shape of a workflow definition and of the organisation.

Built once per definition version by `definition.py`; the runtime only reads
it. Keeping these as frozen records (as SpiffWorkflow keeps specs apart
from instances) means a case can never change the rules it runs under.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from caseflow.definition.expressions import Compiled, Environment
from caseflow.records import field, record


def sha256_of(text: str) -> str:
    """A definition version's identity: the sha256 of its text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def meaning_of(document: Any) -> str:
    """What a definition says, apart from how it is written: the sha256 of its parsed YAML document.

    Comments, blank lines, indentation, quoting, flow or block style and anchors do not change it;
    any value, key or order of keys does (a `set:` applies in order, so order is kept, not sorted).
    Each value is written with its type, so `1`, `"1"`, `1.0` and `true` differ. Verification
    records are kept by it (verification/record.py): a copy that differs only in comments, such as
    `caseflow init`'s, reuses the proof of the original.
    """
    out: list[str] = []
    _canonical(document, out)
    return hashlib.sha256("".join(out).encode("utf-8")).hexdigest()


def _canonical(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append(f"{{{len(value)}")
        for k, v in value.items():
            _canonical(k, out)
            _canonical(v, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append(f"[{len(value)}")
        for v in value:
            _canonical(v, out)
        out.append("]")
    else:                              # text, numbers, booleans, null, dates: each with its type and length
        shown = value if isinstance(value, str) else repr(value)
        out.append(f"{type(value).__name__}{len(shown)}:{shown}")


@record(frozen=True)
class Guard:
    expr: Compiled
    message: str | None = None


@record(frozen=True)
class Action:
    kind: str                      # escalate | notify | fire | spawn
    value: str                     # text, role, event or workflow id
    message: str | None = None
    when: Compiled | None = None
    spawn_data: Mapping[str, Compiled] = field(default_factory=dict)


@record(frozen=True)
class Signoffs:
    roles: tuple[str, ...]
    order: str                     # sequential | any
    distinct_people: bool
    reject_to: str | None


@record(frozen=True)
class Transition:
    index: int
    event: str
    label_zh: str
    sources: tuple[str, ...]
    to: str
    roles: frozenset[str]
    system: bool
    accepts: tuple[str, ...]
    inputs: Mapping[str, Mapping[str, Any]]
    input_required: tuple[str, ...]
    requires: tuple[str, ...]
    guards: tuple[Guard, ...]
    effects: tuple[tuple[str, Compiled], ...]
    decide: tuple[str, ...]
    actions: tuple[Action, ...]
    signoffs: Signoffs | None
    not_by: tuple[str, ...] = ()   # conflict of interest: the person named in these fields may not take it
    assignee_only: bool = False    # only the case's assignee may fire it
    inbox: bool = True             # a to-do for whoever may fire it (false: fired on request, e.g. a purchase)


@record(frozen=True)
class State:
    id: str
    label_zh: str
    initial: bool
    final: bool
    on_enter: tuple[Action, ...]


@record(frozen=True)
class Trigger:
    """A moment in a case's life: entering/leaving states, or events."""

    enter: frozenset[str] = frozenset()
    leave: frozenset[str] = frozenset()
    event: frozenset[str] = frozenset()

    def matches(self, event: str, source: str, dest: str) -> bool:
        moved = source != dest
        return (event in self.event or (moved and dest in self.enter)
                or (moved and source in self.leave))

    @property
    def empty(self) -> bool:
        return not (self.enter or self.leave or self.event)


@record(frozen=True)
class Duration:
    amount: int
    unit: str                      # minutes hours days weeks months years
    working: bool                  # working hours / working days

    def __str__(self) -> str:
        return f"{self.amount} {'working ' if self.working else ''}{self.unit}"


@record(frozen=True)
class Clock:
    name: str
    label_zh: str
    kind: str                      # sla | timer
    start: Trigger
    stop: Trigger
    pause: Trigger
    resume: Trigger
    restart: Trigger
    from_field: str | None
    when: Compiled | None
    within: Duration
    working_days: str              # elapsed | end_of_day
    warn_at: tuple[int, ...]
    actions: tuple[Action, ...]


@record(frozen=True)
class Decision:
    name: str
    label_zh: str
    count_key: str | None
    count_period: str | None
    count_when: Compiled | None
    rules: tuple[tuple[Compiled, Mapping[str, Any]], ...]


@record(frozen=True, eq=False)
class Definition:
    """One version of one workflow, identified by the sha256 of its text."""

    workflow: str
    label_zh: str
    sha256: str
    text: str
    path: str
    tz: ZoneInfo
    calendar: str | None
    data_schema: Mapping[str, Any]
    fields: Mapping[str, Mapping[str, Any]]
    constants: Mapping[str, Any]
    unique: tuple[str, ...]
    open_roles: frozenset[str]
    states: Mapping[str, State]
    initial: str
    transitions: tuple[Transition, ...]
    decisions: Mapping[str, Decision]
    clocks: tuple[Clock, ...]
    env: Environment = field(repr=False, compare=False)
    open_accepts: frozenset[str] = frozenset()     # fields an operator may give at open (definition/access.py)
    read_roles: frozenset[str] = frozenset()       # who may read the cases (besides can_audit)
    assign_roles: frozenset[str] = frozenset()   # who may assign cases to people (assign, --balance)
    assign_to: tuple[str, ...] = ()              # roles an assignee holds; the first is --balance's default
    summary: tuple[str, ...] = ()                # fields an inbox row shows
    meaning: str = ""                            # meaning_of the parsed file: its content, not its layout

    def transitions_from(self, state: str) -> list[Transition]:
        return list(self._from.get(state, ()))

    def candidates(self, event: str, state: str) -> list[Transition]:
        return [t for t in self._from.get(state, ()) if t.event == event]

    def signoff_transition(self, state: str) -> Transition | None:
        return self._signing.get(state)

    @cached_property
    def _from(self) -> dict[str, tuple[Transition, ...]]:
        """The transitions out of each state, in definition order (built on first use: a step asks often)."""
        found: dict[str, list[Transition]] = {}
        for t in self.transitions:
            for s in dict.fromkeys(t.sources):
                found.setdefault(s, []).append(t)
        return {s: tuple(ts) for s, ts in found.items()}

    @cached_property
    def _signing(self) -> dict[str, Transition]:
        """Each state's first transition that needs sign-offs."""
        return {s: next(t for t in ts if t.signoffs) for s, ts in self._from.items() if any(t.signoffs for t in ts)}

    def label(self, state: str) -> str:
        s = self.states.get(state)
        return f"{s.label_zh}({state})" if s else state

    def event_label(self, event: str) -> str:
        t = next((t for t in self.transitions if t.event == event), None)
        return f"{t.label_zh}({event})" if t and t.label_zh != event else event

    def pii_fields(self) -> dict[str, str]:
        return {k: v["x-pii"] for k, v in self.fields.items() if "x-pii" in v}


@record(frozen=True)
class Person:
    id: str
    name: str
    roles: frozenset[str]
    attributes: Mapping[str, Any]


@record(frozen=True)
class Role:
    id: str
    label_zh: str
    can_unmask: bool
    can_audit: bool = False          # read the audit log, its exports and every workflow's cases
    can_apply_org: bool = False      # `caseflow org apply`: put a new org chart in force
    can_migrate: bool = False        # `caseflow migrate run/revert`: move open cases to another version


@record(frozen=True)
class Org:
    people: Mapping[str, Person]
    roles: Mapping[str, Role]

    def role_label(self, role: str) -> str:
        r = self.roles.get(role)
        return f"{r.label_zh}({role})" if r else role

    def may(self, person: Person, flag: str) -> bool:
        """Does one of the person's roles carry this org.yaml flag (can_unmask, can_audit, can_apply_org,
        can_migrate)?"""
        return any(getattr(self.roles[r], flag) for r in person.roles if r in self.roles)

    def by_login(self, login: str) -> Person | None:
        """The person a database login belongs to: `db_login` in org.yaml, else the same id."""
        return next((p for p in self.people.values() if str(p.attributes.get("db_login", p.id)) == login), None)
