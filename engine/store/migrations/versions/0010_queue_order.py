"""The inbox's order stored with the work queues, so its first page is an index-ordered LIMIT per queue.

Revision ID: 0010_queue_order
Revises: 0009_case_queue
Create Date: 2026-12-01

Why: the inbox listed a person's most urgent cases first by the nearest SLA deadline
computed over `timers` for every case of their queues, so a first page of 50 sorted the
whole queue (thousands of rows at 100,000 open cases; issue #16). Each `case_queue` row
now carries its case's nearest pending SLA deadline (`due_at`: the earliest `due_at` of
its running or breached SLA clocks, NULL when none) and the case's `created_at`, the
tie-break. The index (queue, workflow, due_at, created_at, case_id) replaces (queue,
workflow, case_id): each of a person's queues gives its first rows in inbox order.

The database keeps the two columns right itself, with row triggers: a new queue row takes
them from `timers` and `cases` (a new case gives its created_at to rows written before it);
an INSERT, DELETE or UPDATE of a timer's due_at, status or
kind rewrites its case's queue rows. So every writer of timers — a step (on PostgreSQL
its clock writes are part of its last statement, whose AFTER triggers run once it has
written them all), the sweep, assignment, `migrate run`, bulk import — keeps the order
without a statement of its own.

The queue of an unassigned case an event is reserved for (a guard `actor == FIELD`) is now
`~user`, so that `@user` holds exactly the cases assigned to user (the inbox lists those
first, straight from that queue). Existing rows are renamed and filled in SQL.
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_queue_order"
down_revision = "0009_case_queue"
branch_labels = None
depends_on = None

NEAREST = ("(SELECT MIN(t.due_at) FROM timers t WHERE t.case_id = {case} AND t.kind = 'sla' "
           "AND t.status IN ('running', 'breached'))")


def _triggers() -> list[tuple[list[str], list[str]]]:
    from caseflow.store.backend import backend_of
    backend = backend_of(op.get_bind())

    def restamp(row: str) -> str:                # the case's rows, where their deadline differs
        nearest = NEAREST.format(case=f"{row}.case_id")
        return (f"UPDATE case_queue SET due_at = {nearest} WHERE case_id = {row}.case_id AND {row}.kind = 'sla' "
                f"AND COALESCE(due_at, '') <> COALESCE({nearest}, '')")

    new_row = (f"UPDATE case_queue SET due_at = {NEAREST.format(case='NEW.case_id')}, created_at = "
               f"COALESCE(NEW.created_at, (SELECT c.created_at FROM cases c WHERE c.id = NEW.case_id)) "
               f"WHERE case_id = NEW.case_id AND queue = NEW.queue")
    new_case = ("UPDATE case_queue SET created_at = NEW.created_at WHERE case_id = NEW.id "
                "AND created_at IS NULL")      # queue rows written before their case row (an open on SQLite)
    return [backend.row_trigger_ddl("case_queue_order", "case_queue", "INSERT", new_row),
            backend.row_trigger_ddl("cases_queue_order", "cases", "INSERT", new_case),
            backend.row_trigger_ddl("timers_queue_order_ins", "timers", "INSERT", restamp("NEW")),
            backend.row_trigger_ddl("timers_queue_order_upd", "timers", "UPDATE OF due_at, status, kind",
                                    restamp("NEW")),
            backend.row_trigger_ddl("timers_queue_order_del", "timers", "DELETE", restamp("OLD"))]


def upgrade() -> None:
    with op.batch_alter_table("case_queue") as batch:
        batch.add_column(sa.Column("due_at", sa.String(32), nullable=True))
        batch.add_column(sa.Column("created_at", sa.String(32), nullable=True))
    op.execute("UPDATE case_queue SET queue = '~' || substr(queue, 2) WHERE queue LIKE '@%' AND "
               "(SELECT c.assignee FROM cases c WHERE c.id = case_queue.case_id) IS NULL")
    op.execute(f"UPDATE case_queue SET due_at = {NEAREST.format(case='case_queue.case_id')}, "
               "created_at = (SELECT c.created_at FROM cases c WHERE c.id = case_queue.case_id)")
    op.drop_index("ix_case_queue_queue", "case_queue")
    op.create_index("ix_case_queue_order", "case_queue", ["queue", "workflow", "due_at", "created_at", "case_id"])
    for create, _ in _triggers():
        for statement in create:
            op.execute(statement)


def downgrade() -> None:
    for _, drop in _triggers():
        for statement in drop:
            op.execute(statement)
    op.execute("UPDATE case_queue SET queue = '@' || substr(queue, 2) WHERE queue LIKE '~%'")
    op.drop_index("ix_case_queue_order", "case_queue")
    op.create_index("ix_case_queue_queue", "case_queue", ["queue", "workflow", "case_id"])
    with op.batch_alter_table("case_queue") as batch:
        batch.drop_column("created_at")
        batch.drop_column("due_at")
