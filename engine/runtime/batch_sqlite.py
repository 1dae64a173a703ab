"""What an import batch's transaction does on SQLite, which has one writer, beside its held writes
(`runtime/batch_writes.py`): the work-queue order triggers set aside and their work done once, and the
connection's settings for a transaction of thousands of rows. PostgreSQL does neither."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection

from caseflow.store.backend import backend_of
from caseflow.store.driver_text import nearest_deadline

# The work-queue order triggers of revisions 0010/0011 (the order of a new case's queue rows; a timer
# of a new case and the case row itself find no queue rows when the batch sends them first).
QUEUE_TRIGGERS = ("case_queue_order", "cases_queue_order", "timers_queue_order_ins")
_NEAREST = nearest_deadline("case_queue.case_id")
_ORDER_NEW_ROWS = (f"UPDATE case_queue SET due_at = {_NEAREST}, created_at = COALESCE(created_at, "
                   "(SELECT c.created_at FROM cases c WHERE c.id = case_queue.case_id)) "
                   f"WHERE rowid > ? AND (created_at IS NULL OR due_at IS NOT {_NEAREST})")


@contextmanager
def queue_order_by_batch(conn: Connection) -> Iterator[None]:
    """On SQLite, inside the batch's transaction: the work-queue row triggers set aside while the batch
    writes, and what they would have done done once, by one statement over the batch's new queue rows
    (a row left as written only when its order is the right one, as 0011's trigger does); then the
    triggers are created again from their own stored text, in the same transaction. A trigger fires a
    sub-program per row, which cost more than the rows' own INSERTs; SQLite has one writer, so no other
    write runs meanwhile, and a batch that fails rolls the triggers' removal back with it.
    PostgreSQL keeps its triggers (dropping one would lock its table against readers)."""
    if not backend_of(conn).one_writer:
        yield
        return
    names = ", ".join(f"'{n}'" for n in QUEUE_TRIGGERS)
    found = conn.exec_driver_sql(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                 f"AND name IN ({names})").all()
    before = conn.exec_driver_sql("SELECT COALESCE(MAX(rowid), 0) FROM case_queue").scalar()
    for name, _ in found:
        conn.exec_driver_sql(f"DROP TRIGGER {name}")
    yield
    conn.exec_driver_sql(_ORDER_NEW_ROWS, (before,))
    for _, sql in found:
        conn.exec_driver_sql(sql)


# A batch's SQLite settings: its INSERTs run inside a transaction of thousands of rows, so every
# multi-row INSERT keeps a statement journal (the pages it changes, as they were, to undo it alone);
# past 64 KiB SQLite spills that journal to a temporary file — 36 KB written per case, 90% of the
# import's writes at 60,000 cases. In memory it costs no system call. A larger page cache keeps the
# pages a batch changes (its index entries, and the index pages above them) from being read again.
BATCH_SETTINGS = (("temp_store", "MEMORY"), ("cache_size", "-65536"))       # (64 MiB of pages)


@contextmanager
def batch_settings(conn: Connection) -> Iterator[None]:
    """On SQLite, the batch's connection with BATCH_SETTINGS, set back to what it had after the batch.
    Outside any transaction (SQLite refuses to change temp_store inside one that used its temporary
    database), so on the driver's connection itself: through Core the statement would begin one."""
    if not backend_of(conn).one_writer:
        yield
        return
    assert not conn.in_transaction()
    driver = conn.connection.driver_connection
    assert driver is not None
    before = [(name, driver.execute(f"PRAGMA {name}").fetchone()[0]) for name, _ in BATCH_SETTINGS]
    for name, value in BATCH_SETTINGS:
        driver.execute(f"PRAGMA {name} = {value}")
    try:
        yield
    finally:
        for name, value in before:
            driver.execute(f"PRAGMA {name} = {value}")


__all__ = ["QUEUE_TRIGGERS", "queue_order_by_batch", "BATCH_SETTINGS", "batch_settings"]
