"""An import's rows sent by COPY on a thread of their own, while the importing thread works out the next ones.

PostgreSQL takes rows by `COPY … FROM STDIN` for about half the server time a
multi-row INSERT costs it (no statement to execute per 50 rows; the indexes and
row triggers are the same), and the client formats them in C. COPY cannot be
sent in the driver's pipeline, and a COPY ends only when the server has taken
every row, so here a sender thread runs the COPYs, in the order they were
handed in, on the batch's own DB-API connection: it waits for the server (the
driver releases the GIL meanwhile) while the importing thread computes.

The importing thread touches the connection only after `wait()` (runtime/
batch_writes.py: before any other statement, a SAVEPOINT's end, a refusal, the
commit). The first error stops the sending (the transaction is aborted anyway)
and is raised by `wait()` as the driver raised it; `abandon()` ends the thread
and drops it, for a batch that failed already.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

Job = tuple[str, Sequence[Sequence[Any]]]          # (the COPY statement, its rows)


class CopyAhead:
    """COPY jobs run in order on `dbapi_conn` by one sender thread; `wait()` for them, then use the connection."""

    def __init__(self, dbapi_conn: Any, quote: Callable[[str], str]) -> None:
        self._conn = dbapi_conn
        self._quote = quote
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._send, name="caseflow-copy", daemon=True)
        self._thread.start()

    def statement(self, table: str, columns: Sequence[str]) -> str:
        """The COPY of rows of `table` with `columns`, in that order."""
        return f"COPY {self._quote(table)} ({', '.join(map(self._quote, columns))}) FROM STDIN"

    def copy(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Queue the rows for `statement` (a `statement(…)`); after an error nothing more is sent."""
        if self._error is None:
            self._jobs.put((statement, rows))

    def _send(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    statement, rows = job
                    with self._conn.cursor() as cursor, cursor.copy(statement) as copy:
                        for row in rows:
                            copy.write_row(row)
            except BaseException as exc:  # noqa: BLE001 - kept, and raised by wait() in the importing thread
                self._error = exc
            finally:
                self._jobs.task_done()

    def wait(self) -> None:
        """Every queued row taken by the server, the thread ended; the first error raised as the driver's."""
        self._stop()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def abandon(self) -> None:
        """The thread ended and its error, if any, dropped: the batch failed and is rolled back anyway."""
        self._stop()
        self._error = None

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()


__all__ = ["CopyAhead"]
