"""SQLite's sender of an import's rows (store/copy_ahead.py `SendAhead`): multi-row INSERTs on a sender thread.

sqlite3 releases the GIL while SQLite runs a statement (its B-tree and index
inserts, a fifth of an import's time), and takes it back to bind the next one's
parameters; the sender takes it back once per statement, so each statement
carries as many rows as SQLite takes parameters (`SQLITE_LIMIT_VARIABLE_NUMBER`,
at most `MOST_PARAMETERS`). The connection must be usable from another thread:
SQLAlchemy opens a file database's with `check_same_thread=False`, and the
importing thread does not touch it until `wait()`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from caseflow.store.copy_ahead import SendAhead

MOST_PARAMETERS = 30_000        # per INSERT (SQLite's default limit is 32,766 since 3.32; older ones 999)


class InsertAhead(SendAhead):
    """SQLite: each job the rows of one `INSERT INTO t (columns) VALUES (?, …)`, in as few statements as SQLite
    allows."""

    def statement(self, table: str, columns: Sequence[str]) -> str:
        return f"INSERT INTO {self._quote(table)} ({', '.join(map(self._quote, columns))}) VALUES "

    def send(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        width = len(rows[0])
        limit = min(MOST_PARAMETERS, self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        per = max(1, limit // width)
        cursor = self._conn.cursor()
        try:
            for at in range(0, len(rows), per):
                part = rows[at:at + per]
                flat: list[Any] = []
                for one in part:                 # (faster than chain.from_iterable)
                    flat += one
                cursor.execute(_many(statement, width, len(part)), flat)
        finally:
            cursor.close()


@lru_cache(maxsize=256)
def _many(statement: str, width: int, n: int) -> str:
    """`statement` (… VALUES ) with `n` groups of `width` parameters."""
    group = "(" + ", ".join(["?"] * width) + ")"
    return statement + ", ".join([group] * n)


__all__ = ["InsertAhead", "MOST_PARAMETERS"]
