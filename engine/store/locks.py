"""Waiting for a database lock: say so after a second, give up after a timeout (docs/security.md, "Faults").

A writer that finds the database locked by another process (SQLite's write
lock, a PostgreSQL row or advisory lock) waits at most `LockWait.timeout`
seconds; after `NOTICE_AFTER` seconds it calls `LockWait.notice` once (the
CLI prints one line on stderr). Giving up raises `LockTimeout` (exit 6) before
anything was written: on SQLite the wait is at `BEGIN IMMEDIATE`, on
PostgreSQL `lock_timeout` aborts the whole transaction.

How each database waits is the backend's (store/backend.py): on SQLite the
connection's busy timeout is the notice delay, and a `BEGIN IMMEDIATE` still
busy after it calls the notice and tries once more with the rest of the
timeout; on PostgreSQL every connection of a writer sets `lock_timeout`, and
`watch` below runs a thread that asks the backend whether a statement running
for over a second is waiting for a lock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine as SAEngine

from caseflow.errors import UsageError
from caseflow.records import record

DEFAULT_TIMEOUT = 30.0      # seconds; `--lock-timeout` / CASEFLOW_LOCK_TIMEOUT
NOTICE_AFTER = 1.0          # seconds of waiting before the notice
ENV = "CASEFLOW_LOCK_TIMEOUT"
NOTICE = "waiting for the database lock held by another process (another caseflow command?)…"


@record(frozen=True)
class LockWait:
    """How long a writer waits for a lock, and whom it tells after a second."""

    timeout: float = DEFAULT_TIMEOUT
    notice: Callable[[], None] | None = None

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, notice: Callable[[], None] | None = None) -> None:
        self.__dict__.update(timeout=timeout, notice=notice)     # written out: `LockWait()` per write

    @classmethod
    def parse(cls, text: str | None, notice: Callable[[], None] | None = None) -> LockWait:
        """From `--lock-timeout` / CASEFLOW_LOCK_TIMEOUT text (seconds, ≥ 0); None: the default."""
        if text is None or not str(text).strip():
            return cls(DEFAULT_TIMEOUT, notice)
        try:
            seconds = float(str(text).strip())
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= 86400 or seconds != seconds:
            raise UsageError(f"--lock-timeout {text!r}: expected seconds from 0 to 86400 (default "
                             f"{DEFAULT_TIMEOUT:g}; also {ENV})")
        return cls(seconds, notice)

    @classmethod
    def from_env(cls) -> LockWait:
        return cls.parse(os.environ.get(ENV))

    @property
    def first_ms(self) -> int:
        """The busy timeout a connection starts with: the notice delay, or all of it when shorter."""
        return int(min(self.timeout, NOTICE_AFTER) * 1000)

    def told(self) -> None:
        if self.notice is not None:
            self.notice()


class _Watcher:
    """One daemon thread per writer engine: is the statement that has run for a second waiting for a lock?"""

    def __init__(self, wait: LockWait, waiting: Callable[[int], bool | None]) -> None:
        self.wait, self.waiting = wait, waiting
        self.running: tuple[int, float] | None = None       # (server process id, since)
        self.told = False
        self.thread: threading.Thread | None = None
        self.guard = threading.Lock()

    def started(self, pid: int | None) -> None:
        if pid is None or self.told:
            return
        self.running = (pid, time.monotonic())
        if self.thread is None:
            with self.guard:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._run, name="caseflow-lock-watch", daemon=True)
                    self.thread.start()

    def ended(self) -> None:
        self.running = None

    def _run(self) -> None:
        """Until told, or idle for IDLE seconds (then the next statement starts a new thread)."""
        idle = time.monotonic()
        while not self.told:
            time.sleep(0.2)
            running = self.running
            if running is None:
                if time.monotonic() - idle > IDLE:
                    with self.guard:
                        if self.running is None:
                            self.thread = None
                            return
                continue
            idle = time.monotonic()
            if time.monotonic() - running[1] < NOTICE_AFTER:
                continue
            found = self.waiting(running[0])
            if found is None:
                break                   # cannot look: stay quiet (the timeout still applies)
            if found and self.running == running:
                self.told = True
                self.wait.told()
        with self.guard:
            self.thread = None


IDLE = 2.0                  # seconds a watcher thread outlives the last statement


PID = "caseflow_pid"        # where a connection record keeps its server process id (record.info)


def watch(engine: SAEngine, wait: LockWait, waiting: Callable[[int], bool | None]) -> None:
    """Tell `wait.notice` once when a statement of `engine` has waited over a second for a lock;
    `waiting(pid)` says whether that server process waits for a lock now (None: cannot tell)."""
    if wait.notice is None:
        return
    watcher = _Watcher(wait, waiting)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, *_args: Any) -> None:
        watcher.started(conn.connection.info.get(PID))

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, *_args: Any) -> None:
        watcher.ended()

    @event.listens_for(engine, "handle_error")
    def _error(_context: Any) -> None:
        watcher.ended()


def server_waits_for_lock(url: sa.engine.URL, pid: int) -> bool | None:
    """Is PostgreSQL server process `pid` waiting for a lock? (its own short connection; None: cannot tell;
    `PostgresBackend` asks it through `watch`)"""
    try:
        with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
            kind = conn.execute(sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                                {"pid": pid}).scalar()
    except sa.exc.SQLAlchemyError:
        return None
    return kind == "Lock"


__all__ = ["LockWait", "DEFAULT_TIMEOUT", "NOTICE_AFTER", "NOTICE", "ENV", "PID", "watch", "server_waits_for_lock"]
