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
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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

# One cache directory per test process (compiled definitions, verification records), never the user's
# ~/.cache: made when the suite is imported, removed when the run ends (pytest_unconfigure). Each
# process makes its own (pytest-xdist workers too), so each removes exactly what it made.
RUN_CACHE = Path(tempfile.mkdtemp(prefix="caseflow-test-cache-"))
os.environ["CASEFLOW_CACHE_DIR"] = str(RUN_CACHE)
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


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's cache directory goes with the run (the user's own CASEFLOW_CACHE_DIR was never used)."""
    if _BACKGROUND and _BACKGROUND["proc"].poll() is None:      # a run that ended before it was needed
        _BACKGROUND["proc"].kill()
        _BACKGROUND["proc"].wait()
    if _BACKGROUND:
        shutil.rmtree(_BACKGROUND["base"], ignore_errors=True)
    shutil.rmtree(RUN_CACHE, ignore_errors=True)
    if RUN_CACHE.exists():
        print(f"warning: could not remove the test run's cache directory {RUN_CACHE}")


VERIFY_SHIPPED = ["verify", "--fresh", "--bound", "8", "--json"]
_BACKGROUND: dict[str, Any] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """When a collected test needs `shipped_verification`, its search starts now in a process of its
    own (at low priority, on the core the suite leaves idle) with a cache directory of its own, so the
    run's cache holds its records only from the fixture's first use on, as when it ran in-process."""
    if any("shipped_verification" in getattr(item, "fixturenames", ()) for item in session.items):
        _verify_shipped_in_background()


def _verify_shipped_in_background() -> None:
    base = Path(tempfile.mkdtemp(prefix="caseflow-shipped-verify-"))
    root = SHIPPED.parent.parent                     # `workflows` is the repository's link to them
    out, err = (base / "stdout").open("wb"), (base / "stderr").open("wb")
    env = {**os.environ, "CASEFLOW_CACHE_DIR": str(base / "cache")}
    proc = subprocess.Popen([sys.executable, "-c", "from caseflow.cli.main import main; main()",
                             "--workflows", str(root / "workflows"), *VERIFY_SHIPPED],
                            cwd=root, env=env, stdout=out, stderr=err, preexec_fn=lambda: os.nice(10))
    out.close()
    err.close()
    _BACKGROUND.update(proc=proc, base=base)


@pytest.fixture(scope="session")
def shipped_verification() -> Result:
    """`caseflow verify --fresh --bound 8 --json` of the shipped workflows, once per run (~35 s of CPU).

    A real search every time (--fresh), recorded in the run's cache (`caseflow workflows` shows it).
    The packaged records of the shipped workflows, which `validate` of them reuses, are checked
    against it (tests/verification/test_packaged.py). Started when collection ends
    (pytest_collection_finish); its cache directory's records are moved into the run's here.
    """
    if not _BACKGROUND:                              # (asked for by a test collection did not see)
        _verify_shipped_in_background()
    proc, base = _BACKGROUND["proc"], _BACKGROUND["base"]
    code = proc.wait(timeout=1200)
    if (base / "cache").exists():
        shutil.copytree(base / "cache", RUN_CACHE, dirs_exist_ok=True)
    result = Result(code, (base / "stdout").read_text(encoding="utf-8"),
                    (base / "stderr").read_text(encoding="utf-8"))
    shutil.rmtree(base)
    return result


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
    with _pg_admin().connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield _in_schema(schema)
    with _pg_admin().connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


_ADMIN: list[sa.Engine] = []


def _pg_admin() -> sa.Engine:
    """One autocommit engine on CASEFLOW_TEST_PG for the whole run (creating and dropping test schemas)."""
    if not _ADMIN:
        assert PG_URL
        _ADMIN.append(sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT"))
    return _ADMIN[0]


def _in_schema(schema: str) -> str:
    sep = "&" if PG_URL and "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


class Migrated:
    """`Store(url).migrate(simulation=True)` on an empty database, done once per run and then repeated.

    SQLite: the migrated file is copied. PostgreSQL: every statement the migration sent is
    recorded (parameters rendered as literals, the reads left out) and sent again as one script
    into the test's own schema, so its tables, indexes, triggers, functions and rows are the
    ones Alembic made (pg_dump of a replayed schema equals pg_dump of the migrated one).
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self._sqlite: Path | None = None
        self._script: str | None = None

    def __call__(self, url: str) -> None:
        """Make the database at `url` a migrated simulation database if it is still empty (else leave it)."""
        if url.startswith("sqlite"):
            target = Path(url.removeprefix("sqlite:///"))
            if not target.exists():
                shutil.copyfile(self._sqlite_file(), target)
            return
        schema = url.rsplit("search_path%3D", 1)[1]
        script = self._pg_script()
        with _pg_admin().connect() as conn:      # (autocommit: the script is one transaction of its own)
            if not conn.execute(sa.text("SELECT 1 FROM pg_tables WHERE schemaname = :s"), {"s": schema}).first():
                # the driver's own execute, no parameters: the text goes to the server as it is
                sql = f"BEGIN;\nSET LOCAL search_path TO {schema};\n{script};\nCOMMIT"
                conn.connection.driver_connection.execute(sql)

    def _sqlite_file(self) -> Path:
        if self._sqlite is None:
            path = self.base / "migrated.db"
            store = Store(f"sqlite:///{path}")
            store.migrate(simulation=True)
            store.engine.dispose()
            assert not Path(f"{path}-wal").exists(), "the template's WAL was not checkpointed into the file"
            self._sqlite = path
        return self._sqlite

    def _pg_script(self) -> str:
        if self._script is None:
            import psycopg
            schema = f"t_template_{secrets.token_hex(4)}"
            with _pg_admin().connect() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
            sent: list[str] = []

            def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
                assert not many, "the migration sent an executemany; record each row"
                # as the server received it: parameters as literals (and a %% of a statement sent with
                # parameters, even none, as the % it stands for)
                sent.append(psycopg.ClientCursor(cursor.connection).mogrify(statement, parameters))

            store = Store(_in_schema(schema))
            assert store.writer is store.engine
            sa.event.listen(store.engine, "before_cursor_execute", record)
            store.migrate(simulation=True)
            store.dispose()
            with _pg_admin().connect() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            writes = [s for s in sent if not s.lstrip().upper().startswith("SELECT")]
            assert writes, "the migration sent nothing"
            self._script = ";\n".join(writes)
        return self._script


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    """migrated(url): the database a fresh `Store(url).migrate(simulation=True)` makes, from a copy."""
    yield Migrated(tmp_path_factory.mktemp("migrated"))
    if _ADMIN:
        _ADMIN.pop().dispose()


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


