"""The tables (SQLAlchemy Core): definitions, cases, case_queue, audit, attempts, timers, SLA windows, outbox,
keys, counters, checkpoints, settings (simulation or live), orgs (the org chart versions) and migration runs.

Migrations (store/migrations/) create them; the runtime reads and writes them through Core. The
tables a read never touches (`@_later`: case_queue, outbox, case_keys, decision_counts, checkpoints,
migration_runs) are built on first use, so `caseflow show` does not pay for them; `metadata` has
every table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa

_metadata = sa.MetaData()      # complete (every table built) as `metadata`, see __getattr__
_LATER: dict[str, Callable[[], sa.Table]] = {}
_building = threading.Lock()


def _later(build: Callable[[], sa.Table]) -> Callable[[], sa.Table]:
    """A table that reads such as `caseflow show` never touch: built on first use, not at import
    (a Table costs ~50 µs a column at every CLI start, issue #18)."""
    _LATER[build.__name__.removeprefix("_")] = build
    return build


def __getattr__(name: str) -> sa.Table | sa.MetaData:
    with _building:
        if name == "metadata":              # migrations, create_all: every table
            for later in list(_LATER):
                globals()[later] = _LATER.pop(later)()
            globals()["metadata"] = _metadata
            return _metadata
        if name in globals():                # built by another thread meanwhile
            return globals()[name]
        build = _LATER.pop(name, None)
        if build is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        table = globals()[name] = build()
        return table


if TYPE_CHECKING:
    metadata: sa.MetaData
    case_queue: sa.Table
    outbox: sa.Table
    case_keys: sa.Table
    decision_counts: sa.Table
    checkpoints: sa.Table
    migration_runs: sa.Table

definitions = sa.Table(
    "definitions", _metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("workflow", sa.String(64), nullable=False, index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

cases = sa.Table(
    "cases", _metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("workflow", sa.String(64), nullable=False),
    sa.Column("definition", sa.String(64), sa.ForeignKey("definitions.sha256"), nullable=False),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("signoffs", sa.Text, nullable=False, server_default="[]"),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("parent_case", sa.String(32), nullable=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("received_at", sa.String(32), nullable=True),     # values.sortable_time: month reports use the index
    sa.Index("ix_cases_workflow_state", "workflow", "state"),
    sa.Index("ix_cases_workflow_received", "workflow", "received_at"),
    sa.Index("ix_cases_updated", "updated_at", "id"),
    sa.Index("ix_cases_workflow_updated", "workflow", "updated_at", "id"),
    sa.Column("assignee", sa.String(64), nullable=True),            # who holds the case (assign/claim)
    sa.Column("assigned_at", sa.String(32), nullable=True),
    sa.Column("work_started_at", sa.String(32), nullable=True),     # claim / the assignee's first action
    sa.Column("next_signoff_role", sa.String(64), nullable=True),   # whose sign-off the case waits for
    sa.Column("audit_seq", sa.Integer, nullable=True),              # the chain head: seq and hash of the case's
    sa.Column("audit_hash", sa.String(64), nullable=True),          # last audit row (same transaction)
    sa.Index("ix_cases_queue", "assignee", "workflow", "definition", "state"),
)

# The work queues each open case is in (runtime/queue.py): a role id, or "@user" for its assignee, with
# the inbox's order: the case's nearest running/breached SLA deadline (NULL: none) and its created_at.
# Written with the case on every write (due_at on every write that touches a clock); the inbox reads
# it through ix_case_queue_order only, the first rows of each queue in inbox order.


@_later
def _case_queue() -> sa.Table:
    return sa.Table(
        "case_queue", _metadata,
        sa.Column("case_id", sa.String(32), primary_key=True),
        sa.Column("queue", sa.String(80), primary_key=True),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("due_at", sa.String(32), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=True),
        sa.Column("ordered", sa.Boolean, nullable=True),    # TRUE: its writer worked out the order (0013)
        sa.Index("ix_case_queue_order", "queue", "workflow", "due_at", "created_at", "case_id"),
    )


audit = sa.Table(
    "audit", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(32), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("workflow", sa.String(64), nullable=False),
    sa.Column("definition", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("from_state", sa.String(64), nullable=True),
    sa.Column("to_state", sa.String(64), nullable=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("changes", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("effective_at", sa.String(32), nullable=False),
    sa.Column("recorded_at", sa.String(32), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("org", sa.String(64), nullable=True),             # org version (orgs.sha256) in force
    sa.Column("os_user", sa.String(64), nullable=True),         # the OS account that ran the command
    sa.Column("case_version", sa.Integer, nullable=True),     # the case version the row's commit produced
    sa.Column("mac", sa.String(64), nullable=True),           # HMAC of hash under the audit key (keyed mode)
    sa.UniqueConstraint("case_id", "seq", name="uq_audit_case_seq"),
    sa.Index("ix_audit_actor", "actor"),
    sa.Index("ix_audit_effective", "effective_at"),
    sa.Index("ix_audit_workflow_event", "workflow", "event"),
)

attempts = sa.Table(
    "attempts", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64), nullable=True),
    sa.Column("workflow", sa.String(64), nullable=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("error", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("effective_at", sa.String(32), nullable=False),
    sa.Column("recorded_at", sa.String(32), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("os_user", sa.String(64), nullable=True),
    sa.Column("mac", sa.String(64), nullable=True),
)

timers = sa.Table(
    "timers", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # (not redundant with uq_timer_case_name: without it SQLite reads a case's nearest SLA deadline —
    # `kind = 'sla' AND case_id = ?`, the queue triggers' — through ix_timers_kind_started, every SLA clock)
    sa.Column("case_id", sa.String(32), nullable=False, index=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),            # sla | timer
    sa.Column("status", sa.String(16), nullable=False),         # running paused met breached fired cancelled
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("due_at", sa.String(32), nullable=True),          # NULL while paused
    sa.Column("next_at", sa.String(32), nullable=True),         # next warning or the due time; what the sweeper scans
    sa.Column("warned", sa.Integer, nullable=False, server_default="0"),
    sa.Column("provisional", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("paused_at", sa.String(32), nullable=True),
    sa.Column("remaining_s", sa.Float, nullable=True),          # working/clock seconds left while paused
    sa.Column("ended_at", sa.String(32), nullable=True),
    sa.UniqueConstraint("case_id", "name", name="uq_timer_case_name"),
    sa.Index("ix_timers_next_at", "next_at"),
    sa.Index("ix_timers_status_case", "status", "case_id"),
    sa.Index("ix_timers_kind_started", "kind", "started_at"),
)

sla_windows = sa.Table(
    "sla_windows", _metadata,                                   # one row per start/restart of an SLA clock
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(32), nullable=False),
    sa.Column("workflow", sa.String(64), nullable=False),
    sa.Column("clock", sa.String(64), nullable=False),
    sa.Column("opened_at", sa.String(32), nullable=False),
    sa.Column("opened_by", sa.String(16), nullable=False),     # start | restart
    sa.Column("due_at", sa.String(32), nullable=True),         # the deadline as last scheduled
    sa.Column("breached_at", sa.String(32), nullable=True),    # when a sweep recorded the breach
    sa.Column("closed_at", sa.String(32), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),        # NULL while open; met late breached cancelled
    sa.Index("ix_sla_windows_case_clock", "case_id", "clock"),
    sa.Index("ix_sla_windows_workflow_opened", "workflow", "opened_at"),
)


@_later
def _outbox() -> sa.Table:
    return sa.Table(
        "outbox", _metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(32), nullable=False, index=True),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("delivered_at", sa.String(32), nullable=True),
    )


@_later
def _case_keys() -> sa.Table:
    return sa.Table(
        "case_keys", _metadata,
        sa.Column("workflow", sa.String(64), primary_key=True),
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(512), primary_key=True),
        sa.Column("case_id", sa.String(32), nullable=False),
    )


@_later
def _decision_counts() -> sa.Table:
    return sa.Table(
        "decision_counts", _metadata,
        sa.Column("workflow", sa.String(64), primary_key=True),
        sa.Column("decision", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


@_later
def _checkpoints() -> sa.Table:
    return sa.Table(
        "checkpoints", _metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("heads", sa.Text, nullable=False),                # {case_id: [seq, hash]}
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=True),
    )

settings = sa.Table(
    "settings", _metadata,                                      # append-only: mode (simulation | live)
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

orgs = sa.Table(
    "orgs", _metadata,                                          # append-only: the last row is in force
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("org_text", sa.Text, nullable=False),
    sa.Column("calendars_text", sa.Text, nullable=False),
    sa.Column("applied_at", sa.String(32), nullable=False),
    sa.Column("applied_by", sa.String(64), nullable=False),
    sa.Column("os_user", sa.String(64), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
)


@_later
def _migration_runs() -> sa.Table:
    return sa.Table(
        "migration_runs", _metadata,                                # one row per dry run, run or revert of a plan
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),           # dry-run | run | revert
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("from_sha", sa.String(64), nullable=False),
        sa.Column("to_sha", sa.String(64), nullable=False),
        sa.Column("plan_sha", sa.String(64), nullable=False),
        sa.Column("plan_text", sa.Text, nullable=False),
        sa.Column("reverts", sa.Integer, nullable=True),            # the run a revert undoes
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("os_user", sa.String(64), nullable=True),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32), nullable=True),     # NULL while running (or if the runner died)
        sa.Column("counts", sa.Text, nullable=False, server_default="{}"),
        sa.Column("verdicts", sa.Text, nullable=False, server_default="[]"),
        sa.Index("ix_migration_runs_workflow", "workflow", "id"),
    )
