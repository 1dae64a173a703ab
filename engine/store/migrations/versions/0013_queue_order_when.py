"""The work-queue order triggers run only for a row change that can move the order.

Revision ID: 0013_queue_order_when
Revises: 0012_no_next_signoff_index
Create Date: 2026-12-02

Why: the triggers of 0010/0011 ran their function for every row they watch, and on
PostgreSQL a trigger function is a PL/pgSQL call with its own SQL statements: on the
refund path they were about a third of the server's time per step. Most of those calls
changed nothing.

- A new queue row written by a statement that works out its order itself — the case's
  nearest pending SLA deadline as that statement sees it, and its created_at (a step, an
  open, a linked case; an import, from the rows it sends with it) — is right as written:
  a clock the same statement or a later one moves puts it right through the timers'
  triggers. Such a statement now says so (`ordered` = TRUE, a new column read by nothing
  else), and the row trigger checks only the rows of other writers (assignment, `migrate
  run`, any SQL of one's own), rewriting them where their order is not the right one, as
  0011's did.
- A case's order changes only when one of its SLA clocks starts or stops counting
  (running or breached against anything else) or a counting clock's due_at moves. The
  timers' triggers now say so in a WHEN clause on the row's own values, which the database
  checks before it calls anything: a timer that is not an SLA clock, a warning, a breach
  of a running clock, a clock written with its deadline unchanged run nothing. (0010's
  UPDATE trigger also skipped a clock whose kind changed away from 'sla'; it now rewrites.)

`cases_queue_order` (a case row giving its created_at to queue rows written before it) stays.
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_queue_order_when"
down_revision = "0012_no_next_signoff_index"
branch_labels = None
depends_on = None

NEAREST = ("(SELECT MIN(t.due_at) FROM timers t WHERE t.case_id = {case} AND t.kind = 'sla' "
           "AND t.status IN ('running', 'breached'))")
NEW_ROW = (f"UPDATE case_queue SET due_at = {NEAREST.format(case='NEW.case_id')}, created_at = COALESCE("
           f"NEW.created_at, (SELECT c.created_at FROM cases c WHERE c.id = NEW.case_id)) "
           f"WHERE case_id = NEW.case_id AND queue = NEW.queue")
# 0011's check: the new row's order is not the right one already (NULL-safe: a due_at of '' is never stored)
DIFFERS = f"NEW.created_at IS NULL OR COALESCE(NEW.due_at, '') <> COALESCE({NEAREST.format(case='NEW.case_id')}, '')"


def _counts(row: str) -> str:
    """The timer `row` (NEW or OLD) is an SLA clock that counts toward the order (never NULL: both NOT NULL)."""
    return f"({row}.kind = 'sla' AND {row}.status IN ('running', 'breached'))"


def _restamp(row: str, sla_only: bool) -> str:
    """The case's queue rows, where their deadline differs; `sla_only`: only for an SLA clock (0010's)."""
    nearest = NEAREST.format(case=f"{row}.case_id")
    only = f" AND {row}.kind = 'sla'" if sla_only else ""
    return (f"UPDATE case_queue SET due_at = {nearest} WHERE case_id = {row}.case_id{only} "
            f"AND COALESCE(due_at, '') <> COALESCE({nearest}, '')")


MOVES = (f"{_counts('OLD')} <> {_counts('NEW')} OR "
         f"({_counts('NEW')} AND COALESCE(OLD.due_at, '') <> COALESCE(NEW.due_at, ''))")
# (name, table, event, body, check inside (a subquery: SQLite's WHEN, PostgreSQL's IF), WHEN on the row alone)
Trigger = tuple[str, str, str, str, "str | None", "str | None"]
NOW: list[Trigger] = [
    ("case_queue_order", "case_queue", "INSERT", NEW_ROW, DIFFERS, "NEW.ordered IS NULL"),
    ("timers_queue_order_ins", "timers", "INSERT", _restamp("NEW", False), None, _counts("NEW")),
    ("timers_queue_order_upd", "timers", "UPDATE OF due_at, status, kind", _restamp("NEW", False), None, MOVES),
    ("timers_queue_order_del", "timers", "DELETE", _restamp("OLD", False), None, _counts("OLD"))]
BEFORE: list[Trigger] = [    # 0011's on case_queue, 0010's on timers
    ("case_queue_order", "case_queue", "INSERT", NEW_ROW, DIFFERS, None),
    ("timers_queue_order_ins", "timers", "INSERT", _restamp("NEW", True), None, None),
    ("timers_queue_order_upd", "timers", "UPDATE OF due_at, status, kind", _restamp("NEW", True), None, None),
    ("timers_queue_order_del", "timers", "DELETE", _restamp("OLD", True), None, None)]


def _install(triggers: list[Trigger], drop: bool = True) -> None:
    """Each trigger (dropped first, if `drop`) created as given."""
    from caseflow.store.backend import backend_of
    backend = backend_of(op.get_bind())
    for name, table, event, body, when, only in triggers:
        create, dropped = backend.row_trigger_ddl(name, table, event, body, when=when, only=only)
        for statement in (dropped if drop else []) + create:
            op.execute(statement)


def upgrade() -> None:
    op.add_column("case_queue", sa.Column("ordered", sa.Boolean, nullable=True))
    _install(NOW)


def downgrade() -> None:
    from caseflow.store.backend import backend_of
    _, drop = backend_of(op.get_bind()).row_trigger_ddl("case_queue_order", "case_queue", "INSERT", NEW_ROW)
    for statement in drop:                  # (it reads the column)
        op.execute(statement)
    op.execute("ALTER TABLE case_queue DROP COLUMN ordered")    # (SQLite ≥ 3.35; a batch rebuild trips on
    # the renamed table, which cases_queue_order names)
    _install(BEFORE[:1], drop=False)
    _install(BEFORE[1:])