@contextmanager
def fresh_store(db_url: str, migrated: Migrated) -> Iterator[Store]:
    """Another fresh migrated simulation database on db_url's backend, removed on exit (e.g. one per
    hypothesis example, which the function-scoped `store` cannot give): a new file or schema each time."""
    name = f"x{secrets.token_hex(6)}"
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///")).with_name(f"{name}.db")
        url = f"sqlite:///{path}"
    else:
        with _pg_admin().connect() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {name}"))
        url = _in_schema(name)
    migrated(url)
    s = Store(url)
    s.migrate(simulation=True)
    try:
        yield s
    finally:
        s.dispose()
        if url.startswith("sqlite"):
            for leftover in path.parent.glob(f"{name}.db*"):
                leftover.unlink()
        else:
            with _pg_admin().connect() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))


@pytest.fixture
def store(db_url: str, migrated: Migrated) -> Iterator[Store]:
    migrated(db_url)                    # tests move the clock by hand: a simulation database
    s = Store(db_url)
    s.migrate(simulation=True)          # at head already: a read that checks it is a simulation
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
def run(db_url: str, clock: Clock, migrated: Migrated) -> Any:
    """Run the CLI in-process against the test database: run('--as', 'wang.fang', 'show', cid)."""
    runner = CliRunner()
    if db_url.startswith("postgresql"):      # on PostgreSQL the owner creates the schema (`caseflow db init`)
        migrated(db_url)
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
