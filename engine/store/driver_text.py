"""The hot path's statements as text per dialect, written once from the table definitions.

`store/driver_sql.py` runs them on the pooled DB-API cursor; this module only builds the text: the case
read (alone, or with its sign-off evidence), the versioned UPDATE, the audit INSERT, and on PostgreSQL
the composite statements a step or an open ends with (data-modifying CTEs).
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from caseflow.store.backend import Backend
from caseflow.store.tables import audit, cases, timers

_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=256)
def render(style: str, text: str, prefix: str = "") -> str:
    """SQL written with `:name` parameters in the driver's style, each name prefixed."""
    return _NAMED.sub(lambda m: style.format(prefix + m.group(1)), text)


_PYFORMAT = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=512)
def numbered(statement: str) -> tuple[str, Callable[[Mapping[str, Any]], Sequence[Any]]]:
    """A `%(name)s` statement with `$1, $2, …` instead (one number per name), and the values of a mapping
    of its parameters in that order."""
    names: dict[str, int] = {}

    def number(found: re.Match[str]) -> str:
        return f"${names.setdefault(found.group(1), len(names) + 1)}"

    text = _PYFORMAT.sub(number, statement).replace("%%", "%")
    order = tuple(names)
    if len(order) < 2:
        return text, lambda params: tuple(params[name] for name in order)
    return text, itemgetter(*order)


def nearest_deadline(case_id: str) -> str:
    """SQL: the nearest deadline of the running or breached SLA clocks of the case `case_id` (an SQL
    expression) — the order the work queues keep (revisions 0010/0011 write the same in their triggers)."""
    return (f"(SELECT MIN(t.due_at) FROM timers t WHERE t.case_id = {case_id} AND t.kind = 'sla' "
            f"AND t.status IN ('running', 'breached'))")


CASE_COLUMNS = tuple(c.name for c in cases.c)
AUDIT_COLUMNS = tuple(c.name for c in audit.c if c.name != "id")
CaseRow = namedtuple("CaseRow", CASE_COLUMNS)      # type: ignore[misc]  # what Snapshot.of_row reads
SIGNOFF_KINDS = ("open", "transition", "reject", "signoff", "migrate")  # the log rows that prove a case's sign-offs
SIGNOFF_COLUMNS = ("kind", "actor", "roles", "effective_at", "case_version", "changes")
SignoffRow = namedtuple("SignoffRow", SIGNOFF_COLUMNS)   # type: ignore[misc]  # what audit.signoffs_of reads
TIMER_COLUMNS = tuple(c.name for c in timers.c)
TimerRow = namedtuple("TimerRow", TIMER_COLUMNS)   # type: ignore[misc]  # what sla/clocks.py's _Step reads
# What the checked write (`update_checked`) makes PostgreSQL raise, as the text of a failed integer cast.
STALE_MARK = "caseflow: the case moved"
MOVED_MARK = "caseflow: its clocks moved"
# The versioned UPDATE sets these (and the chain head); `received_at` is recomputed on every step.
UPDATED = ("state", "data", "signoffs", "version", "updated_at", "next_signoff_role", "received_at")
HEAD = ("audit_seq", "audit_hash")
# A queue row written with its order (`ordered`: the trigger of revision 0013 leaves it as written).
QUEUE_COLUMNS = "case_id, queue, workflow, due_at, created_at, ordered"


