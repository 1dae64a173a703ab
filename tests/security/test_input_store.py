"""Database URLs: in-memory databases are refused, passwords are never echoed (issue #14, Input)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from caseflow.catalog import SHIPPED
from caseflow.cli.main import cli
from caseflow.store.urls import shown_url

from .hostile import expect, handled


def _run(url: str, *args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, ["--db", url, "--as", "wang.fang", *args],
                              env={"CASEFLOW_WORKFLOWS": str(SHIPPED), "CASEFLOW_DB": None})


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_database_is_refused_before_anything_is_opened(url):
    expect(_run(url, "open", "refund"), 2, f"error: --db {url}: an in-memory database vanishes when the command "
                                           "ends; give a file (sqlite:///caseflow.db)\n")


@pytest.mark.parametrize("url, shown", [
    ("postgresql+nosuchdriver://u:s3cr3t-pw@h/db", "error: cannot use database 'postgresql+nosuchdriver://u:***@h/db': "
                                                   "Can't load plugin: sqlalchemy.dialects:postgresql.nosuchdriver\n"),
    ("mysql://u:s3cr3t-pw@h/db", "error: cannot use database 'mysql://u:***@h/db': caseflow runs on postgresql or "
                                 "sqlite\n"),
    ("u:s3cr3t-pw@::", "error: cannot use database 'u:***@::': not a database URL (e.g. sqlite:///caseflow.db, "
                       "postgresql+psycopg://user@host/db)\n"),
])
def test_a_bad_url_never_echoes_its_password(url, shown):
    r = _run(url, "list")
    assert "s3cr3t-pw" not in r.stdout + r.stderr
    expect(r, 5, shown)


def test_an_unreachable_server_never_echoes_the_password():
    r = _run("postgresql+psycopg://u:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=2", "list")
    assert handled("s3cr3t-pw" not in r.stdout + r.stderr and r.exit_code == 5), r.stderr


def test_shown_url_masks_only_the_password():
    assert shown_url("postgresql+psycopg://wang.fang:pw@db:5432/caseflow") == \
        "postgresql+psycopg://wang.fang:***@db:5432/caseflow"
    assert shown_url("sqlite:///caseflow.db") == "sqlite:///caseflow.db"
