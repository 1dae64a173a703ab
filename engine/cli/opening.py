"""How a command opens the database: read-only or as a writer, and what a writer says while it waits.

Commands that only read open the database read-only (`Store(readonly=True)`, store/database.py): on
SQLite a `mode=ro` file that never takes or waits for the write lock, so they also work on a read-only
evidence copy; on PostgreSQL READ ONLY transactions. What such a command may still write (an audited
`--unmask`, a refusal for the attempts log, the first use of a database) opens a writer only then.
A writer that waits for a lock over a second prints one line on stderr (store/locks.py).
"""

from __future__ import annotations

import click

from caseflow.store import database
from caseflow.store.locks import NOTICE, LockWait

READ_ONLY_COMMANDS = frozenset({"show", "list", "history", "inbox", "audit", "audit verify", "export",
                                "report complaints", "report signoffs", "report sla", "sla status", "diff",
                                "diagram", "org show", "verify", "migrate plan", "migrate runs", "migrate show"})


def open_store(db: str | None, lock_timeout: str | None, readonly: bool = False) -> database.Store:
    """The database of --db; `lock_timeout` is --lock-timeout / CASEFLOW_LOCK_TIMEOUT (seconds)."""
    wait = LockWait.parse(lock_timeout, lambda: click.echo(NOTICE, err=True))
    return database.Store(db, readonly=readonly, wait=wait)


__all__ = ["READ_ONLY_COMMANDS", "open_store"]
