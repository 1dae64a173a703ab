"""`caseflow import` against single opens: does a batched import beat one `Engine.open` per case?

    python bench/bench_import.py --quick     # 2,000 complaints each way (SQLite)
    python bench/bench_import.py             # 100,000 complaints each way (SQLite and PostgreSQL)
    python bench/bench_import.py --only postgres --rows 20000

The same complaint rows (the shipped complaint workflow: data schema, two SLA
clocks, hash-chained audit) are opened in two fresh databases: once by
`Engine.open` per row (one transaction per case, as a script calling the API
would), once by `runtime.bulk.import_cases` (5,000 rows per transaction, one
SAVEPOINT only where a row needs one), interleaved a batch's worth of rows at a
time. Goal: import ≥ 5× the single opens' rate. With CASEFLOW_BENCH_JSON=1 (as
bench/run.py runs it) it prints JSON rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from bench_sla import _pg_reachable, _pg_url, database  # noqa: E402

from caseflow.catalog import SHIPPED, Catalog  # noqa: E402
from caseflow.errors import ConcurrentChange  # noqa: E402
from caseflow.runtime.bulk import BATCH, Row, import_cases  # noqa: E402
from caseflow.runtime.engine import Engine  # noqa: E402

COMPLAINT = {"customer_name": "张三", "phone": "13812345678", "address": "上海市浦东新区世纪大道100号",
             "channel": "phone", "category": "quality", "description": "卫生间防水层漏水", "severity": "normal",
             "received_at": "2025-03-03T10:00"}
GOAL = 5.0


def _open(engine: Engine, data: dict[str, str]) -> None:
    """One `Engine.open`, again after a ConcurrentChange as its message asks: a new case's id has 32 random
    bits, so among 100,000 cases one is likely to draw an id taken already (the import draws free ids)."""
    for _ in range(3):
        try:
            engine.open("complaint", "wang.fang", data)
            return
        except ConcurrentChange:
            continue
    raise RuntimeError("three ConcurrentChange refusals in a row")


def compare(kind: str, pg: str | None, catalog: Catalog, n: int) -> dict[str, float]:
    """Both ways over the same rows, interleaved: slices of one import batch (BATCH rows) each way in turn, the
    first way alternating, so that other work on the machine weighs on both alike; each way's database grows
    as it would in one long run. The ratio is the single opens' total time over the import's."""
    single_s = single_cpu = bulk_s = bulk_cpu = 0.0
    with database(kind, pg) as single_db, database(kind, pg) as bulk_db:
        single, bulk = Engine(single_db, catalog), Engine(bulk_db, catalog)
        for k, at in enumerate(range(0, n, BATCH)):
            rows = [{**COMPLAINT, "form_no": f"TS-{i}"} for i in range(at, min(n, at + BATCH))]
            for way in ("single", "bulk") if k % 2 == 0 else ("bulk", "single"):
                began, cpu = time.perf_counter(), time.process_time()
                if way == "single":
                    for data in rows:
                        _open(single, data)
                    single_s += time.perf_counter() - began
                    single_cpu += time.process_time() - cpu
                else:
                    report = import_cases(bulk, "complaint", "wang.fang",
                                          (Row(at + j + 2, sets=data) for j, data in enumerate(rows)))
                    bulk_s += time.perf_counter() - began
                    bulk_cpu += time.process_time() - cpu
                    assert len(report.opened) == len(rows) and not report.refused, report.refused[:3]
    return {"single": n / single_s, "bulk": n / bulk_s, "ratio": single_s / bulk_s,
            "single_cpu_us": single_cpu / n * 1e6, "bulk_cpu_us": bulk_cpu / n * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 rows, SQLite only (instead of 100,000, both)")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--pg", help="PostgreSQL URL (default CASEFLOW_BENCH_PG or /tmp/pgdev/url)")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--only", choices=("sqlite", "postgres"), help="one backend")
    args = ap.parse_args()
    n = args.rows or (2_000 if args.quick else 100_000)
    pg = None if (args.skip_pg or args.quick or args.only == "sqlite") else _pg_url(args.pg)
    backends = [b for b in ["sqlite"] + (["postgres"] if pg and _pg_reachable(pg) else []) if args.only in (None, b)]
    catalog = Catalog.load(SHIPPED)
    for kind in backends:
        r = compare(kind, pg, catalog, n)
        row = {"name": f"caseflow import, {n:,} complaints, {kind}", "value": round(r["bulk"]), "unit": "cases/s",
               "baseline": f"{n:,} single Engine.open calls", "baseline_value": round(r["single"]), "goal": GOAL,
               "ratio": round(r["ratio"], 2),
               "note": f"goal >= {GOAL}x: {'met' if r['ratio'] >= GOAL else 'NOT MET'}; {BATCH:,} rows per transaction"}
        if os.environ.get("CASEFLOW_BENCH_JSON") == "1":
            print(json.dumps(row, ensure_ascii=False), flush=True)
        else:
            print(f"{kind:<8} import {r['bulk']:>7.0f} cases/s  single opens {r['single']:>7.0f} cases/s  "
                  f"{r['ratio']:.2f}x (goal >= {GOAL}x)  CPU per case: import {r['bulk_cpu_us']:.0f} µs, "
                  f"single {r['single_cpu_us']:.0f} µs (this process; PostgreSQL's own work not counted)",
                  flush=True)


if __name__ == "__main__":
    main()
