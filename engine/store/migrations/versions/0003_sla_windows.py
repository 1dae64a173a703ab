"""SLA windows: one row per start/restart of an SLA clock, ended met, late or breached.

Revision ID: 0003_sla_windows
Revises: 0002_indexed_reads
Create Date: 2026-12-01

Why: a clock that restarts (the refund's 每位签字人24小时) kept only how its
last window ended, so a breach of an earlier signer's 24 hours vanished at the
next signature and compliance was over-reported. The table is filled for
existing cases from the audit log, which records every start, restart, breach
and end of every SLA clock: a window opens at each `started`/`restarted` row
(at that row's time) and ends at the next restart, stop or case close; its
outcome is `breached` if a breach row came in between, otherwise `late` or
`met` as the end row (or, for a restart, the deadline) says.
"""
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_sla_windows"
down_revision = "0002_indexed_reads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("workflow", sa.String(length=64), nullable=False),
        sa.Column("clock", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.String(length=32), nullable=False),
        sa.Column("opened_by", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.String(length=32), nullable=True),
        sa.Column("breached_at", sa.String(length=32), nullable=True),
        sa.Column("closed_at", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sla_windows_case_clock", "sla_windows", ["case_id", "clock"], unique=False)
    op.create_index("ix_sla_windows_workflow_opened", "sla_windows", ["workflow", "opened_at"], unique=False)
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("sla_windows")


def _seconds(text: str) -> str:
    """The timers table's whole-second UTC text for any stored ISO time."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def _backfill(conn: sa.Connection) -> None:
    audit = sa.table("audit", sa.column("case_id"), sa.column("seq"), sa.column("workflow"), sa.column("kind"),
                     sa.column("event"), sa.column("changes"), sa.column("note"), sa.column("effective_at"))
    rows = conn.execute(sa.select(audit).where(audit.c.kind == "sla")
                        .order_by(audit.c.case_id, audit.c.event, audit.c.seq)).all()
    windows: list[dict[str, object]] = []
    current: dict[tuple[str, str], dict[str, object]] = {}
    for r in rows:
        key, at = (r.case_id, r.event), _seconds(r.effective_at)
        changes = json.loads(r.changes or "{}")
        status = changes.get("status") if isinstance(changes.get("status"), list) else [None, None]
        due = changes.get("due_at")
        w = current.get(key)
        if status[1] == "running" and isinstance(due, str):            # started / restarted
            if w is not None:
                _end(w, at, case_closed=False)
            w = {"case_id": r.case_id, "workflow": r.workflow, "clock": r.event, "opened_at": at,
                 "opened_by": "restart" if (r.note or "").startswith("restarted") else "start", "due_at": due,
                 "breached_at": None, "closed_at": None, "outcome": None}
            windows.append(w)
            current[key] = w
        elif w is None:
            continue
        elif isinstance(due, list) and len(due) == 2:                   # deadline recomputed
            w["due_at"] = due[1]
        elif status[1] == "breached":
            w["breached_at"] = at
        elif status[1] in ("met", "late", "cancelled"):
            w["outcome"] = "breached" if w["breached_at"] else status[1]
            w["closed_at"] = at
            del current[key]
    if windows:
        conn.execute(sa.table("sla_windows", *(sa.column(c) for c in windows[0])).insert(), windows)


def _end(w: dict[str, object], at: str, case_closed: bool) -> None:
    due = w["due_at"]
    if w["breached_at"]:
        w["outcome"] = "breached"
    elif isinstance(due, str) and at > _seconds(due):
        w["outcome"] = "late"
    else:
        w["outcome"] = "cancelled" if case_closed else "met"
    w["closed_at"] = at
