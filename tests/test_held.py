"""Back-to-back actions share one connection (store/held.py) — and nothing else changes: a kept
connection is given back after a moment, pinged by the pool before its next use, never kept by a
worker thread, never kept broken, and closed with the store."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.idle_ping import IDLE_PING_S, IDLE_SINCE
from tests.helpers import open_refund


def _checkouts(store: Store, work: Any) -> int:
    found: list[int] = []

    def checkout(*_: Any) -> None:
        found.append(1)

    sa.event.listen(store.engine, "checkout", checkout)
    try:
        work()
    finally:
        sa.event.remove(store.engine, "checkout", checkout)
    return len(found)


def _refund_steps(engine: Engine, cid: str) -> None:
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    engine.advance(cid, "explain", "lin.xiao", {"reason": "客户资金周转困难", "responsibility": "客户原因"})


def test_actions_back_to_back_check_out_one_connection(engine: Engine, store: Store) -> None:
    cid = open_refund(engine)
    assert _checkouts(store, lambda: _refund_steps(engine, cid)) == 0     # the open's connection, kept
    assert engine.read_case(cid).state == "applying"


def test_a_connection_kept_past_the_moment_goes_back_as_idle_since_it_was_kept(engine: Engine,
                                                                               store: Store) -> None:
    """So the pool's idle ping (store/idle_ping.py) runs before the connection is used again."""
    cid = open_refund(engine)
    kept = store._held._conn
    assert kept is not None
    record = kept.connection._connection_record
    time.sleep(IDLE_PING_S + 0.05)
    assert _checkouts(store, lambda: engine.advance(cid, "start_before_work", "wang.fang")) == 1
    assert record.info[IDLE_SINCE] < time.monotonic() - IDLE_PING_S    # not "given back just now"


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)      # a server that drops a connection
def test_a_connection_lost_while_kept_is_replaced_without_an_error(engine: Engine, store: Store,
                                                                  db_url: str) -> None:
    cid = open_refund(engine)
    kept = store._held._conn
    assert kept is not None
    pid = kept.connection.dbapi_connection.info.backend_pid
    admin = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    time.sleep(IDLE_PING_S + 0.05)
    assert engine.advance(cid, "start_before_work", "wang.fang")["state"] == "terminating"


def test_a_worker_threads_action_gives_its_connection_back_at_once(engine: Engine, store: Store) -> None:
    cid = open_refund(engine)
    store._held.close()
    done: list[str] = []

    def work() -> None:
        engine.advance(cid, "start_before_work", "wang.fang")
        done.append("ok")

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert done == ["ok"]
    assert store.engine.pool.checkedout() == 0


def test_a_refused_action_keeps_no_connection(engine: Engine, store: Store) -> None:
    cid = open_refund(engine)
    store._held.close()
    try:
        engine.advance(cid, "pay", "wang.fang")
    except Exception as exc:  # noqa: BLE001 - any refusal will do; what matters is the pool afterwards
        assert type(exc).__name__ in ("WrongState", "RoleNotAllowed")
    assert store.engine.pool.checkedout() == 0


def test_dispose_closes_the_kept_connection(engine: Engine, store: Store) -> None:
    open_refund(engine)
    assert store.engine.pool.checkedout() == 1          # kept for the next action
    store.dispose()
    assert store.engine.pool.checkedout() == 0


def test_disposing_the_engine_closes_the_kept_connection_too(engine: Engine, store: Store, db_url: str,
                                                             tmp_path: Any) -> None:
    """As before connections were kept: after `store.engine.dispose()` no connection is left open, so on
    SQLite the WAL is checkpointed and a copy of the database file alone has every case."""
    cid = open_refund(engine)
    assert store._held._conn is not None
    store.engine.dispose()
    assert store._held._conn is None
    if db_url.startswith("sqlite"):
        import shutil
        import sqlite3
        copy = tmp_path / "copy.db"
        shutil.copy(db_url.removeprefix("sqlite:///"), copy)
        with sqlite3.connect(copy) as conn:
            assert conn.execute("SELECT count(*) FROM cases WHERE id = ?", (cid,)).fetchone() == (1,)
