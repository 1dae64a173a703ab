"""Schema creation and upgrades with Alembic, checked cheaply on every start.

Every CLI call opens the store; running Alembic's machinery each time would
cost ~100 ms, so we first compare the stored revision with the head and only
upgrade when they differ. That check is two statements of driver SQL (is the
revision table there, the revision): SQLAlchemy's reflection (`has_table`)
compiled a catalog query in every process, and on PostgreSQL it was a third of
`caseflow show`'s own time after imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from caseflow.store import reads
from caseflow.store.driver_run import run

if TYPE_CHECKING:
    from alembic.config import Config

    from caseflow.store.database import Store

HEAD = "0013_queue_order_when"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    from alembic.config import Config  # imported only when a migration runs (it costs start-up time)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def current(store: Store) -> str | None:
    """The stored revision, read without taking the write lock; None for a new (or missing) database."""
    try:
        with store.engine.connect() as conn:
            conn = conn.execution_options(**store.backend.read_options())
            backend = store.backend
            exists = backend.table_exists.format(backend.param_style.format("name"))
            if run(conn, exists, {"name": "alembic_version"}).fetchone() is None:
                return None
            row = reads.first(conn, reads.REVISION)        # driver SQL: no Core compile per process
            return row[0] if row else None
    except sa.exc.OperationalError:
        if store.readonly and store.backend.creates_on_open:
            return None         # a read-only open of a file that is not there yet: the writer creates it
        raise


def upgrade(store: Store) -> None:
    if current(store) == HEAD:
        return
    from alembic import command
    cfg = _config()
    with store.writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def require_current(store: Store) -> None:
    """A runtime role never migrates (PostgreSQL): an out-of-date schema is one line for the owner."""
    from caseflow.errors import StorageError
    try:
        found = current(store)
    except sa.exc.DBAPIError as exc:
        raise StorageError(f"database error: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}") from None
    if found != HEAD:
        raise StorageError(f"the database schema is at {found or 'nothing'} and this caseflow needs {HEAD}: run "
                           "`caseflow db init` (a new database) or `caseflow db upgrade` as the owner role")


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(_config()).get_current_head()
