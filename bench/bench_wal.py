"""How often SQLite checkpoints its write-ahead log, and what each step pays for it.

    python bench/bench_wal.py [--cases 200] [--rounds 2] [--pages 1000,4000,10000]

Walks `--cases` complaints along the main path (bench_advance.MAIN_PATH: open + 8 steps, each
persisted) on a fresh SQLite file (WAL, synchronous=NORMAL) once per setting of
`wal_autocheckpoint` (set on caseflow's own writer connections after its set-up, so that only
this differs), settings interleaved for `--rounds` rounds. Prints steps/s, the median, 99th
percentile and longest step, and the largest -wal file. caseflow's own setting is
store/backend_sqlite.py WAL_CHECKPOINT_PAGES; SQLite's default is 1,000.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_advance as adv  # noqa: E402

from caseflow.runtime.engine import Engine  # noqa: E402
from caseflow.store.backend_sqlite import WAL_CHECKPOINT_PAGES  # noqa: E402
from caseflow.store.database import Store  # noqa: E402


def walk(directory: Path, pages: int, cases: int) -> dict[str, float]:
    db = adv.sqlite_database(directory, "NORMAL")
    with db.env():
        store = Store(db.url)
        store.migrate(simulation=True)

        def _pages(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={pages}")
        sa.event.listen(store.writer, "connect", _pages)
        store.writer.dispose()                     # connections made from here on have the setting
        engine = Engine(store, adv.load_catalog())
        steps: list[float] = []
        started = time.perf_counter()
        for _ in range(cases):
            t0 = time.perf_counter()
            cid = engine.open("complaint", "wang.fang", dict(adv.COMPLAINT))["id"]
            steps.append(time.perf_counter() - t0)
            for step in adv.MAIN_PATH:
                t0 = time.perf_counter()
                adv.walk(engine, [step], cid)
                steps.append(time.perf_counter() - t0)
        took = time.perf_counter() - started
        wal = Path(f"{db.path}-wal").stat().st_size
        store.dispose()
    steps.sort()
    return {"rate": len(steps) / took, "p50": statistics.median(steps) * 1e3,
            "p99": steps[int(0.99 * (len(steps) - 1))] * 1e3, "max": steps[-1] * 1e3, "wal_mb": wal / 2**20}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pages", default=f"1000,{WAL_CHECKPOINT_PAGES},10000")
    args = ap.parse_args(argv)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    settings = [int(p) for p in args.pages.split(",")]
    seen: dict[int, list[dict[str, float]]] = {p: [] for p in settings}
    with tempfile.TemporaryDirectory(prefix="caseflow-wal-") as tmp:
        for r in range(args.rounds):
            for pages in settings[r % len(settings):] + settings[:r % len(settings)]:
                seen[pages].append(walk(Path(tmp), pages, args.cases))
    print(f"{args.cases} complaints walked (9 steps each), {args.rounds} rounds; medians over rounds")
    print("wal_autocheckpoint  steps/s  median step  p99 step  longest step  largest -wal")
    for pages in settings:
        m = {k: statistics.median(r[k] for r in seen[pages]) for k in seen[pages][0]}
        mark = "  (caseflow's)" if pages == WAL_CHECKPOINT_PAGES else "  (SQLite's default)" if pages == 1000 else ""
        print(f"{pages:>18,}  {m['rate']:7,.0f}  {m['p50']:8.2f} ms  {m['p99']:5.2f} ms  {m['max']:8.1f} ms"
              f"  {m['wal_mb']:7.1f} MiB{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
