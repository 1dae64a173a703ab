"""Initial schema: definitions, cases, the hash-chained audit log and its guards.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Why: the first version of caseflow's store. The audit, attempts and
checkpoints tables are append-only, and the database itself enforces it with
triggers that refuse UPDATE and DELETE, so not even a script that bypasses the
engine can quietly rewrite history (audit verify catches what the triggers
cannot: someone who drops them first).
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit", "attempts", "checkpoints")


def upgrade() -> None:
    op.create_table('attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=True),
    sa.Column('workflow', sa.String(length=64), nullable=True),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('error', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('effective_at', sa.String(length=32), nullable=False),
    sa.Column('recorded_at', sa.String(length=32), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('audit',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('workflow', sa.String(length=64), nullable=False),
    sa.Column('definition', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('from_state', sa.String(length=64), nullable=True),
    sa.Column('to_state', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('roles', sa.Text(), nullable=False),
    sa.Column('changes', sa.Text(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('effective_at', sa.String(length=32), nullable=False),
    sa.Column('recorded_at', sa.String(length=32), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'seq', name='uq_audit_case_seq')
    )
    op.create_index('ix_audit_actor', 'audit', ['actor'], unique=False)
    op.create_index('ix_audit_effective', 'audit', ['effective_at'], unique=False)
    op.create_index('ix_audit_workflow_event', 'audit', ['workflow', 'event'], unique=False)
    op.create_table('case_keys',
    sa.Column('workflow', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=512), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('workflow', 'field', 'value')
    )
    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('heads', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('decision_counts',
    sa.Column('workflow', sa.String(length=64), nullable=False),
    sa.Column('decision', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('workflow', 'decision', 'key', 'period')
    )
    op.create_table('definitions',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('workflow', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    op.create_index(op.f('ix_definitions_workflow'), 'definitions', ['workflow'], unique=False)
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('delivered_at', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_outbox_case_id'), 'outbox', ['case_id'], unique=False)
    op.create_table('timers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.String(length=32), nullable=False),
    sa.Column('due_at', sa.String(length=32), nullable=True),
    sa.Column('next_at', sa.String(length=32), nullable=True),
    sa.Column('warned', sa.Integer(), server_default='0', nullable=False),
    sa.Column('provisional', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('paused_at', sa.String(length=32), nullable=True),
    sa.Column('remaining_s', sa.Float(), nullable=True),
    sa.Column('ended_at', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'name', name='uq_timer_case_name')
    )
    op.create_index(op.f('ix_timers_case_id'), 'timers', ['case_id'], unique=False)
    op.create_index('ix_timers_next_at', 'timers', ['next_at'], unique=False)
    op.create_table('cases',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('workflow', sa.String(length=64), nullable=False),
    sa.Column('definition', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=64), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('signoffs', sa.Text(), server_default='[]', nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('parent_case', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['definition'], ['definitions.sha256'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_cases_workflow_state', 'cases', ['workflow', 'state'], unique=False)

    install_append_only_triggers()


def install_append_only_triggers() -> None:
    """Refuse UPDATE and DELETE on the log tables, in the database itself."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("""
            CREATE OR REPLACE FUNCTION caseflow_append_only() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION 'caseflow: % on % is not allowed: the log is append-only', TG_OP, TG_TABLE_NAME;
            END $$ LANGUAGE plpgsql""")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION caseflow_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION caseflow_append_only()")
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, 'caseflow: {verb} on {table} is not allowed: "
                           f"the log is append-only'); END")


def downgrade() -> None:
    for table in ("cases", "timers", "outbox", "definitions", "decision_counts", "checkpoints",
                  "case_keys", "audit", "attempts"):
        op.drop_table(table)
