"""Indexed reads: reports and lists that cost what they return.

Revision ID: 0002_indexed_reads
Revises: 0001
Create Date: 2026-12-01

Why (issue #18): reports and lists must cost what they return, not what the
database holds.
- `cases.received_at`: when the case was received (its `received_at` field, else
  `created_at`) as fixed-width UTC text, indexed with the workflow: the monthly
  complaint statistics read only that month's cases.
- indexes for `list` (newest first, optionally per workflow), `list --overdue`
  (breached timers) and `sla status` (SLA clocks by start time).
Existing rows are backfilled.
"""
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002_indexed_reads"
down_revision = "0001"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("received_at", sa.String(32), nullable=True))
    conn = op.get_bind()
    cases = sa.table("cases", sa.column("id"), sa.column("data"), sa.column("created_at"), sa.column("received_at"))
    page = sa.select(cases.c.id, cases.c.data, cases.c.created_at).order_by(cases.c.id).limit(BATCH)
    fill = sa.update(cases).where(cases.c.id == sa.bindparam("b_id")).values(received_at=sa.bindparam("b_received"))
    last = None
    while True:                                  # page by id: bounded memory on a large database
        rows = conn.execute(page if last is None else page.where(cases.c.id > last)).all()
        if not rows:
            break
        conn.execute(fill, [{"b_id": r.id, "b_received": _received(r.data, r.created_at)} for r in rows])
        last = rows[-1].id
    op.create_index("ix_cases_workflow_received", "cases", ["workflow", "received_at"])
    op.create_index("ix_cases_updated", "cases", ["updated_at", "id"])
    op.create_index("ix_cases_workflow_updated", "cases", ["workflow", "updated_at", "id"])
    op.create_index("ix_timers_status_case", "timers", ["status", "case_id"])
    op.create_index("ix_timers_kind_started", "timers", ["kind", "started_at"])


def _received(data: str, created_at: str) -> str | None:
    """As caseflow.values.sortable_time wrote it in this revision (a migration does not follow later code)."""
    try:
        value = json.loads(data).get("received_at")
    except (ValueError, AttributeError):
        value = None
    for text in (value, created_at):
        if isinstance(text, str) and text:
            try:
                moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
            return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return None


def downgrade() -> None:
    for name, table in (("ix_timers_kind_started", "timers"), ("ix_timers_status_case", "timers"),
                        ("ix_cases_workflow_updated", "cases"), ("ix_cases_updated", "cases"),
                        ("ix_cases_workflow_received", "cases")):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("received_at")
