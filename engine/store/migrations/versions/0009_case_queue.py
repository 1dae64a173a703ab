"""The work queues of each open case, so the inbox is one index-exact query.

Revision ID: 0009_case_queue
Revises: 0008_chain_head
Create Date: 2026-12-01

Why: the inbox found department work by state and then dropped, in Python, the
cases whose guards sent them to another department (issue #16: 1,600 candidates
for 120 rows at 10k cases), and named only the first signer of an `order: any`
sign-off. `case_queue` holds, per open case, every queue it is in — a role id, or
`@user` for its assignee — written by the runtime with every write of the case
(runtime/queue.py). The inbox reads it through (queue, workflow, case_id).

Existing open cases get their queues computed from their own definition version
(the stored text, compiled under the org chart in force) by the same code.
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0009_case_queue"
down_revision = "0008_chain_head"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_queue",
        sa.Column("case_id", sa.String(32), primary_key=True),
        sa.Column("queue", sa.String(80), primary_key=True),
        sa.Column("workflow", sa.String(64), nullable=False),
    )
    op.create_index("ix_case_queue_queue", "case_queue", ["queue", "workflow", "case_id"])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    if not conn.execute(sa.text("SELECT 1 FROM cases LIMIT 1")).first():
        return                                    # a new database: nothing to compute
    from caseflow.catalog import Catalog, default_dir
    from caseflow.definition.compile import definition_from_text
    from caseflow.errors import DefinitionError, DefinitionErrors
    from caseflow.runtime.queue import queues, rows

    stored = conn.execute(sa.text("SELECT org_text, calendars_text FROM orgs ORDER BY id DESC LIMIT 1")).first()
    catalog = Catalog.from_texts(default_dir(), stored[0], stored[1]) if stored else Catalog.load()
    table = sa.table("case_queue", sa.column("case_id"), sa.column("queue"), sa.column("workflow"))
    for sha, text, path in conn.execute(sa.text("SELECT sha256, text, path FROM definitions")).all():
        try:
            d = definition_from_text(text, catalog.org, catalog.calendars, f"{path}@{sha[:12]}")
        except (DefinitionError, DefinitionErrors):
            continue                              # cannot run under this org chart: `show` cannot either
        open_states = [s for s, st in d.states.items() if not st.final]
        found = conn.execute(sa.text("SELECT id, state, data, signoffs, assignee FROM cases "
                                     "WHERE definition = :d").bindparams(d=sha)).all()
        batch = []
        for case_id, state, data, signoffs, assignee in found:
            if state not in open_states:
                continue
            batch += rows(d, case_id, queues(d, state, json.loads(data), json.loads(signoffs or "[]"), assignee))
            if len(batch) >= 5000:
                conn.execute(table.insert(), batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)


def downgrade() -> None:
    op.drop_index("ix_case_queue_queue", "case_queue")
    op.drop_table("case_queue")
