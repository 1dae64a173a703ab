"""Evidence: each audit row names the case version it produced; keyed MACs on every log row.

Revision ID: 0005_evidence
Revises: 0004_authority
Create Date: 2026-12-01

Why: `audit verify` replays a case's log to rebuild the case row; the version
a commit produced cannot be inferred from the rows alone (a final sign-off
writes two rows in one commit), so every row records it. `mac` holds an
HMAC-SHA256 of the row's hash under a key the database owner does not hold
(CASEFLOW_AUDIT_KEY_FILE): with it, rows appended with recomputed hashes are
caught. Both are nullable: rows written before stay valid as they were.
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_evidence"
down_revision = "0004_authority"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("case_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ("checkpoints", "attempts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("mac")
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("mac")
        batch.drop_column("case_version")
