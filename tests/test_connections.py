"""A command leaves no database connection behind, refused or not.

Before the CLI closed its pools at the end of each command, every refused read (which opens a
writer to record the refusal) left two PostgreSQL connections open in a long-lived process, and
a long test run ended in `too many clients already`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa


def _open_handles(db_url: str) -> int:
    if db_url.startswith("postgresql"):
        admin = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()"
                                     " AND backend_type = 'client backend'")).scalar_one()
        admin.dispose()
        return int(n)
    path = Path(db_url.removeprefix("sqlite:///"))
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd).startswith(str(path)))


def test_commands_refused_or_not_close_their_connections(run: Any, db_url: str) -> None:
    run("--as", "wang.fang", "list")
    before = _open_handles(db_url)
    for _ in range(10):
        assert run("--as", "wang.fang", "audit", "verify").exit_code == 1        # refused, and recorded
        assert run("--as", "wang.fang", "show", "REF-00000000").exit_code == 4  # not found
        assert run("--as", "wang.fang", "list").exit_code == 0
        assert run("--as", "nobody", "list").exit_code != 0                     # unknown person, recorded
    assert _open_handles(db_url) <= before
