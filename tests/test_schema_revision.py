"""The schema check every command makes at start (store/migrate.py): driver SQL, on both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from caseflow.errors import StorageError
from caseflow.store import migrate
from caseflow.store.database import Store


def test_an_empty_database_has_no_revision_and_a_migrated_one_is_at_head(db_url: str) -> None:
    store = Store(db_url)
    try:
        assert migrate.current(store) is None
        with pytest.raises(StorageError, match=f"schema is at nothing and this caseflow needs {migrate.HEAD}"):
            migrate.require_current(store)
        store.migrate(simulation=True)
        assert migrate.current(store) == migrate.HEAD
        migrate.require_current(store)          # nothing to say
    finally:
        store.engine.dispose()


def test_an_older_revision_is_named_and_the_owner_told_what_to_run(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.migrate(simulation=True)
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0012_older'"))
        assert migrate.current(store) == "0012_older"
        with pytest.raises(StorageError, match=r"schema is at 0012_older and this caseflow needs .*caseflow db upgrade"):
            migrate.require_current(store)
    finally:
        store.engine.dispose()


def test_a_table_of_another_name_is_not_taken_for_the_revision_table(db_url: str) -> None:
    """Only `alembic_version` counts (the check names the table; it does not match a prefix or a pattern)."""
    store = Store(db_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE alembic_versions (version_num VARCHAR(32))"))
            conn.execute(sa.text("INSERT INTO alembic_versions VALUES ('0013_queue_order_when')"))
        assert migrate.current(store) is None
    finally:
        store.engine.dispose()
