"""Assignment and the work queue: who holds a case, and whose sign-off is next.

Revision ID: 0006_assignment
Revises: 0005_evidence
Create Date: 2026-12-01

Why: operators need "what is waiting for me" without opening every case
(issue #16). Four columns on `cases`:
- `assignee`, `assigned_at`: who holds the case since when (assign / claim / release);
- `work_started_at`: when the assignee started working it (claim, or their first
  action after an assignment), so waiting time and working time can be told apart;
- `next_signoff_role`: the role whose sign-off the case waits for (NULL when none),
  written by the runtime in the one place sign-offs are written.
Two indexes serve the inbox query: (assignee, workflow, definition, state) for
"assigned to me" and for "unassigned in a state my roles act on", and
(next_signoff_role) for "my sign-off is next".

Existing cases get `next_signoff_role` computed from their stored signatures and
the sign-off chain of their own definition version (read from the YAML text kept
in `definitions`).
"""
import json

import sqlalchemy as sa
import yaml
from alembic import op

revision = "0006_assignment"
down_revision = "0005_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("assignee", sa.String(64), nullable=True))
        batch.add_column(sa.Column("assigned_at", sa.String(32), nullable=True))
        batch.add_column(sa.Column("work_started_at", sa.String(32), nullable=True))
        batch.add_column(sa.Column("next_signoff_role", sa.String(64), nullable=True))
    op.create_index("ix_cases_queue", "cases", ["assignee", "workflow", "definition", "state"])
    op.create_index("ix_cases_next_signoff", "cases", ["next_signoff_role"])
    _backfill_next_signoff()


def _backfill_next_signoff() -> None:
    conn = op.get_bind()
    for sha, text in conn.execute(sa.text("SELECT sha256, text FROM definitions")).all():
        doc = yaml.safe_load(text) or {}
        for t in doc.get("transitions") or []:
            chain = (t.get("signoffs") or {}).get("roles") or []
            if not chain:
                continue
            sources = t["from"] if isinstance(t["from"], list) else [t["from"]]
            rows = conn.execute(sa.text("SELECT id, state, signoffs FROM cases WHERE definition = :d"),
                                {"d": sha}).all()
            for case_id, state, signoffs in rows:
                if state not in sources:
                    continue
                done = [s["role"] for s in json.loads(signoffs or "[]")]
                if len(done) >= len(chain):
                    continue
                role = next((r for r in chain if r not in done), chain[0])
                conn.execute(sa.text("UPDATE cases SET next_signoff_role = :r WHERE id = :i"),
                             {"r": role, "i": case_id})


def downgrade() -> None:
    op.drop_index("ix_cases_next_signoff", "cases")
    op.drop_index("ix_cases_queue", "cases")
    with op.batch_alter_table("cases") as batch:
        for name in ("next_signoff_role", "work_started_at", "assigned_at", "assignee"):
            batch.drop_column(name)
