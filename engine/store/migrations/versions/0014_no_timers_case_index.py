"""The index on `timers.case_id` alone dropped: the unique (case_id, name) index serves every read of it.

Revision ID: 0014_no_timers_case_index
Revises: 0013_queue_order_when
Create Date: 2026-12-02

Why: every query that finds a case's timers by its id (a step's clocks, the sweep's locked
re-read, `migrate run`, the inbox's breach count, the work-queue triggers' nearest deadline)
is an equality on `case_id`, which `uq_timer_case_name` (case_id, name) answers as well: its
first column. The single-column index was one more b-tree entry for every new timer (two
of an imported complaint's 46) and pages for nothing a query needed.
"""
from alembic import op

revision = "0014_no_timers_case_index"
down_revision = "0013_queue_order_when"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_timers_case_id", table_name="timers")


def downgrade() -> None:
    op.create_index("ix_timers_case_id", "timers", ["case_id"])
