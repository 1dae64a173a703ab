"""The storage seam's base: what every backend has, with the defaults (store/backend.py has the registry).

A backend is one object per dialect that owns every difference between the databases; the
subclasses are store/backend_sqlite.py and store/backend_postgres.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.sql.elements import ColumnElement

from caseflow.store.idle_ping import ping_when_idle as _ping_when_idle
from caseflow.store.locks import LockWait

LOCKS = {"attempts": 7242001, "checkpoints": 7242002}    # advisory locks: one chain's writers (attempts, checkpoints)

READONLY, SINGLE_READ = "caseflow_readonly", "caseflow_single_read"    # options the SQLite begin hook reads


class Backend:
    """What one database dialect does its own way. Stateless: one shared instance per dialect."""

    name: ClassVar[str] = ""
    explain: ClassVar[str] = "EXPLAIN "          # prefix that shows the plan of a query (inbox --explain)
    # Operators log in as themselves (the person comes from the login) and the runtime role owns nothing,
    # so only `caseflow db init` / `db upgrade` (as the owner) migrate. SQLite: one file, migrated on use.
    has_logins: ClassVar[bool] = False
    # The database is a file the first writer creates: a read-only open of a missing one is "no schema yet".
    creates_on_open: ClassVar[bool] = False

    # -- URLs (store/urls.py) --------------------------------------------------------------------
    def database_file(self, url: str) -> Path | None:
        """The file the URL names (to keep `-o` off it); None for a server database."""
        return None

    def in_memory(self, url: str) -> bool:
        """Whether the database vanishes when the command ends (refused: store/urls.py)."""
        return False

    # -- connections --------------------------------------------------------------------------
    def create_engine(self, url: str, readonly: bool = False, wait: LockWait | None = None) -> SAEngine:
        """An engine for `url`; `readonly`: its connections only read; writers wait as `wait` says (locks.py)."""
        engine = sa.create_engine(url)
        _ping_when_idle(engine)
        return engine

    def action_options(self) -> dict[str, Any]:
        """Options of an action's connection (`Store.action`), kept for its write (`begin_write`): the snapshot
        is a single read; PostgreSQL's stays in autocommit (a plain step's write is one statement)."""
        return self.single_read_options()

    def begin_write(self, conn: Connection, wait: LockWait) -> None:
        """`Store.write` on an action's connection (its options stay a single read's): SQLite takes its lock."""

    def more_statements(self, conn: Connection) -> None:
        """Before the first statement of a write that is more than the case row and its audit rows."""

    def send_ahead(self, conn: Connection) -> Any:
        """Where the server can take an import's rows while the client works out the next ones, a sender with
        `statement(table, columns)`, `copy(statement, rows)`, `wait()`, `abandon()` (store/copy_ahead.py);
        else None (runtime/batch_writes.py)."""
        return None

    # Hot-path SQL (store/driver_sql.py): a named parameter for the DB-API driver; whether a data-modifying
    # CTE makes the versioned UPDATE and the audit INSERT one statement; whether it is sent numbered (`$1, …`).
    # `one_writer`: a write transaction holds the whole database, so it may set triggers aside (an import).
    # `table_exists`: one row if the table `{}` names is there (store/migrate.py, at every start: not reflection).
    param_style: ClassVar[str] = ":{}"
    one_statement_write, numbered, one_writer = False, False, False
    table_exists: ClassVar[str] = "SELECT 1 FROM information_schema.tables WHERE table_name = {}"     # (SQL standard)

    def is_lock_timeout(self, exc: BaseException) -> bool:
        """The database gave up waiting for a lock (`lock_timeout`)."""
        return False

    def read_options(self) -> dict[str, Any]:
        """Execution options of a read-only connection."""
        return {READONLY: True}

    def single_read_options(self) -> dict[str, Any]:
        """Execution options for one SELECT outside any transaction (no BEGIN/COMMIT round trips)."""
        return {READONLY: True, SINGLE_READ: True}

    def consistent_options(self) -> dict[str, Any]:
        """Execution options under which every query of one transaction sees the same snapshot."""
        return self.read_options()

    # -- statements ---------------------------------------------------------------------------
    def insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT."""
        raise NotImplementedError

    def insert_or_ignore(self, table: sa.Table, keys: list[str], **values: Any) -> Any:
        """INSERT a row unless one with the same `keys` exists (a race between two first writers is fine)."""
        return self.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)

    def increment(self, table: sa.Table, keys: list[str], column: str, **values: Any) -> Any:
        """INSERT the row with `column` = 1 or add 1 to it, atomically; RETURNING the new value."""
        col = table.c[column]
        return (self.insert(table).values(**values, **{column: 1})
                .on_conflict_do_update(index_elements=keys, set_={column: col + 1})
                .returning(col))

    def one_of(self, column: sa.Column[Any], param: str) -> ColumnElement[bool]:
        """`column` is one of the list bound as `param` (an expanding IN)."""
        return column.in_(sa.bindparam(param, expanding=True))

    def skip_locked(self, select: sa.Select[Any]) -> sa.Select[Any]:
        """Lock the selected rows, skipping rows another transaction holds."""
        return select.with_for_update(skip_locked=True)

    def lock(self, conn: Connection, name: str) -> None:
        """Serialize the writers of one chain until the transaction ends (see LOCKS)."""

    # -- identity and privileges -------------------------------------------------------------
    def session_login(self, conn: Connection) -> str | None:
        """The database login of this session (None where there are no logins)."""
        return None

    def grant_runtime(self, conn: Connection, role: str) -> list[str]:
        """Grant a runtime role exactly what the engine needs; returns the statements run."""
        from caseflow.errors import UsageError
        raise UsageError(f"--grant applies to PostgreSQL; {self.name} has no roles")

    # -- DDL ----------------------------------------------------------------------------------
    def append_only_ddl(self, table: str) -> list[str]:
        """Statements installing triggers that refuse UPDATE and DELETE on `table`."""
        raise NotImplementedError

    def drop_append_only_ddl(self, table: str) -> list[str]:
        """Statements removing them again (what an intruder does first; the tests do it too)."""
        raise NotImplementedError

    def append_only_triggers(self, table: str) -> list[str]:
        """The names of the triggers `append_only_ddl` creates."""
        raise NotImplementedError

    def enabled_triggers(self, conn: Connection) -> set[str]:
        """Names of the triggers in force on this schema (present, and enabled)."""
        raise NotImplementedError

    def row_trigger_ddl(self, name: str, table: str, event: str, body: str, when: str | None = None,
                        only: str | None = None) -> tuple[list[str], list[str]]:
        """(create, drop) of an AFTER `event` row trigger running SQL `body` where `only` (no subquery), `when` hold."""
        cond = " AND ".join(f"({c})" for c in (only, when) if c) if only else when
        return ([f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{f' WHEN {cond}' if cond else ''} "
                 f"BEGIN {body}; END"], [f"DROP TRIGGER {name}"])

    def write_grants(self, conn: Connection, tables: tuple[str, ...]) -> list[tuple[str, str, str]]:
        """(grantee, table, privilege) of UPDATE/DELETE/TRUNCATE grants on `tables` to anyone but the owner."""
        return []

    def analyze(self, conn: Connection, table: str | None = None) -> None:
        """Refresh the planner's statistics (after a bulk load), of every table or of `table`."""

    def planned_rows(self, conn: Connection, table: str) -> int:
        """The rows the planner's statistics count in `table` (0: none taken, or plans that use none)."""
        return 0
