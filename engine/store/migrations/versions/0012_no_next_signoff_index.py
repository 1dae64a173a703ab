"""The index on `cases.next_signoff_role` dropped: no query reads through it any more.

Revision ID: 0012_no_next_signoff_index
Revises: 0011_queue_order_given
Create Date: 2026-12-01

Why: the inbox found the cases waiting for a signer's role through this index until
revision 0009, when the work queues (`case_queue`) took over; nothing has queried by
the column since. It still cost every step that changes whose sign-off a case waits
for (each sign-off, every move into or out of a signing state) an index write: on
SQLite a page per commit, on PostgreSQL an index entry for every new row version of
the case (a step changes `updated_at`, which is indexed, so none is a HOT update).
The column stays, kept right by every write: dropping it would rebuild the table on SQLite
for nothing a step pays for.
"""
from alembic import op

revision = "0012_no_next_signoff_index"
down_revision = "0011_queue_order_given"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_cases_next_signoff", table_name="cases")


def downgrade() -> None:
    op.create_index("ix_cases_next_signoff", "cases", ["next_signoff_role"])
