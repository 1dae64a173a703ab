"""Fixtures for the reliability suite, and the figures it prints at the end of a run.

Every test here adds what it did (attempts, conflicts, kills survived, inputs
tried…) through `support.note`; `pytest_terminal_summary` prints them so CI's
output shows them next to the pass/fail line.

A known engine bug is a test marked `engine_bug("what is wrong", backend=…)`:
it runs as xfail (strict, so the fix shows up as XPASS and the marker must go)
and is listed under "known engine bugs" in the same summary.

`launcher` starts real CLI processes (see support.Launcher and forkserver.py);
`light_workflows` is a workflows directory those processes compile quickly.
`own_pg` is a PostgreSQL server of the test's own (scripts/pg-throwaway.sh in a
tmp dir) that the test may stop and start again on the same data directory and
port: the shared CASEFLOW_TEST_PG server must never be stopped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from caseflow.catalog import SHIPPED

from .support import REPO, Launcher

PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
IN_CI = os.environ.get("CI", "").lower() == "true"


KNOWN_BUGS: dict[str, list[str]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine_bug(reason, backend=None, strict=True): a known engine bug; "
                                       "the test is expected to fail (xfail) until the engine is fixed")


def _engine_bugs(item: pytest.Item) -> list[pytest.Mark]:
    """The item's engine_bug marks that apply to it (a mark may name one backend: the db_url parameter)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return [m for m in item.iter_markers("engine_bug")
            if not m.kwargs.get("backend") or params.get("db_url") == m.kwargs["backend"]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """engine_bug → xfail (strict unless the bug is a race that a run may miss)."""
    for item in items:
        for mark in _engine_bugs(item):
            item.add_marker(pytest.mark.xfail(reason=f"engine bug: {mark.args[0]}",
                                              strict=mark.kwargs.get("strict", True)))


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in _engine_bugs(item):
        KNOWN_BUGS.setdefault(mark.args[0], []).append(item.nodeid.split("::")[-1])


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    # the figures themselves are printed by tests/conftest.py (tests/security adds to them too)
    if KNOWN_BUGS:
        terminalreporter.section("known engine bugs (xfail until fixed)")
        for reason, tests in KNOWN_BUGS.items():
            terminalreporter.write_line(f"- {reason} [{len(tests)} test(s)]")


@pytest.fixture(scope="session")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """Starts real CLI processes (forked from one pre-imported server unless RELIABILITY_SUBPROCESS=1)."""
    workdir = tmp_path_factory.mktemp("procs")
    lx = Launcher(workdir)
    try:
        yield lx
    finally:
        lx.close()


@pytest.fixture(scope="session")
def light_workflows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The refund and member-card processes only: a CLI process compiles two files instead of five.
    Same texts, so the same definition versions (sha256) as the shipped ones."""
    d = tmp_path_factory.mktemp("workflows")
    for name in ("org.yaml", "calendars.yaml", "refund.yaml", "member_card.yaml"):
        shutil.copy(SHIPPED / name, d / name)
    return d


@dataclass
class OwnPostgres:
    """A throwaway server this test controls: stop() and start() keep data dir and port."""

    directory: Path
    url: str
    port: int

    def _as_pg(self, *cmd: str) -> list[str]:
        if os.geteuid() == 0:
            runner = shutil.which("runuser")
            return [runner, "-u", "postgres", "--", *cmd] if runner else \
                ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]
        return list(cmd)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self._as_pg(str(PG_BINDIR / "pg_ctl"), "stop", "-D", str(self.directory / "pgdata"),
                                   "-m", mode, "-w", "-t", "60"),
                       check=True, capture_output=True, timeout=90, cwd="/")

    def fresh_url(self) -> str:
        """A new empty schema on this server (tests of one module share the server)."""
        import sqlalchemy as sa
        schema = f"t_{secrets.token_hex(6)}"
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        return f"{self.url}?options=-csearch_path%3D{schema}"

    def start(self) -> None:
        subprocess.run(self._as_pg(str(PG_BINDIR / "pg_ctl"), "start", "-D", str(self.directory / "pgdata"),
                                   "-l", str(self.directory / "postgres.log"), "-w", "-t", "60",
                                   "-o", f"-p {self.port}"),
                       check=True, capture_output=True, timeout=90, cwd="/")


@pytest.fixture(scope="module")
def own_pg() -> Iterator[OwnPostgres]:
    if not (PG_BINDIR / "pg_ctl").exists():
        if IN_CI:
            pytest.fail(f"CI=true but {PG_BINDIR}/pg_ctl is missing: the outage tests must run in CI")
        pytest.skip("PostgreSQL 15 binaries not installed")
    # Not under pytest's tmp dirs: those are 0700 and the server runs as `postgres` when we are root.
    directory = Path(tempfile.mkdtemp(prefix="caseflow-outage-pg."))
    script = REPO / "scripts" / "pg-throwaway.sh"
    started = subprocess.run(["bash", str(script), "start", str(directory)], capture_output=True, text=True,
                             timeout=180)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    port = int((directory / "port").read_text().strip())
    server = OwnPostgres(directory, url, port)
    try:
        yield server
    finally:
        subprocess.run(["bash", str(script), "stop", str(directory)], capture_output=True, timeout=180)
