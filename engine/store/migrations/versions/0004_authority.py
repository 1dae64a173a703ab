"""Who acted and under which org chart: settings, org versions, org and OS user on log rows.

Revision ID: 0004_authority
Revises: 0003_sla_windows
Create Date: 2026-12-01

Why (issue #13): the database records whether it is a simulation (only then is
`--now` honoured), keeps every org chart + calendars it was run under (text and
sha, like definitions) so `--workflows` cannot swap who holds which role, and
every audit and attempts row names the org version and the OS account that ran
the command. `settings` and `orgs` are append-only like the log.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_authority"
down_revision = "0003_sla_windows"
branch_labels = None
depends_on = None

APPEND_ONLY = ("settings", "orgs")


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "orgs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("org_text", sa.Text, nullable=False),
        sa.Column("calendars_text", sa.Text, nullable=False),
        sa.Column("applied_at", sa.String(32), nullable=False),
        sa.Column("applied_by", sa.String(64), nullable=False),
        sa.Column("os_user", sa.String(64), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.add_column("audit", sa.Column("org", sa.String(64), nullable=True))
    op.add_column("audit", sa.Column("os_user", sa.String(64), nullable=True))
    op.add_column("attempts", sa.Column("os_user", sa.String(64), nullable=True))
    # A database upgraded from before 0004 already holds real work: it is live, never a simulation.
    op.execute(sa.text("INSERT INTO settings (key, value, created_at) "
                       "SELECT 'mode', 'live', 'upgraded from 0003' "
                       "WHERE EXISTS (SELECT 1 FROM definitions)"))
    _append_only()


def _append_only() -> None:
    from caseflow.store.backend import backend_of
    backend = backend_of(op.get_bind())
    for table in APPEND_ONLY:
        for statement in backend.append_only_ddl(table):
            op.execute(statement)


def downgrade() -> None:
    op.drop_column("attempts", "os_user")
    op.drop_column("audit", "os_user")
    op.drop_column("audit", "org")
    op.drop_table("orgs")
    op.drop_table("settings")
