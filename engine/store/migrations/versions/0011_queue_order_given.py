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


def _postgres() -> bool:
    from caseflow.store.backend import backend_of
    return backend_of(op.get_bind()).name == "postgresql"


def _create(checked: bool) -> list[str]:
    """The trigger: `checked`, only when the new row's order is not the right one already (this
    revision); else always (0010's)."""
    postgres = _postgres()
    differs = f"NEW.created_at IS NULL OR NEW.due_at {'IS DISTINCT FROM' if postgres else 'IS NOT'} {NEAREST}"
    if postgres:
        body = f"IF {differs} THEN {UPDATE}; END IF" if checked else UPDATE
        return [f"CREATE FUNCTION case_queue_order() RETURNS trigger AS $$ BEGIN {body}; RETURN NULL; END $$ "
                "LANGUAGE plpgsql",
                "CREATE TRIGGER case_queue_order AFTER INSERT ON case_queue FOR EACH ROW "
                "EXECUTE FUNCTION case_queue_order()"]
    when = f" WHEN {differs}" if checked else ""
    return [f"CREATE TRIGGER case_queue_order AFTER INSERT ON case_queue FOR EACH ROW{when} BEGIN {UPDATE}; END"]


def _drop() -> list[str]:
    if _postgres():
        return ["DROP TRIGGER case_queue_order ON case_queue", "DROP FUNCTION case_queue_order()"]
    return ["DROP TRIGGER case_queue_order"]


def upgrade() -> None:
    for statement in _drop() + _create(checked=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _drop() + _create(checked=False):
        op.execute(statement)
