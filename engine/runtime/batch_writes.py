"""The connection an import batch opens its cases through: their INSERTs held and sent together.

`open_case` writes a new case's rows through it as through any connection; the prebuilt INSERTs
(case, audit, timers, SLA windows, work queues, outbox) are held and sent as one executemany per
statement and set of columns. Anything else first sends what is held, so every read sees the
writes before it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import chain as audit
from caseflow.runtime import actions as case_actions
from caseflow.runtime.queue import INSERT_QUEUE
from caseflow.sla.clocks import INSERT_TIMER
from caseflow.sla.windows import INSERT_WINDOW
from caseflow.store.backend import backend_of
from caseflow.store.driver_sql import flush_pending, run

SEND_EVERY = 500        # rows whose held INSERTs are sent together (a transaction may hold several sends)


@dataclass
class Growth:
    """The timer rows an import has written, and how many timer rows the planner's statistics count (the
    table's own when the import began — None until asked — then the table's when they were last taken)."""

    sent: int = 0
    planned: int | None = None
    before: int = 0                 # the table's rows the import began with (as the statistics count them)


class BatchedWrites:
    """The batch's connection as `open_case` sees it: the prebuilt INSERTs of a new case are held and
    sent as one executemany per statement; any other statement first sends what is held (so reads see
    every earlier write) and, for the row being opened, starts a SAVEPOINT so the row can be undone.
    A refused row's held rows are dropped, and its SAVEPOINT (if any) rolled back.

    On PostgreSQL the rows are sent ahead by COPY on a sender thread (store/copy_ahead.py): the server takes
    them while the next rows are worked out; any other statement, the end of a row's SAVEPOINT, a refusal and
    the end of the batch first wait for them (`sync`). Use it as a context manager, inside the batch's
    transaction.

    The held rows go cases first, then clocks, then work queues, each queue row with its case's order
    (created_at, nearest pending SLA deadline) filled in from the rows sent with it, and marked `ordered` where
    its case row went with it: so the work-queue triggers (migrations 0010, 0013) leave it as written (a row
    sent without its case row is checked and put right; on SQLite one statement per batch does what they
    would: `batch_sqlite.queue_order_by_batch`)."""

    BATCHED = (case_actions.INSERT_CASE, case_actions.INSERT_OUTBOX, INSERT_TIMER, audit.INSERT, INSERT_QUEUE)
    BATCHED_TEXT = frozenset({INSERT_WINDOW})        # SQL text an opening sends (driver_sql.later)
    FIRST = (case_actions.INSERT_CASE, INSERT_TIMER, INSERT_QUEUE)      # the order they are sent in

    def __init__(self, conn: Connection, growth: Growth | None = None) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self._batched = frozenset(map(id, self.BATCHED))
        self._rank = {id(stmt): n for n, stmt in enumerate(self.FIRST)}
        self._held: dict[int, tuple[Any, list[dict[str, Any]]]] = {}     # id(statement): (it, its held rows)
        self._mine: list[list[dict[str, Any]]] = []     # per row this row added: its held group, in order
        self._savepoint: Any = None
        self._rows = 0                  # rows begun since the held rows were last sent
        self._backend = backend_of(conn)
        self.growth = growth or Growth()
        self._ahead: Any = None         # the sender while sent rows are taken (store/copy_ahead.py)
        self._failed: BaseException | None = None      # what the sender's rows were refused with: the batch fails

    def begin_row(self) -> None:
        self._check()
        self._savepoint = None
        if self._rows >= SEND_EVERY:           # memory stays bounded however many rows a transaction has
            self.flush()
        self._rows += 1
        self._mine = []

    def execute(self, stmt: Any, params: Any = None) -> Any:
        self._check()
        if params is not None and (id(stmt) in self._batched
                                   or (isinstance(stmt, sa.TextClause) and stmt.text in self.BATCHED_TEXT)):
            # one group per statement (whatever the columns: `_send` tells sets of them apart, mostly one)
            group = self._held.get(id(stmt))
            if group is None:
                group = self._held[id(stmt)] = (stmt, [])
            rows = group[1]
            if isinstance(params, list):
                rows += params
                self._mine += [rows] * len(params)
            else:
                rows.append(params)
                self._mine.append(rows)       # (so that the row's own are known: drop_row, _flush_before_row)
            return None
        if self._savepoint is None:
            self._flush_before_row()
            self.sync()
            self._savepoint = self.conn.begin_nested()
        self.flush()
        self.sync()
        return self.conn.execute(stmt, params) if params is not None else self.conn.execute(stmt)

    def _flush_before_row(self) -> None:
        """Send the rows of the batch's earlier cases, keep this case's rows held (behind the SAVEPOINT)."""
        earlier = []
        own = Counter(map(id, self._mine))
        for stmt, rows in self._held.values():
            cut = len(rows) - own[id(rows)]
            if cut:
                earlier.append((stmt, rows[:cut]))
                del rows[:cut]
        self._send_all(earlier)

    def flush(self) -> None:
        self._check()
        self._send_all([group for group in self._held.values() if group[1]])
        self._held = {}
        self._mine = []
        self._rows = 0

    def __enter__(self) -> BatchedWrites:
        return self

    def __exit__(self, *exc: Any) -> None:
        """The rows sent ahead waited for; if the batch is given up, their errors ignored (its own stands)."""
        if exc[0] is None:
            return self.sync()
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.abandon()

    def sync(self) -> None:
        """Wait for the rows sent ahead (`_send`; their errors raised here, as SQLAlchemy raises them):
        before any other statement, before the batch commits or is given up. Rows refused there belong to
        rows already begun, ended, maybe reported: the batch fails (every later call raises the same error),
        whichever row was being opened when it came back (on SQLite the transaction would go on without them)."""
        self._check()
        ahead = self._ahead
        if ahead is None:
            return
        try:
            try:
                ahead.wait()
            except self.dialect.loaded_dbapi.Error as exc:      # raised as SQLAlchemy's own
                self.conn._handle_dbapi_exception(exc, "the import's rows, sent ahead", None, None, None)
            finally:
                if not ahead.running:           # (still sending only if interrupted while waiting: __exit__ ends it)
                    self._ahead = None
        except BaseException as exc:
            self._failed = exc
            raise

    def _check(self) -> None:
        if self._failed is not None:
            raise self._failed

    def _send_all(self, groups: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        created: dict[str, str] = {}
        nearest: dict[str, str] = {}
        timers = 0
        for stmt, rows in sorted(groups, key=lambda g: self._rank.get(id(g[0]), len(self.FIRST))):
            if stmt is case_actions.INSERT_CASE:
                created.update((r["id"], r["created_at"]) for r in rows)
            elif stmt is INSERT_TIMER:
                timers += len(rows)
                for r in rows:
                    due = r.get("due_at")
                    if r["kind"] == "sla" and r["status"] in LIVE_SLA and due is not None:
                        nearest[r["case_id"]] = min(due, nearest.get(r["case_id"], due))
            elif stmt is INSERT_QUEUE:
                # a row sent with its case row has all its clocks beside it (open_case writes them between its
                # queue rows and its case row): its order is known, and it says so (`ordered`, revision 0013).
                # (Filled in on the held rows themselves: `store_new` builds them for this INSERT alone.)
                for r in rows:
                    case_id = r["case_id"]
                    r["due_at"] = nearest.get(case_id)
                    r["created_at"] = created.get(case_id)
                    r["ordered"] = True if case_id in created else None
                self._planned(timers)
            self._send(stmt, rows)

    def _planned(self, timers: int) -> None:
        """The queue triggers' statements are planned on the statistics of `timers` and `case_queue` (PostgreSQL's;
        SQLite plans without): in tables that grew from (nearly) nothing since they were taken, the deadline
        lookup reads every SLA clock (the `kind` index looks selective) and the timers' trigger, run for every
        new SLA clock, looks for the case's queue rows by a plan made for an empty `case_queue` (at 100,000
        cases the import fell from ~2,000 to ~1,000 cases/s; with both tables' statistics it holds). So before
        the queue rows go they are taken again each time the import has doubled the timer rows the statistics
        count (ANALYZE counts this transaction's own): a few times into an empty database, never for a file
        small beside the database it goes into (each 5,000-row import into 60,000 cases spent a quarter of
        its time in ANALYZE when the doubling was counted from the import's own rows)."""
        grown = self.growth
        if grown.planned is None:
            self.sync()
            grown.before = grown.planned = self._backend.planned_rows(self.conn, "timers")
        grown.sent += timers
        if grown.sent >= SEND_EVERY and grown.before + grown.sent >= 2 * grown.planned:
            self.sync()                 # (statistics of the rows sent so far)
            for table in ("timers", "case_queue"):
                self._backend.analyze(self.conn, table)
            grown.planned = grown.before + grown.sent

    def _send(self, stmt: Any, rows: list[dict[str, Any]]) -> None:
        """The held rows on the driver: sent ahead where the backend can (PostgreSQL's COPY), else one
        executemany, the statement compiled once per set of columns (Core's executemany costs more per row
        than SQLite takes to insert it)."""
        keys = tuple(sorted(rows[0]))
        flush_pending(self.conn)                     # (the before_execute listener Core would have run)
        if self._ahead is None:
            self._ahead = self._backend.send_ahead(self.conn)
        sql, order = (None, None) if self._ahead is not None else _compiled(stmt, keys, self.dialect)
        values = _alike(rows, order or keys)
        if values is None:                  # rows of other columns among them: each set of columns apart
            for part in _by_columns(rows):
                self._send(stmt, part)
            return
        if self._ahead is not None:
            self._copy(stmt, keys, values)
            return
        assert sql is not None
        per = max(1, PARAMETERS // len(keys))
        if len(rows) > 1 and per > 1:         # many rows per INSERT: one statement's work on the server each
            for at in range(0, len(rows), per):
                many = _rows_sql(sql, min(per, len(rows) - at), order is not None)
                if order:
                    flat: list[Any] = []
                    for one in values[at:at + per]:      # (faster than chain.from_iterable)
                        flat += one
                    run(self.conn, many, flat)
                else:
                    part = rows[at:at + per]
                    run(self.conn, many, {f"{k}__{i}": v for i, r in enumerate(part) for k, v in r.items()})
            return
        params: Any = values if order else rows     # (positional where the driver's style is)
        run(self.conn, sql, params, many=True)

    def _copy(self, stmt: Any, keys: tuple[str, ...], values: list[tuple[Any, ...]]) -> None:
        """The rows (`values`, in `keys` order) to the sender; statement listeners see the COPY with its rows."""
        table = stmt.table.name if isinstance(stmt, sa.Insert) else _text_table(stmt.text)
        statement = self._ahead.statement(table, keys)
        dispatch = self.conn.dispatch
        for fn in dispatch.before_cursor_execute:
            fn(self.conn, None, statement, values, None, True)
        self._ahead.copy(statement, values)
        for fn in dispatch.after_cursor_execute:
            fn(self.conn, None, statement, values, None, True)

    def end_row(self) -> None:
        self._check()
        if self._savepoint is not None:
            self.sync()
            self._savepoint.commit()
            self._savepoint = None

    def drop_row(self) -> None:
        """The row's held rows dropped, its SAVEPOINT (if any) rolled back; what was sent ahead waited for
        (the caller records the refusal next)."""
        for rows in reversed(self._mine):       # (each group's own rows are its last ones)
            rows.pop()
        self._mine = []
        self.sync()
        if self._savepoint is not None:
            self._savepoint.rollback()
            self._savepoint = None


def _tuples(rows: list[dict[str, Any]], names: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Each row's values of `names`, in that order."""
    pick = itemgetter(*names)
    return list(map(pick, rows)) if len(names) > 1 else [(pick(r),) for r in rows]


def _alike(rows: list[dict[str, Any]], names: tuple[str, ...]) -> list[tuple[Any, ...]] | None:
    """`_tuples(rows, names)` if every row has the first row's columns (`names`: all of them, in the order the
    statement takes them; or those its text names), else None. Checked without comparing a row's keys: as
    many as the first row's, and `names` all among them."""
    if len(set(map(len, rows))) > 1:
        return None
    try:
        return _tuples(rows, names)
    except KeyError:
        if len(_by_columns(rows)) == 1:
            raise                   # (a column the statement needs that no row has: as SQLAlchemy would refuse)
        return None


def _by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The rows by their set of columns, each set in the order it first came."""
    sets: dict[frozenset[str], list[dict[str, Any]]] = {}
    for r in rows:
        sets.setdefault(frozenset(r), []).append(r)
    return list(sets.values())


PARAMETERS = 900        # per INSERT of many rows (old SQLite allows 999)
_TEXT_TABLE = re.compile(r"INSERT INTO (\w+) ")


def _text_table(text: str) -> str:
    """The table of an INSERT written as text (INSERT_WINDOW)."""
    found = _TEXT_TABLE.match(text)
    assert found is not None, text
    return found.group(1)


_NAMED = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=256)
def _rows_sql(sql: str, n: int, positional: bool) -> str:
    """A one-row `INSERT … VALUES (…)` for `n` rows; named parameters get the row's number (`name__3`)."""
    head, _, group = sql.partition(" VALUES ")
    group = group.partition(" RETURNING ")[0]            # (PostgreSQL's new ids: nothing reads them)
    if positional:
        return f"{head} VALUES {', '.join([group] * n)}"
    return f"{head} VALUES " + ", ".join(_NAMED.sub(f"%(\\1__{i})s", group) for i in range(n))


LIVE_SLA = frozenset({"running", "breached"})      # the clocks whose deadline orders the inbox (0010's NEAREST)


_COMPILED: dict[tuple[int, tuple[str, ...], type], tuple[Any, str, tuple[str, ...] | None]] = {}


def _compiled(stmt: Any, keys: tuple[str, ...], dialect: sa.Dialect) -> tuple[str, tuple[str, ...] | None]:
    """(SQL in the driver's parameter style, the parameter order for a positional style, else None)."""
    key = (id(stmt), keys, type(dialect))
    hit = _COMPILED.get(key)
    if hit is None or hit[0] is not stmt:     # (the statement is kept with its SQL, so its id stays its own)
        if isinstance(stmt, sa.TextClause):
            compiled = stmt.compile(dialect=dialect)
        else:
            compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        hit = _COMPILED[key] = (stmt, str(compiled), order)
    return hit[1], hit[2]
