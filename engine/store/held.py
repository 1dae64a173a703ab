"""An action's connection kept for the next action of the same thread, for a moment.

Checking a connection out of SQLAlchemy's pool and back in costs more than a step's own read
(a `Connection`, the checkout and checkin events, the reset). Actions run back to back — a
script, `caseflow import`'s row-by-row fallback, a service — so the connection an action ends
with is kept and handed to the next action of the same thread, if it starts within
`IDLE_PING_S` (the same moment after which the pool would ping a returned connection: one kept
that long is given back instead, and the next action checks one out as before).

Only the main thread keeps one: a worker thread's connection goes back to the pool at once, so
threads never hold connections the pool might need. Nothing is kept in a transaction, broken or
invalidated; an action that fails closes its connection. `Store.dispose` closes the kept one, and so
does `engine.dispose()` on the store's engine (as it closes the pool's).
"""

from __future__ import annotations

import threading
import time

from sqlalchemy.engine import Connection

from caseflow.store.idle_ping import IDLE_PING_S, IDLE_SINCE


class Held:
    """At most one kept connection, for the main thread."""

    def __init__(self) -> None:
        self._conn: Connection | None = None
        self._since = 0.0

    def take(self) -> Connection | None:
        """The kept connection if it is still fresh (else it is closed); None otherwise, and always
        None in another thread (only the main thread ever touches the kept one)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        conn, self._conn = self._conn, None
        if conn is None:
            return None
        if not conn.closed and not conn.invalidated and time.monotonic() - self._since < IDLE_PING_S:
            return conn
        self._give_back(conn)
        return None

    def _give_back(self, conn: Connection) -> None:
        """Back to the pool as idle since it was kept, so the pool pings it before its next use."""
        info = None if conn.closed or conn.invalidated else conn.connection.info
        conn.close()
        if info is not None:
            info[IDLE_SINCE] = self._since         # idle_ping's checkin listener wrote "now"

    def keep(self, conn: Connection) -> None:
        """Keep `conn` for the next action, or close it (another thread's, in a transaction, broken)."""
        if threading.current_thread() is threading.main_thread() and self._conn is None \
                and not conn.closed and not conn.invalidated and not conn.in_transaction():
            self._conn, self._since = conn, time.monotonic()
        else:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._give_back(conn)

    def drop(self) -> None:
        """The engine was disposed (`engine.dispose()`): close the kept connection for good, as the pool
        closed its own — on SQLite the last connection to close checkpoints the WAL into the file."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.invalidate()
            conn.close()


__all__ = ["Held"]
