"""The storage seam: one backend object per dialect, chosen from the URL, owning every difference."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from caseflow.errors import StorageError
from caseflow.store.backend import BACKENDS, PostgresBackend, SQLiteBackend, backend_for, backend_of
from caseflow.store.tables import decision_counts, definitions
from tests.helpers import COMPLAINT
from tests.test_architecture import PACKAGE, ROOT


def test_the_url_chooses_the_backend():
    assert isinstance(backend_for("sqlite:///x.db"), SQLiteBackend)
    assert isinstance(backend_for("sqlite://"), SQLiteBackend)
    assert isinstance(backend_for("postgresql+psycopg://u@h/db"), PostgresBackend)
    assert isinstance(backend_for("postgresql://u@h/db"), PostgresBackend)


def test_an_unsupported_database_is_one_line():
    with pytest.raises(StorageError, match=r"^cannot use database 'mysql://u@h/db': caseflow runs on "
                                           r"postgresql or sqlite$"):
        backend_for("mysql://u@h/db")
    with pytest.raises(StorageError, match="cannot use database 'not a url'"):
        backend_for("not a url")


def test_the_store_keeps_its_backend(store):
    with store.read() as conn:
        assert backend_of(conn) is store.backend
    assert store.backend.name == store.engine.dialect.name


def test_insert_or_ignore_and_increment_work_on_both(store):
    b = store.backend
    row = dict(sha256="f" * 64, workflow="w", text="t", path="p", created_at="2026-01-01T00:00:00Z")
    with store.write() as conn:
        conn.execute(b.insert_or_ignore(definitions, ["sha256"], **row))
        conn.execute(b.insert_or_ignore(definitions, ["sha256"], **{**row, "text": "other"}))
        counts = [conn.execute(b.increment(decision_counts, ["workflow", "decision", "key", "period"], "count",
                                           workflow="*", decision="d", key="k", period="2026-01")).scalar_one()
                  for _ in range(3)]
        b.lock(conn, "attempts")
    assert counts == [1, 2, 3]
    with store.read() as conn:
        assert conn.execute(sa.select(definitions.c.text).where(definitions.c.sha256 == "f" * 64)).all() == [("t",)]


def test_the_append_only_triggers_are_the_backends(engine, store):
    """The migration installed exactly the triggers the backend names: dropping them by its DDL works."""
    engine.open("complaint", "wang.fang", COMPLAINT)
    with store.engine.begin() as conn:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with conn.begin_nested():
                conn.exec_driver_sql("UPDATE audit SET note = 'x'")
        for ddl in store.backend.drop_append_only_ddl("audit"):
            conn.exec_driver_sql(ddl)
        conn.exec_driver_sql("UPDATE audit SET note = 'x'")
        for ddl in store.backend.append_only_ddl("audit"):      # as a migration installs them (op.execute)
            conn.execute(sa.text(ddl))
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with conn.begin_nested():
                conn.exec_driver_sql("DELETE FROM audit")


def test_every_backend_fills_the_seam():
    for backend in BACKENDS.values():
        assert backend.append_only_ddl("audit") and backend.drop_append_only_ddl("audit")
        assert backend.insert(definitions) is not None


def test_no_dialect_difference_outside_the_backend():
    """`is_postgres`, dialect names and dialect-specific SQL live in store/backend*.py only (the seam, its base
    and one module per dialect)."""
    pattern = re.compile(r"is_postgres|dialect\.name|sqlalchemy\.dialects|pg_advisory|skip_locked=|"
                         r"isolation_level|[\"']postgres|[\"']sqlite[\"']|exec_driver_sql\(\"BEGIN")
    frozen = PACKAGE / "store" / "migrations" / "versions" / "0001_initial.py"   # a landed revision
    found = [f"{p.relative_to(ROOT)}:{n}" for p in PACKAGE.rglob("*.py")
             if not (p.parent.name == "store" and p.name.startswith("backend")) and p != frozen
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert found == []
