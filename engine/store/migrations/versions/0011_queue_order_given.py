"""A new work-queue row that already carries its right order is not rewritten by its trigger.

Revision ID: 0011_queue_order_given
Revises: 0010_queue_order
Create Date: 2026-12-01

Why: `caseflow import` writes a batch's cases, then their clocks, then their queue rows, each
queue row with its case's created_at and nearest SLA deadline already filled in. The row
trigger of 0010 (`case_queue_order`) rewrote every new queue row all the same: a second
write of the row and of its index entries (on PostgreSQL a dead row version each). Now it
first compares: a row whose created_at is given and whose due_at is the case's nearest
pending SLA deadline is left as written — exactly what the UPDATE would have made of it.
Any other new row (a single open writes its queue rows before its clocks are known, a step
writes no due_at) is rewritten as before, so every writer still gets the order right.
"""
from alembic import op

revision = "0011_queue_order_given"
down_revision = "0010_queue_order"
branch_labels = None
depends_on = None

NEAREST = ("(SELECT MIN(t.due_at) FROM timers t WHERE t.case_id = NEW.case_id AND t.kind = 'sla' "
           "AND t.status IN ('running', 'breached'))")
UPDATE = (f"UPDATE case_queue SET due_at = {NEAREST}, created_at = COALESCE(NEW.created_at, "
          f"(SELECT c.created_at FROM cases c WHERE c.id = NEW.case_id)) "
          f"WHERE case_id = NEW.case_id AND queue = NEW.queue")


# The new row's order is not the right one already (NULL-safe: a due_at of '' is never stored).
DIFFERS = f"NEW.created_at IS NULL OR COALESCE(NEW.due_at, '') <> COALESCE({NEAREST}, '')"


def _ddl(checked: bool) -> tuple[list[str], list[str]]:
    """(create, drop) of the trigger: `checked`, only when the new row's order is not the right one
    already (this revision); else always (0010's)."""
    from caseflow.store.backend import backend_of
    return backend_of(op.get_bind()).row_trigger_ddl("case_queue_order", "case_queue", "INSERT", UPDATE,
                                                     when=DIFFERS if checked else None)


def upgrade() -> None:
    create, drop = _ddl(checked=True)
    for statement in drop + create:
        op.execute(statement)


def downgrade() -> None:
    create, drop = _ddl(checked=False)
    for statement in drop + create:
        op.execute(statement)
