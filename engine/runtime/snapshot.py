"""What an action reads (Snapshot) and what it will write (Change), decided before the write."""

from __future__ import annotations

import secrets
from typing import Any

from caseflow.audit.chain import Entry
from caseflow.definition.model import Definition, Transition
from caseflow.jsontext import decoder
from caseflow.records import field, record


@record(frozen=True)
class Snapshot:
    id: str
    workflow: str
    definition: Definition
    state: str
    data: dict[str, Any]
    signoffs: list[dict[str, Any]]
    version: int
    parent_case: str | None
    created_at: str
    updated_at: str
    assignee: str | None = None
    assigned_at: str | None = None
    work_started_at: str | None = None
    audit_seq: int | None = None           # the chain head read with the case (cases.audit_seq / audit_hash)
    audit_hash: str | None = None
    # the case row as read: a step's UPDATE sets only the columns whose value it changes (store/driver_sql.py)
    stored: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def of_row(cls, row: Any, definition: Definition) -> Snapshot:
        """The one place a case row becomes a Snapshot (Engine.snapshot, the sweeper's locked read)."""
        return cls(row.id, row.workflow, definition, row.state, _LOADS(row.data), _LOADS(row.signoffs),
                   row.version, row.parent_case, row.created_at, row.updated_at,
                   getattr(row, "assignee", None), getattr(row, "assigned_at", None),
                   getattr(row, "work_started_at", None), getattr(row, "audit_seq", None),
                   getattr(row, "audit_hash", None), row)


@record
class Change:
    """Everything one action will write, decided before the write transaction."""

    snap: Snapshot
    transition: Transition | None
    dest: str
    data: dict[str, Any]
    signoffs: list[dict[str, Any]]
    entries: list[Entry]
    inputs: dict[str, Any]
    actor: str
    role: str | None = None        # the one role a sign-off or rejection is given in

    def __init__(self, snap: Snapshot, transition: Transition | None, dest: str, data: dict[str, Any],
                 signoffs: list[dict[str, Any]], entries: list[Entry], inputs: dict[str, Any], actor: str,
                 role: str | None = None) -> None:       # written out: one per action (records.py)
        self.snap, self.transition, self.dest, self.data = snap, transition, dest, data
        self.signoffs, self.entries, self.inputs, self.actor, self.role = signoffs, entries, inputs, actor, role


_LOADS = decoder()
ID_SPACE = 2 ** 32          # a case id's number: 8 hex digits, short enough to read out on the phone


def new_case_id(workflow: str) -> str:
    return case_id_of(workflow, secrets.randbelow(ID_SPACE))


def case_id_of(workflow: str, number: int) -> str:
    """`COM-3F2A0C11`: the workflow's first three letters and the number in 8 hex digits."""
    return f"{workflow[:3].upper()}-{number:08X}"
