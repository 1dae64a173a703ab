"""An import's rows sent on a thread of their own, while the importing thread works out the next ones.

The driver releases the GIL while the database works (psycopg while the server
takes a COPY, sqlite3 while SQLite runs a statement), so a sender thread that
runs an import's writes, in the order they were handed in, on the batch's own
DB-API connection lets the database work while the importing thread computes
(on a machine with a second core).

- PostgreSQL (`CopyAhead`): rows by `COPY … FROM STDIN`, for about half the
  server time a multi-row INSERT costs it (no statement to execute per 50 rows;
  the indexes and row triggers are the same), formatted by the client in C.
  COPY cannot be sent in the driver's pipeline, and a COPY ends only when the
  server has taken every row: hence the thread.
- SQLite (`store/insert_ahead.py`): multi-row INSERTs, as many rows per
  statement as SQLite takes parameters (the sender takes the GIL back once per
  statement, so few statements).

The importing thread touches the connection only after `wait()` (runtime/
batch_writes.py: before any other statement, a SAVEPOINT's end, a refusal, the
commit). The first error stops the sending and is raised by `wait()` as the
driver raised it (batch_writes then fails the whole batch: on SQLite a refused
statement would leave the transaction going without its rows); `abandon()` ends
the thread and drops it, for a batch that failed already.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

Job = tuple[str, Sequence[Sequence[Any]]]          # (the statement, its rows)


class SendAhead:
    """Jobs run in order on `dbapi_conn` by one sender thread (`send`, a backend's); `wait()` for them, then use
    the connection."""

    def __init__(self, dbapi_conn: Any, quote: Callable[[str], str]) -> None:
        self._conn = dbapi_conn
        self._quote = quote
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._send, name="caseflow-send-ahead", daemon=True)
        self._thread.start()

    def statement(self, table: str, columns: Sequence[str]) -> str:
        """The statement that takes rows of `table` with `columns`, in that order."""
        raise NotImplementedError

    def send(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run on the sender thread: `rows` written by `statement`."""
        raise NotImplementedError

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
                    self.send(*job)
            except BaseException as exc:  # noqa: BLE001 - kept, and raised by wait() in the importing thread
                self._error = exc
            finally:
                self._jobs.task_done()

    def wait(self) -> None:
        """Every queued row taken by the database, the thread ended; the first error raised as the driver's."""
        self._stop()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    @property
    def running(self) -> bool:
        """Whether the sender thread may still be using the connection."""
        return self._thread.is_alive()

    def abandon(self) -> None:
        """The thread ended and its error, if any, dropped: the batch failed and is rolled back anyway."""
        self._stop()
        self._error = None

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()


class CopyAhead(SendAhead):
    """PostgreSQL: each job one `COPY … FROM STDIN`."""

    def statement(self, table: str, columns: Sequence[str]) -> str:
        return f"COPY {self._quote(table)} ({', '.join(map(self._quote, columns))}) FROM STDIN"

    def send(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)


__all__ = ["SendAhead", "CopyAhead"]
