"""`caseflow import`: open many cases from a spreadsheet export, in batched transactions.

Every row is opened exactly as `Engine.open` would open it — the same checks
(person, role, accepted fields, data schema, unique keys), the same writes
(case, keys, on-enter actions, SLA clocks, hash-chained audit rows) through
`actions.open_case` — but a whole batch of rows shares one transaction, and
each row runs inside its own SAVEPOINT: a refused row leaves nothing behind,
is recorded in the attempts log with its line number, and the other rows of
the batch go on. CSV cells are strings, parsed like `--set` values (an empty
cell is not set); JSON Lines values are taken as typed data, like `--data`.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import chain as audit
from caseflow.datafile import DATA_MAX_BYTES, load_data, regular_file
from caseflow.definition.evaluate import stamp
from caseflow.errors import CaseflowError, TransitionRefused, UsageError
from caseflow.runtime import actions as case_actions
from caseflow.runtime import safeguards
from caseflow.runtime.engine import Engine
from caseflow.runtime.queue import INSERT_QUEUE
from caseflow.sla.clocks import INSERT_TIMER
from caseflow.sla.windows import INSERT_WINDOW
from caseflow.store.driver_sql import flush_pending, run
from caseflow.values import ValueProblem, check_text

FORMATS = (".csv", ".jsonl")


@dataclass
class Row:
    line: int                          # where the row starts in the file (1 = first line)
    sets: dict[str, str] = field(default_factory=dict)      # CSV: strings, parsed like --set
    data: dict[str, Any] = field(default_factory=dict)      # JSON Lines: typed values, like --data
    problem: str | None = None         # unreadable row: refused without opening anything


@dataclass
class ImportReport:
    workflow: str
    opened: list[dict[str, Any]] = field(default_factory=list)      # {line, id}
    refused: list[dict[str, Any]] = field(default_factory=list)     # {line, error, message}
    batches: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"workflow": self.workflow, "opened": len(self.opened), "refused": len(self.refused),
                "batches": self.batches, "seconds": round(self.seconds, 3), "cases": self.opened,
                "refusals": self.refused}


def read_rows(path: str | Path) -> Iterator[Row]:
    """The rows of a .csv (header = field names) or .jsonl file, streamed (bounded memory)."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise UsageError(f"{p}: expected a .csv or .jsonl file")
    try:
        regular_file(p)                 # a FIFO or a device would hang or never end
        handle = p.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UsageError(f"{p}: {exc.strerror or exc}") from None
    except ValueProblem as exc:
        raise UsageError(f"{p}: {exc}") from None
    with handle:
        try:
            yield from (_csv_rows(handle) if p.suffix.lower() == ".csv" else _jsonl_rows(handle))
        except UnicodeDecodeError as exc:
            raise UsageError(f"{p}: not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            raise UsageError(f"{p}: {exc}") from None


def _csv_rows(handle: Any) -> Iterator[Row]:
    """A cell may be as long as one JSON Lines line (DATA_MAX_BYTES), so an over-long value is refused by
    the text rule with its row's line number; a cell longer than that ends the reading there (the csv
    module cannot resume inside a cell): that row is refused, the rows before it are imported."""
    if csv.field_size_limit() < DATA_MAX_BYTES:
        csv.field_size_limit(DATA_MAX_BYTES)
    reader = csv.reader(handle)
    header = next(reader, None)
    if not header:
        return
    names = [h.strip() for h in header]
    for i, name in enumerate(names):
        if not name or name in names[:i]:
            raise UsageError(f"line 1: column {i + 1} needs a unique field name (got {name!r})")
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field limit" not in str(exc):
                raise
            yield Row(start, problem=f"a cell is over {DATA_MAX_BYTES:,} characters (the limit); "
                                     "the rest of the file was not read")
            return
        line, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(names):
            yield Row(line, problem=f"{len(cells)} cells but the header names {len(names)} fields")
            continue
        yield Row(line, sets={k: v for k, v in zip(names, cells) if v != ""})


def _jsonl_rows(handle: Any) -> Iterator[Row]:
    """One object per line, each read like a --data file (datafile.py: size, depth, duplicate keys, text);
    a line longer than the limit is refused and skipped without being held in memory."""
    line = 0
    while True:
        text = handle.readline(DATA_MAX_BYTES + 1)
        if not text:
            return
        line += 1
        if len(text) > DATA_MAX_BYTES and not text.endswith("\n"):
            while text and not text.endswith("\n"):          # the rest of the over-long line
                text = handle.readline(DATA_MAX_BYTES + 1)
            yield Row(line, problem=f"the line is over {DATA_MAX_BYTES:,} characters (the limit)")
            continue
        if not text.strip():
            continue
        try:
            value = load_data(text)
        except ValueProblem as exc:
            problem = str(exc)
            yield Row(line, problem="expected a JSON object (one case per line)" if problem == "expected a JSON "
                      "object" else problem)
            continue
        yield Row(line, data=value)


def import_cases(engine: Engine, workflow: str, actor: str | None, rows: Iterator[Row], *, batch: int = 500,
                 note: str | None = None, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Open one case per row, `batch` rows per transaction; refused rows are reported, not raised."""
    began = time.perf_counter()
    report = ImportReport(workflow)
    engine.check_opener(workflow, actor)          # who may open at all: one refusal, nothing imported
    with engine.attempting("import", None, actor, workflow):
        audit.check_note(note)
    pending: list[Row] = []
    for row in rows:
        pending.append(row)
        if len(pending) >= batch:
            _one_batch(engine, workflow, actor or "", pending, note, report, progress)
            pending = []
    if pending:
        _one_batch(engine, workflow, actor or "", pending, note, report, progress)
    report.seconds = time.perf_counter() - began
    return report


def _one_batch(engine: Engine, workflow: str, actor: str, rows: list[Row], note: str | None,
               report: ImportReport, progress: Callable[[int], None] | None) -> None:
    now = engine.now()
    opened: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    with engine.store.write() as conn:
        engine.register(conn, engine.catalog.get(workflow), now)
        writes = BatchedWrites(conn)
        for row in rows:
            writes.begin_row()
            try:
                if row.problem:
                    raise UsageError(row.problem)
                _check_row_text(row)
                definition, person, initial = engine.plan_open(workflow, actor, row.sets, row.data)
                safeguards.check_not_future(definition, initial, definition.fields, now, "", f"open {workflow}",
                                            definition.initial)
                case_id = case_actions.open_case(engine, cast(Connection, writes), definition, initial, person,
                                                 now, note, None, registered=True)
                writes.end_row()
                opened.append({"line": row.line, "id": case_id})
            except (TransitionRefused, UsageError, ValueProblem, sa.exc.IntegrityError) as exc:
                writes.drop_row()                     # nothing of a refused row is written
                error = "ConcurrentChange" if isinstance(exc, sa.exc.IntegrityError) else type(exc).__name__
                message = "a unique value was taken meanwhile" if isinstance(exc, sa.exc.IntegrityError) \
                    else str(exc).removeprefix("--set ").removeprefix("--data ")
                audit.append_attempt(conn, case_id=None, workflow=workflow, event="import", actor=actor,
                                     error=error, reason=f"line {row.line}: {message}", effective_at=stamp(now),
                                     os_user=engine.os_user)
                refused.append({"line": row.line, "error": error, "message": message})
        writes.flush()
    report.opened += opened          # only once the batch is committed
    report.refused += refused
    report.batches += 1
    if progress:
        progress(len(rows))


class BatchedWrites:
    """The batch's connection as `open_case` sees it: the prebuilt INSERTs of a new case are held and
    sent as one executemany per statement; any other statement first sends what is held (so reads see
    every earlier write) and, for the row being opened, starts a SAVEPOINT so the row can be undone.
    A refused row's held rows are dropped, and its SAVEPOINT (if any) rolled back.

    The held rows go cases first, then clocks, then work queues, each queue row with its case's order
    (created_at, nearest pending SLA deadline) filled in from the rows sent with it: so the work-queue
    triggers (migrations 0010, 0011) find nothing to rewrite — they still check, and rewrite any row
    whose order is not right."""

    BATCHED = (case_actions.INSERT_CASE, case_actions.INSERT_OUTBOX, INSERT_TIMER, audit.INSERT, INSERT_QUEUE)
    BATCHED_TEXT = frozenset({INSERT_WINDOW})        # SQL text an opening sends (driver_sql.later)
    FIRST = (case_actions.INSERT_CASE, INSERT_TIMER, INSERT_QUEUE)      # the order they are sent in

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self._batched = frozenset(map(id, self.BATCHED))
        self._rank = {id(stmt): n for n, stmt in enumerate(self.FIRST)}
        self._held: dict[tuple[Any, ...], tuple[Any, list[dict[str, Any]]]] = {}
        self._marks: dict[tuple[Any, ...], int] = {}     # per held group: its length before this row
        self._savepoint: Any = None

    def begin_row(self) -> None:
        self._savepoint = None
        self._marks = {k: len(rows) for k, (_, rows) in self._held.items()}

    def execute(self, stmt: Any, params: Any = None) -> Any:
        if params is not None and (id(stmt) in self._batched
                                   or (isinstance(stmt, sa.TextClause) and stmt.text in self.BATCHED_TEXT)):
            held = self._held
            for p in params if isinstance(params, list) else (params,):
                key = (id(stmt), *p)          # (the columns, in the order the caller wrote them)
                group = held.get(key)
                if group is None:
                    group = held[key] = (stmt, [])
                group[1].append(p)
            return None
        if self._savepoint is None:
            self._flush_before_row()
            self._savepoint = self.conn.begin_nested()
        self.flush()
        return self.conn.execute(stmt, params) if params is not None else self.conn.execute(stmt)

    def _flush_before_row(self) -> None:
        """Send the rows of the batch's earlier cases, keep this case's rows held (behind the SAVEPOINT)."""
        earlier = []
        for key, (stmt, rows) in self._held.items():
            cut = self._marks.get(key, 0)
            if cut:
                earlier.append((stmt, rows[:cut]))
                del rows[:cut]
        self._send_all(earlier)
        self._marks = {key: 0 for key in self._held}

    def flush(self) -> None:
        self._send_all([group for group in self._held.values() if group[1]])
        self._held = {}
        self._marks = {}

    def _send_all(self, groups: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        created: dict[str, str] = {}
        nearest: dict[str, str] = {}
        for stmt, rows in sorted(groups, key=lambda g: self._rank.get(id(g[0]), len(self.FIRST))):
            if stmt is case_actions.INSERT_CASE:
                created.update((r["id"], r["created_at"]) for r in rows)
            elif stmt is INSERT_TIMER:
                for r in rows:
                    due = r.get("due_at")
                    if r["kind"] == "sla" and r["status"] in LIVE_SLA and due is not None:
                        nearest[r["case_id"]] = min(due, nearest.get(r["case_id"], due))
            elif stmt is INSERT_QUEUE:
                rows = [{**r, "due_at": nearest.get(r["case_id"]), "created_at": created.get(r["case_id"])}
                        for r in rows]
            self._send(stmt, rows)

    def _send(self, stmt: Any, rows: list[dict[str, Any]]) -> None:
        """One executemany of the held rows on the driver: the statement compiled once per set of columns
        (Core's executemany costs more per row than SQLite takes to insert it)."""
        keys = tuple(sorted(rows[0]))
        sql, order = _compiled(stmt, keys, self.dialect)
        flush_pending(self.conn)                     # (the before_execute listener Core would have run)
        params: Any = rows
        if order:
            pick = itemgetter(*order)
            params = [pick(r) for r in rows] if len(order) > 1 else [(pick(r),) for r in rows]
        run(self.conn, sql, params, many=True)

    def end_row(self) -> None:
        if self._savepoint is not None:
            self._savepoint.commit()
            self._savepoint = None

    def drop_row(self) -> None:
        for key, (_stmt, rows) in self._held.items():
            del rows[self._marks.get(key, 0):]
        if self._savepoint is not None:
            self._savepoint.rollback()
            self._savepoint = None


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


def _check_row_text(row: Row) -> None:
    for key, value in row.sets.items():
        check_text(key, f"column {key[:40]!r}")
        check_text(value, f"{key}")
    _check_json_text(row.data)


def _check_json_text(value: Any) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            check_text(str(k), f"key {str(k)[:40]!r}")
            _check_json_text(v)
    elif isinstance(value, list):
        for v in value:
            _check_json_text(v)
    elif isinstance(value, str):
        check_text(value, "a value")


__all__ = ["Row", "ImportReport", "read_rows", "import_cases", "CaseflowError"]
