"""Migration runs: each dry run, run and revert of a migration plan, with its plan and verdicts.

Revision ID: 0007_migration_runs
Revises: 0006_assignment
Create Date: 2026-12-01

Why: moving open cases to a new workflow version (issue #19) must be reviewable
after the fact: which plan (its full text and sha256), who ran it, when, and what
each case's verdict was. The `migrate` audit rows are the evidence per case; this
table holds what a run as a whole decided, and lets `migrate revert RUN` name it.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_migration_runs"
down_revision = "0006_assignment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "migration_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("from_sha", sa.String(64), nullable=False),
        sa.Column("to_sha", sa.String(64), nullable=False),
        sa.Column("plan_sha", sa.String(64), nullable=False),
        sa.Column("plan_text", sa.Text, nullable=False),
        sa.Column("reverts", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("os_user", sa.String(64), nullable=True),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32), nullable=True),
        sa.Column("counts", sa.Text, nullable=False, server_default="{}"),
        sa.Column("verdicts", sa.Text, nullable=False, server_default="[]"),
    )
    op.create_index("ix_migration_runs_workflow", "migration_runs", ["workflow", "id"])


def downgrade() -> None:
    op.drop_index("ix_migration_runs_workflow", "migration_runs")
    op.drop_table("migration_runs")
