"""`caseflow import`: open many cases from a spreadsheet export, in batched transactions.

Every row is opened exactly as `Engine.open` would open it — the same checks
(person, role, accepted fields, data schema, unique keys), the same writes
(case, keys, on-enter actions, SLA clocks, hash-chained audit rows) through
`actions.open_case` — but a whole batch of rows shares one transaction, and
each row runs inside its own SAVEPOINT: a refused row leaves nothing behind,
is recorded in the attempts log with its line number, and the other rows of
the batch go on. CSV cells are strings, parsed like `--set` values (an empty
cell is not set); JSON Lines values are taken as typed data, like `--data`.
The batch's rows reach the database through `batch_writes.BatchedWrites`.
"""

from __future__ import annotations

import csv
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import chain as audit
from caseflow.datafile import DATA_MAX_BYTES, load_data, regular_file
from caseflow.definition.evaluate import stamp
from caseflow.errors import CaseflowError, ImportStopped, TransitionRefused, UsageError
from caseflow.runtime import actions as case_actions
from caseflow.runtime import safeguards
from caseflow.runtime.batch_sqlite import batch_settings, queue_order_by_batch
from caseflow.runtime.batch_writes import BatchedWrites, Growth
from caseflow.runtime.engine import Engine
from caseflow.runtime.snapshot import ID_SPACE, case_id_of
from caseflow.store.tables import cases
from caseflow.values import ValueProblem, check_text

FORMATS = (".csv", ".jsonl")
BATCH = 5000        # rows per transaction: fewer commits rewrite fewer index pages (the rows are sent 500 at a time)


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
    through_line: int = 0            # every row starting up to this line is committed (or was skipped)

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


def import_cases(engine: Engine, workflow: str, actor: str | None, rows: Iterator[Row], *, batch: int = BATCH,
                 note: str | None = None, progress: Callable[[int], None] | None = None,
                 from_line: int = 1) -> ImportReport:
    """Open one case per row, `batch` rows per transaction; refused rows are reported, not raised. Rows that
    start before `from_line` are skipped (to go on after an import that stopped: `ImportStopped`).

    An error that stops the import after a batch was committed (the database gone, a lock wait, Ctrl-C)
    is raised as `ImportStopped`, naming the line to go on from; before that, as itself."""
    began = time.perf_counter()
    report = ImportReport(workflow)
    engine.check_opener(workflow, actor)          # who may open at all: one refusal, nothing imported
    with engine.attempting("import", None, actor, workflow):
        audit.check_note(note)
    pending: list[Row] = []
    growth = Growth()                  # the timer rows written, for the planner's statistics (batch_writes)
    report.through_line = from_line - 1
    try:
        # one connection for every batch, with the batch settings (its SQLite page cache stays warm between them)
        with engine.store.action() as own, batch_settings(own):
            for row in rows:
                if row.line < from_line:
                    continue
                pending.append(row)
                if len(pending) >= batch:
                    _one_batch(engine, own, workflow, actor or "", pending, note, report, progress, growth)
                    pending = []
            if pending:
                _one_batch(engine, own, workflow, actor or "", pending, note, report, progress, growth)
    except (CaseflowError, KeyboardInterrupt) as exc:
        if not report.batches:
            raise
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        code = 130 if isinstance(exc, KeyboardInterrupt) else exc.exit_code
        waiting = [r.line for r in pending if r.line > report.through_line]     # (read, not committed)
        raise ImportStopped(workflow, len(report.opened), len(report.refused),
                            waiting[0] if waiting else report.through_line + 1, reason, code) from exc
    report.seconds = time.perf_counter() - began
    return report


def _one_batch(engine: Engine, own: Connection, workflow: str, actor: str, rows: list[Row], note: str | None,
               report: ImportReport, progress: Callable[[int], None] | None, growth: Growth) -> None:
    now = engine.now()
    opened: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    with engine.store.write(own) as conn, queue_order_by_batch(conn):
        engine.store.backend.more_statements(conn)      # PostgreSQL's action connection is in autocommit: BEGIN
        engine.register(conn, engine.catalog.get(workflow), now)
        ids = iter(_free_ids(conn, workflow, len(rows)))
        event = f"open {workflow}"
        plan_open, check_not_future, open_case = engine.plan_open, safeguards.check_not_future, case_actions.open_case
        with BatchedWrites(conn, growth) as writes:
            through = cast(Connection, writes)
            for row in rows:
                writes.begin_row()
                try:
                    if row.problem:
                        raise UsageError(row.problem)
                    _check_row_text(row)
                    definition, person, initial = plan_open(workflow, actor, row.sets, row.data)
                    check_not_future(definition, initial, definition.fields, now, "", event, definition.initial)
                    case_id = open_case(engine, through, definition, initial, person, now, note, None,
                                        registered=True, case_id=next(ids))
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
    report.through_line = rows[-1].line
    if progress:
        progress(len(rows))


def _free_ids(conn: Connection, workflow: str, n: int) -> list[str]:
    """`n` new case ids, none taken by a stored case nor by each other, from one random region of the id
    space: base, base + 17, base + 34, … (a taken one is skipped; an id has 32 bits, so among 100,000
    cases a random one is likely taken). Ids drawn one by one would put a batch's index entries — cases,
    audit, timers, SLA windows, work queues: all keyed by case id first — on every leaf page of those
    indexes, and each batch would write them all again: at 100,000 cases, 18 KB per case and a fifth of
    the import's time, growing with the database. 17 apart, no id of the batch is another one with one
    hex digit mistyped or two neighbouring digits swapped (16^k is ±1 mod 17, so such a change moves the
    number by no multiple of 17): a typo finds no case of the batch, as with random ids."""
    chosen: dict[str, None] = {}
    room = 2 * n                          # places in a block, so that a few taken ones are skipped in it
    base, k = _block_base(room * ID_STEP), 0
    while len(chosen) < n:
        if k == room:                     # a crowded region: another one
            base, k = _block_base(room * ID_STEP), 0
        want = min(n - len(chosen), room - k)
        block = [i for i in (case_id_of(workflow, base + (k + j) * ID_STEP) for j in range(want)) if i not in chosen]
        k += want
        taken: set[str] = set()
        for at in range(0, len(block), 1000):
            taken.update(conn.execute(_TAKEN, {"ids": block[at:at + 1000]}).scalars())
        chosen.update(dict.fromkeys(i for i in block if i not in taken))
    return list(chosen)


ID_STEP = 17        # between the ids of one batch (see _free_ids)


def _block_base(span: int) -> int:
    """Where a batch's block of ids starts: anywhere the block fits in the id space."""
    return secrets.randbelow(ID_SPACE - span)


_TAKEN = sa.select(cases.c.id).where(cases.c.id.in_(sa.bindparam("ids", expanding=True)))


def _check_row_text(row: Row) -> None:
    try:        # all of the row's text at once: storable if and only if each part is (no NUL; a lone
        check_text("".join([*row.sets, *row.sets.values()]), "")    # surrogate stays one when joined)
    except ValueProblem:
        for key, value in row.sets.items():         # which one, for the message
            check_text(key, f"column {key[:40]!r}")
            check_text(value, f"{key}")
    if row.data:            # (a CSV row has none)
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
