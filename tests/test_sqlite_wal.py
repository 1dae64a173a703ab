"""A SQLite database's write-ahead log: checkpointed every WAL_CHECKPOINT_PAGES pages, not SQLite's 1,000.

A checkpoint costs two fsyncs however few pages it copies; at SQLite's default a complaint paid
one every ~40 steps (README, "SQLite settings"). What an operator would notice on disk: the
`-wal` file beside the database grows past SQLite's default and stays within caseflow's.
"""

from __future__ import annotations

from pathlib import Path

from caseflow.catalog import Catalog
from caseflow.runtime.engine import Engine
from caseflow.store.backend_sqlite import WAL_CHECKPOINT_PAGES
from caseflow.store.database import Store
from tests.helpers import COMPLAINT

PAGE = 4096 + 24          # a WAL frame: SQLite's default page size and the frame's header


def _wal(db: Path) -> tuple[float, int]:
    """The -wal file's size in pages and its checkpoint sequence number (the WAL header's 4th big-endian
    word, https://sqlite.org/fileformat2.html#walformat: it counts the times the log restarted after a
    checkpoint)."""
    wal = db.with_name(db.name + "-wal")
    with wal.open("rb") as f:
        head = f.read(16)
    return wal.stat().st_size / PAGE, int.from_bytes(head[12:16], "big")


def test_the_wal_is_checkpointed_at_caseflows_size_not_sqlites_default(tmp_path: Path,
                                                                       shipped_catalog: Catalog) -> None:
    db = tmp_path / "caseflow.db"
    store = Store(f"sqlite:///{db}")
    store.migrate(simulation=True)
    engine = Engine(store, shipped_catalog)
    try:
        with store.writer.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_CHECKPOINT_PAGES
        engine.open("complaint", "wang.fang", dict(COMPLAINT))
        largest, first = _wal(db)
        for _ in range(1500):                  # ~10 pages an open: the first checkpoint comes at ~400
            engine.open("complaint", "wang.fang", dict(COMPLAINT))
            pages, restarts = _wal(db)
            if restarts != first:             # checkpointed, and the log begins again from its start
                break
            largest = max(largest, pages)
        else:
            raise AssertionError(f"1,500 opens and the WAL ({largest:.0f} pages) was never checkpointed")
    finally:
        store.dispose()
    # not at SQLite's 1,000 pages; at caseflow's limit, give or take the transaction that passed it
    assert WAL_CHECKPOINT_PAGES <= largest < WAL_CHECKPOINT_PAGES + 100, largest