class DialectSQL:
    """The hot statements of one dialect, as text with named parameters."""

    def __init__(self, backend: Backend, dialect: sa.Dialect) -> None:
        self.dialect = dialect
        self.one_statement = backend.one_statement_write
        self.style = backend.param_style
        self.param = p = backend.param_style.format
        self.select_case = f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE id = {p('case_id')}"
        # a sign-off's read: the case and, newest first, its log rows that say which sign-offs it holds
        # (audit.signoffs_of walks them down to the newest row at or before the case's version that is not a
        # signature: only the rows from that one on are read — not the case's whole log, each beside the case)
        kinds = ", ".join(f"'{k}'" for k in SIGNOFF_KINDS)
        stops = ", ".join(f"'{k}'" for k in SIGNOFF_KINDS if k != "signoff")
        self.select_case_signoffs = (
            f"SELECT {', '.join('c.' + c for c in CASE_COLUMNS)}, {', '.join('a.' + c for c in SIGNOFF_COLUMNS)} "
            f"FROM cases c LEFT JOIN audit a ON a.case_id = c.id AND a.kind IN ({kinds}) "
            f"AND a.seq >= COALESCE((SELECT b.seq FROM audit b WHERE b.case_id = c.id AND b.kind IN ({stops}) "
            f"AND b.case_version <= c.version ORDER BY b.seq DESC LIMIT 1), 0) "
            f"WHERE c.id = {p('case_id')} ORDER BY a.seq DESC")
        sets = ", ".join(f"{c} = {p(c)}" for c in UPDATED + HEAD)
        self.update_case = f"UPDATE cases SET {sets} WHERE id = {p('case_id')} AND version = {p('seen')}"
        self.update_case_only = (f"UPDATE cases SET {', '.join(f'{c} = {p(c)}' for c in UPDATED)} "
                                 f"WHERE id = {p('case_id')} AND version = {p('seen')}")
        self.set_head = f"UPDATE cases SET {', '.join(f'{c} = {p(c)}' for c in HEAD)} WHERE id = {p('case_id')}"
        self.insert_audit = (f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) "
                             f"VALUES ({', '.join(p(c) for c in AUDIT_COLUMNS)})")
        locking = "FOR UPDATE" in str(sa.select(timers.c.id).with_for_update().compile(dialect=dialect))
        self.case_timers = (f"SELECT {', '.join(TIMER_COLUMNS)} FROM timers WHERE case_id = {p('case_id')}"
                            + (" FOR UPDATE" if locking else ""))
        # PostgreSQL: the held versioned UPDATE and the locked read of the case's timers, one statement (the
        # case row is still locked first); the first column says whether the UPDATE found its version.
        tcols = ", ".join(f"t.{c}" for c in TIMER_COLUMNS)
        self.update_case_timers = (
            f"WITH u AS ({self.update_case_only} RETURNING id), "
            f"t AS (SELECT {', '.join(TIMER_COLUMNS)} FROM timers WHERE case_id = {p('case_id')} "
            f"AND EXISTS (SELECT 1 FROM u) FOR UPDATE) "
            f"SELECT (SELECT count(*) FROM u), {tcols} FROM (VALUES (1)) AS one (x) LEFT JOIN t ON TRUE")
        # PostgreSQL, a step still outside any transaction: the timers unlocked, each with its row as text;
        # the step's one write then checks under lock that they are still these rows (`update_checked`)
        self.timer_text = f"CAST(ROW({', '.join(TIMER_COLUMNS)}) AS TEXT)"
        self.case_timers_seen = (f"SELECT {', '.join(TIMER_COLUMNS)}, {self.timer_text} FROM timers "
                                 f"WHERE case_id = {p('case_id')} ORDER BY id")
        # PostgreSQL, a step's read: the case (with its sign-off evidence) and its timers as `case_timers_seen`
        # reads them, one statement — rows of part 0 (the case, its log rows newest first), then part 1 (the
        # timers, in id order); the step then sends nothing to read its clocks (`driver_sql.read_for_step`)
        timer_cols = ", ".join(f"t.{c}" for c in TIMER_COLUMNS)
        timers_part = (f"SELECT 1, t.id, {', '.join(['NULL'] * len(CASE_COLUMNS))}, {{}}{timer_cols}, "
                       f"CAST(ROW({timer_cols}) AS TEXT) FROM timers t WHERE t.case_id = {p('case_id')} ORDER BY 1, 2")
        no_timer = ", ".join(["NULL"] * (len(TIMER_COLUMNS) + 1))
        self.select_case_clocks = (
            f"SELECT 0, 0, {', '.join(CASE_COLUMNS)}, {no_timer} FROM cases WHERE id = {p('case_id')} "
            f"UNION ALL {timers_part.format('')}")
        signoffs = self.select_case_signoffs.partition(" FROM ")
        self.select_case_signoffs_clocks = (
            f"SELECT 0, -a.seq, {signoffs[0].removeprefix('SELECT ')}, {no_timer} FROM "
            f"{signoffs[2].removesuffix(' ORDER BY a.seq DESC')} UNION ALL "
            f"{timers_part.format(', '.join(['NULL'] * len(SIGNOFF_COLUMNS)) + ', ')}")
        self.insert_case = (f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) "
                            f"VALUES ({', '.join(p('c_' + c) for c in CASE_COLUMNS)})")
        # A new queue row carries its order — the case's nearest pending SLA deadline and created_at, as the
        # transaction sees them — and says so (`ordered`), so revision 0013's trigger leaves it as written (a
        # clock written after it, or in the same PostgreSQL statement, puts it right through the timers'
        # triggers). A new case's row is not written yet: its created_at comes as a parameter. `WHERE TRUE`:
        # SQLite's upsert after a SELECT.
        nearest = nearest_deadline(p('case_id'))
        self.queue_order = f"{nearest}, (SELECT c.created_at FROM cases c WHERE c.id = {p('case_id')})"
        case_id = f"CAST({p('case_id')} AS VARCHAR(32))"       # (PostgreSQL: one type for the parameter)
        self.insert_queue = (f"INSERT INTO case_queue ({QUEUE_COLUMNS}) "
                             f"SELECT {case_id}, {p('queue')}, {p('workflow')}, {nearest}, {p('created_at')}, TRUE")
        self.add_queue = (f"INSERT INTO case_queue ({QUEUE_COLUMNS}) "
                          f"SELECT {case_id}, {p('queue')}, {p('workflow')}, {self.queue_order}, TRUE "
                          f"WHERE TRUE ON CONFLICT DO NOTHING")
        # SQLite maintains every index one of whose columns is in an UPDATE's SET list, whether or not the
        # value changed (an index entry is deleted and inserted again, so its page is written): a step sets
        # only the columns it changes. (PostgreSQL decides by value — any indexed column changed and every
        # index gets a new entry — so its statements, composed per row count, keep one SET list.)
        self.sets_changed_only = not self.one_statement

    @lru_cache(maxsize=64)  # noqa: B019 - one instance per backend, kept for the process
    def update_case_set(self, columns: tuple[str, ...]) -> str:
        """The versioned UPDATE setting `columns` (parameters named by column; `case_id`, `seen`)."""
        p = self.param
        return (f"UPDATE cases SET {', '.join(f'{c} = {p(c)}' for c in columns)} "
                f"WHERE id = {p('case_id')} AND version = {p('seen')}")

    @lru_cache(maxsize=16)  # noqa: B019
    def drop_queues(self, kept: int) -> str:
        """DELETE a case's work-queue rows but the `kept` named `q_0` … (all of them if none is kept)."""
        p = self.param
        keep = f" AND queue NOT IN ({', '.join(p(f'q_{i}') for i in range(kept))})" if kept else ""
        return f"DELETE FROM case_queue WHERE case_id = {p('case_id')}{keep}"

    def _values(self, n: int) -> str:
        types = {c.name: c.type.compile(self.dialect) for c in audit.c}
        return ", ".join("(" + ", ".join(f"CAST({self.param(f'{c}_{i}')} AS {types[c]})" for c in AUDIT_COLUMNS)
                         + ")" for i in range(n))

    @lru_cache(maxsize=16)  # noqa: B019 - one instance per backend, kept for the process
    def update_and_log(self, n: int) -> str:
        """Where a data-modifying CTE exists (PostgreSQL): the versioned UPDATE (with the new chain head)
        and `n` audit rows, one statement; a stale version updates nothing and so inserts nothing."""
        cols = ", ".join(AUDIT_COLUMNS)
        return (f"WITH u AS ({self.update_case} RETURNING id) "
                f"INSERT INTO audit ({cols}) SELECT {cols} FROM (VALUES {self._values(n)}) AS v ({cols}) "
                f"WHERE EXISTS (SELECT 1 FROM u)")

    @lru_cache(maxsize=16)  # noqa: B019
    def update_queues_and_log(self, n: int) -> str:
        """`update_and_log` that also sets the case's work queues to the array `q_after`: rows not in it
        deleted, the others inserted unless present. The two sets are disjoint, so the order in which
        PostgreSQL runs the CTEs cannot matter."""
        cols = ", ".join(AUDIT_COLUMNS)
        return (f"WITH u AS ({self.update_case} RETURNING id), {', '.join(self._queue_ctes(gated=True))} "
                f"INSERT INTO audit ({cols}) SELECT {cols} FROM (VALUES {self._values(n)}) AS v ({cols}) "
                f"WHERE EXISTS (SELECT 1 FROM u)")

    @lru_cache(maxsize=16)  # noqa: B019
    def log_and_head(self, n: int) -> str:
        """PostgreSQL: `n` audit rows and the new chain head on the case row, one statement."""
        cols = ", ".join(AUDIT_COLUMNS)
        return f"WITH h AS ({self.set_head}) INSERT INTO audit ({cols}) VALUES {self._values(n)}"

    @lru_cache(maxsize=64)  # noqa: B019
    def _later(self, later: tuple[tuple[str, int], ...]) -> list[str]:
        """The waiting writes as CTEs `d<i>`, parameters prefixed `d<i>_<row>_`; an INSERT of k rows is one
        multi-row INSERT, so its rows get their ids in the order they were written."""
        out = []
        for i, (text, k) in enumerate(later):
            if k == 1:
                out.append(f"d{i} AS ({render(self.style, text, f'd{i}_0_')})")
                continue
            head, row = text.split(" VALUES ", 1)
            out.append(f"d{i} AS ({head} VALUES {', '.join(render(self.style, row, f'd{i}_{j}_') for j in range(k))})")
        return out

    def log_head_and(self, n: int, later: tuple[tuple[str, int], ...], queues: bool) -> str:
        """PostgreSQL, the step's last statement after the held UPDATE went: `n` audit rows, the new chain
        head, the step's waiting writes (`later`: (text, rows) each, see `_later`) and, if
        `queues`, the case's work queues set to `q_after`."""
        cols = ", ".join(AUDIT_COLUMNS)
        ctes = [f"h AS ({self.set_head})"]
        ctes += self._later(later)
        if queues:
            ctes += self._queue_ctes()
        return f"WITH {', '.join(ctes)} INSERT INTO audit ({cols}) VALUES {self._values(n)}"

    @lru_cache(maxsize=64)  # noqa: B019
    def update_checked(self, n: int, later: tuple[tuple[str, int], ...], queues: bool) -> str:
        """PostgreSQL, a step that read its timers unlocked (`case_timers_seen`), its whole write in one
        statement: the versioned UPDATE with the chain head (locking the case row first, as every step does),
        then the case's timers locked and compared with the rows read (`timers_seen`: their texts joined by
        '|' in id order); the waiting writes (`later`), the work queues if `queues`, and `n` audit rows.
        A stale version or moved timers make the statement fail, so nothing of it is written: an integer
        cast of STALE_MARK or MOVED_MARK (data-modifying CTEs that nothing reads run after the main query,
        whose one-time filter evaluates the check first)."""
        cols = ", ".join(AUDIT_COLUMNS)
        p = self.param
        ctes = [f"u AS ({self.update_case} RETURNING id)",
                f"t AS (SELECT id, {self.timer_text} AS r FROM timers WHERE case_id = {p('case_id')} "
                f"AND EXISTS (SELECT 1 FROM u) FOR UPDATE)",
                f"chk AS (SELECT CAST(CASE WHEN NOT EXISTS (SELECT 1 FROM u) THEN '{STALE_MARK}' "
                f"WHEN (SELECT string_agg(r, '|' ORDER BY id) FROM t) IS NOT DISTINCT FROM "
                f"CAST({p('timers_seen')} AS TEXT) THEN '1' ELSE '{MOVED_MARK}' END AS INTEGER) AS ok)"]
        ctes += self._later(later)
        if queues:
            ctes += self._queue_ctes()
        return (f"WITH {', '.join(ctes)} INSERT INTO audit ({cols}) SELECT {cols} FROM (VALUES {self._values(n)}) "
                f"AS v ({cols}) WHERE (SELECT ok FROM chk) = 1")

    def _queue_ctes(self, gated: bool = False) -> list[str]:
        """The case's work queues set to the array `q_after`: rows not in it deleted, the others inserted
        unless present (disjoint sets: the order the CTEs run in cannot matter); `gated`: only if the
        versioned UPDATE `u` found its version."""
        p = self.param
        found = "EXISTS (SELECT 1 FROM u)"
        also, only = (f" AND {found}", f" WHERE {found}") if gated else ("", "")
        return [f"qd AS (DELETE FROM case_queue WHERE case_id = {p('case_id')} "
                f"AND queue <> ALL(CAST({p('q_after')} AS VARCHAR(80)[])){also})",
                f"qi AS (INSERT INTO case_queue ({QUEUE_COLUMNS}) SELECT "
                f"{p('case_id')}, q, {p('q_workflow')}, {self.queue_order}, TRUE "
                f"FROM unnest(CAST({p('q_after')} AS VARCHAR(80)[])) AS q{only} ON CONFLICT DO NOTHING)"]

    @lru_cache(maxsize=64)  # noqa: B019
    def open_and_log(self, n: int, later: tuple[tuple[str, int], ...], queues: bool) -> str:
        """PostgreSQL, a new case in one statement: its row (parameters `c_<column>`), its waiting writes
        (clocks and windows started at open), its work queues `q_after` if `queues`, and its `n` audit rows."""
        cols = ", ".join(AUDIT_COLUMNS)
        p = self.param
        ctes = [f"c AS ({self.insert_case})"]
        ctes += self._later(later)
        if queues:
            ctes.append(f"qi AS (INSERT INTO case_queue ({QUEUE_COLUMNS}) SELECT "
                        f"{p('c_id')}, q, {p('q_workflow')}, {nearest_deadline(p('c_id'))}, {p('c_created_at')}, TRUE "
                        f"FROM unnest(CAST({p('q_after')} AS VARCHAR(80)[])) AS q)")
        return f"WITH {', '.join(ctes)} INSERT INTO audit ({cols}) VALUES {self._values(n)}"

    @staticmethod
    def row_params(values: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
        params = dict(values)
        for i, r in enumerate(rows):
            params.update(zip(_row_keys(i), map(r.get, AUDIT_COLUMNS)))
        return params


@lru_cache(maxsize=64)
def _row_keys(i: int) -> tuple[str, ...]:
    """The parameter names of audit row `i` in a composite statement (`DialectSQL._values`)."""
    return tuple(f"{c}_{i}" for c in AUDIT_COLUMNS)


__all__ = ["STALE_MARK", "MOVED_MARK", "CASE_COLUMNS", "AUDIT_COLUMNS", "CaseRow", "SIGNOFF_KINDS", "SIGNOFF_COLUMNS",
           "SignoffRow", "TIMER_COLUMNS", "TimerRow", "DialectSQL", "render", "numbered", "nearest_deadline"]
