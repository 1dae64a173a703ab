"""The audit-chain head kept on the case row.

Revision ID: 0008_chain_head
Revises: 0007_migration_runs
Create Date: 2026-12-01

Why: every action appended its audit rows after a SELECT of the case's last
audit row (one more statement, and on PostgreSQL one more round trip). The
case row now carries `audit_seq` and `audit_hash`, the seq and hash of its last
audit row, written in the same transaction as the rows themselves
(`audit/chain.py`); the action reads them with the snapshot. `audit verify`
checks that they name the case's last row.

Existing cases get their head from their last audit row, in one UPDATE on the
server (memory does not grow with the number of cases).
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_chain_head"
down_revision = "0007_migration_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("audit_seq", sa.Integer, nullable=True))
        batch.add_column(sa.Column("audit_hash", sa.String(64), nullable=True))
    op.execute("UPDATE cases SET "
               "audit_seq = (SELECT max(a.seq) FROM audit a WHERE a.case_id = cases.id), "
               "audit_hash = (SELECT a.hash FROM audit a WHERE a.case_id = cases.id ORDER BY a.seq DESC LIMIT 1)")


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("audit_hash")
        batch.drop_column("audit_seq")
