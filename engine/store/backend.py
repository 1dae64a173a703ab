"""The storage seam: every difference between SQLite and PostgreSQL, in one object per dialect.

The rest of caseflow writes portable SQLAlchemy Core and asks the backend for
whatever the two databases do differently: how a connection is set up and a
write transaction begins, insert-or-ignore and counters (``ON CONFLICT``),
advisory locks, ``FOR UPDATE SKIP LOCKED`` claims over a list of ids, a
consistent snapshot for a multi-query read, a single autocommit read, the
append-only trigger DDL, and read-only connections. The backend is chosen from
the URL (``backend_for``) or from a live connection (``backend_of``).

To add a backend: subclass ``Backend`` (backend_base.py) in a module of its own
(backend_sqlite.py, backend_postgres.py), set ``name`` to the SQLAlchemy dialect
name and register it in ``BACKENDS`` here (docs/architecture.md, "add a backend").
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.errors import StorageError
from caseflow.store.backend_base import LOCKS, READONLY, SINGLE_READ, Backend
from caseflow.store.backend_postgres import PostgresBackend
from caseflow.store.backend_sqlite import SQLiteBackend
from caseflow.store.urls import shown_url

BACKENDS: dict[str, Backend] = {b.name: b for b in (SQLiteBackend(), PostgresBackend())}


def backend_for(url: str) -> Backend:
    """The backend a database URL names (`sqlite:///…`, `postgresql+psycopg://…`)."""
    try:
        dialect = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        raise StorageError(f"cannot use database {shown_url(url)!r}: not a database URL "
                           "(e.g. sqlite:///caseflow.db, postgresql+psycopg://user@host/db)") from None
    if dialect not in BACKENDS:
        raise StorageError(f"cannot use database {shown_url(url)!r}: caseflow runs on "
                           f"{' or '.join(sorted(BACKENDS))}")
    return BACKENDS[dialect]


def backend_of(conn: Connection) -> Backend:
    """The backend of a live connection (for code that is handed a connection, not a Store)."""
    return BACKENDS[conn.dialect.name]


__all__ = ["Backend", "SQLiteBackend", "PostgresBackend", "BACKENDS", "backend_for", "backend_of", "LOCKS",
           "READONLY", "SINGLE_READ"]
