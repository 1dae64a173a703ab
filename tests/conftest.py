"""Shared fixtures: one suite, two real databases (SQLite and PostgreSQL).

`backend` is parametrized over sqlite and postgres. PostgreSQL comes from
CASEFLOW_TEST_PG (the URL `.ci/run` exports); each test gets its own schema so
tests never see each other's rows. With CI=true a missing PostgreSQL is a
failure, never a skip.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from caseflow.catalog import SHIPPED, Catalog
from caseflow.cli.main import cli
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store

# Compiled definitions are cached per test session, not in the user's ~/.cache (definition/cache.py).
os.environ.setdefault("CASEFLOW_CACHE_DIR", tempfile.mkdtemp(prefix="caseflow-test-cache-"))
SHANGHAI = ZoneInfo("Asia/Shanghai")
PG_URL = os.environ.get("CASEFLOW_TEST_PG")
DEFAULT_USER = "wei.hua"      # the `run` fixture's CASEFLOW_USER: an auditor (can_audit); pass --as "" for nobody
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(what: str, present: bool, install: str) -> None:
    """A test that needs a system tool skips with one line when it is missing, and fails when CI=true."""
    if present:
        return
    line = f"{what} is not installed ({install}; .ci/run installs it)"
    if IN_CI:
        pytest.fail(f"CI=true but {line}", pytrace=False)
    pytest.skip(line)


def require_graphviz() -> str:
    dot = shutil.which("dot")
    require("Graphviz `dot`", dot is not None, "apt-get install graphviz")
    assert dot is not None
    return dot


def require_cjk_font(family: str) -> None:
    """fontconfig must resolve `family` to a font with Chinese glyphs (else PNGs show empty boxes)."""
    fc = shutil.which("fc-match")
    langs = subprocess.run([fc, "-f", "%{lang}", family], capture_output=True, text=True, timeout=60).stdout \
        if fc else ""
    require(f"a CJK font for {family!r}", "zh-cn" in langs.split("|"), "apt-get install fonts-noto-cjk")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    """The figures tests/reliability and tests/security collect (support.note), after the pass/fail line."""
    from tests.reliability.support import FIGURES
    if FIGURES:
        terminalreporter.section("reliability figures")
        for area in sorted(FIGURES):
            figures = ", ".join(f"{name} {n}" for name, n in sorted(FIGURES[area].items()))
            terminalreporter.write_line(f"{area}: {figures}")


def shanghai(text: str) -> datetime:
    """'2025-01-24 17:00' in Shanghai → aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture(scope="session", autouse=True)
def verification_record(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One verification record for the whole run (never the user's ~/.cache): shipped workflows verify once."""
    where = tmp_path_factory.mktemp("caseflow-cache")
    before = os.environ.get("CASEFLOW_CACHE_DIR")
    os.environ["CASEFLOW_CACHE_DIR"] = str(where)
    yield where
    if before is None:
        os.environ.pop("CASEFLOW_CACHE_DIR", None)
    else:
        os.environ["CASEFLOW_CACHE_DIR"] = before


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'caseflow.db'}"
        return
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI=true but CASEFLOW_TEST_PG is not set: PostgreSQL tests must run in CI")
        pytest.skip("PostgreSQL not configured (set CASEFLOW_TEST_PG)")
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@dataclass
class Clock:
    """A simulated clock the tests move by hand."""

    now: datetime = field(default_factory=lambda: shanghai("2025-03-03 10:00"))

    def __call__(self) -> datetime:
        return self.now

    def set(self, text: str) -> None:
        self.now = shanghai(text)

    def advance(self, **kwargs: float) -> None:
        self.now = self.now + timedelta(**kwargs)


@pytest.fixture(scope="session")
def shipped_catalog() -> Catalog:
    return Catalog.load(SHIPPED)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    s.migrate(simulation=True)          # tests move the clock by hand: a simulation database
    yield s
    s.engine.dispose()


@pytest.fixture
def engine(store: Store, shipped_catalog: Catalog, clock: Clock) -> Engine:
    """An Engine over the shipped workflows, a fresh database and the simulated clock."""
    return Engine(store, shipped_catalog, clock)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def run(db_url: str, clock: Clock) -> Any:
    """Run the CLI in-process against the test database: run('--as', 'wang.fang', 'show', cid)."""
    runner = CliRunner()
    if db_url.startswith("postgresql"):      # on PostgreSQL the owner creates the schema (`caseflow db init`)
        owner = Store(db_url)
        owner.migrate(simulation=True)
        owner.engine.dispose()

    def _run(*args: str, workflows: Path | str = SHIPPED, now: datetime | None = None) -> Result:
        # A simulation database (so CASEFLOW_NOW counts); commands without --as run as an auditor.
        env = {"CASEFLOW_DB": db_url, "CASEFLOW_WORKFLOWS": str(workflows), "CASEFLOW_SIMULATION": "1",
               "CASEFLOW_NOW": (now or clock.now).isoformat(), "CASEFLOW_USER": DEFAULT_USER}
        r = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        return Result(r.exit_code, r.stdout, r.stderr)
    return _run


def case_row(store: Store, case_id: str) -> dict[str, Any]:
    from caseflow.store.tables import cases
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).one()
    return dict(row._mapping)


def audit_rows(store: Store, case_id: str) -> list[dict[str, Any]]:
    from caseflow.store.tables import audit
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(audit).where(audit.c.case_id == case_id).order_by(audit.c.seq))
        return [dict(r._mapping) for r in rows]


def snapshot(store: Store, case_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Everything a refusal must leave untouched: the case row and its audit log."""
    return case_row(store, case_id), audit_rows(store, case_id)
