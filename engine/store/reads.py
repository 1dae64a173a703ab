"""The few reads a command makes on its way to a case, as driver SQL (run by `driver_run.run`).

Each SQLAlchemy Core statement is compiled once per process on first use, and a CLI command is a
new process: `caseflow show` compiled five selects (about 3 ms of its cold start, issue #18) to
read the database's mode, the org version in force, the schema revision, a definition version's
stored text and a case's timers. These are the same statements as fixed text in the backend's
parameter style; rows come back as the DB-API gives them (tuples), with the same values as
Core's for these columns (strings, integers, floats; the SQLite Boolean as 0/1).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.store.backend import backend_of
from caseflow.store.driver_run import run
from caseflow.store.driver_text import TIMER_COLUMNS, TimerRow

MODE = "SELECT value FROM settings WHERE key = 'mode'"
LAST_ORG = "SELECT id, sha256 FROM orgs ORDER BY id DESC LIMIT 1"
REVISION = "SELECT version_num FROM alembic_version"
_DEFINITION = "SELECT text, path FROM definitions WHERE sha256 = {}"
StoredDefinition = namedtuple("StoredDefinition", ("text", "path"))
_TIMERS = f"SELECT {', '.join(TIMER_COLUMNS)} FROM timers WHERE case_id = {{}} ORDER BY id"


def first(conn: Connection, statement: str) -> tuple[Any, ...] | None:
    """The first row of a statement without parameters."""
    return run(conn, statement, None).fetchone()


def definition_text(conn: Connection, sha: str) -> StoredDefinition:
    """The text and path of the stored definition version `sha`; `NoResultFound` (as Core's `.one()`)."""
    statement = _DEFINITION.format(backend_of(conn).param_style.format("sha"))
    row = run(conn, statement, {"sha": sha}).fetchone()
    if row is None:
        raise sa.exc.NoResultFound("No row was found when one was required")
    return StoredDefinition._make(row)


def case_timers(conn: Connection, case_id: str) -> list[Any]:
    """The case's timers (every column, as `TimerRow`s), in the order they were started."""
    statement = _TIMERS.format(backend_of(conn).param_style.format("case_id"))
    return [TimerRow._make(r) for r in run(conn, statement, {"case_id": case_id}).fetchall()]


__all__ = ["MODE", "LAST_ORG", "REVISION", "StoredDefinition", "first", "definition_text", "case_timers"]
