"""Reads that scale: do the monthly report, `list` and `sla status` cost what they return?

    python bench/bench_reads.py --quick      # 10k vs 100k cases (SQLite and PostgreSQL)
    python bench/bench_reads.py              # 10k vs 1M cases

Two databases hold the same 200 complaints received in March 2025 (Shanghai)
among 10k and among 1M (quick: 100k) other cases received over five years,
each with one `respond_24h` clock. Each round times, in both databases:
`report complaints --month 2025-03` (reports.complaints), `list` and
`list --workflow complaint` (500 newest), and `sla status --since 2025-03-01
--until 2025-04-01` (sla_compliance). The figure is the ratio of times large /
small (median of per-round ratios; goal ≤ 1.2× for the report, ≤ 1.5× for the
others), with the peak Python memory (tracemalloc) of each read on the large one.
With CASEFLOW_BENCH_JSON=1 (as bench/run.py runs it) it prints JSON rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from bench_sla import _pg_reachable, _pg_url, database  # noqa: E402

from caseflow.catalog import SHIPPED, Catalog  # noqa: E402
from caseflow.runtime.engine import Engine  # noqa: E402
from caseflow.sla.clocks import ts  # noqa: E402
from caseflow.sla.compliance import compliance as sla_compliance  # noqa: E402
from caseflow.store.database import Store  # noqa: E402
from caseflow.store.tables import cases, sla_windows, timers  # noqa: E402
from caseflow.values import sortable_time  # noqa: E402
from caseflow.views import reports  # noqa: E402
from caseflow.views.cases import list_cases  # noqa: E402

IN_MONTH = 200
CHUNK = 20_000
MARCH = datetime(2025, 3, 1, tzinfo=UTC) - timedelta(hours=8)      # 1 March 00:00 in Shanghai
GOALS = {"report complaints --month": 1.2, "list": 1.5, "list --workflow complaint": 1.5, "sla status (a month)": 1.5}


def seed(store: Store, catalog: Catalog, n_other: int) -> None:
    d = catalog.get("complaint")
    engine = Engine(store, catalog)
    with store.write() as conn:
        engine.register(conn, d, MARCH)
    rng = random.Random(7)
    base = {"form_no": "TS-B", "customer_name": "张三", "phone": "13812345678", "channel": "phone",
            "description": "卫生间防水层漏水", "severity": "normal"}
    cats = d.fields["category"]["enum"]
    total = IN_MONTH + n_other
    for start in range(0, total, CHUNK):
        case_rows, timer_rows, window_rows = [], [], []
        for i in range(start, min(start + CHUNK, total)):
            if i < IN_MONTH:
                received = MARCH + timedelta(minutes=i * 180)
            else:
                received = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(6 * 365 * 86400))
                if MARCH <= received < MARCH + timedelta(days=31):
                    received -= timedelta(days=40)
            at = ts(received)
            data = {**base, "category": cats[i % len(cats)], "received_at": at}
            cid = f"COM-{i:08X}"
            case_rows.append({"id": cid, "workflow": "complaint", "definition": d.sha256,
                              "state": "closed" if i % 3 else "assessing",
                              "data": json.dumps(data, ensure_ascii=False, sort_keys=True), "signoffs": "[]",
                              "version": 3, "parent_case": None, "created_at": at, "updated_at": at,
                              "received_at": sortable_time(at)})
            due = received + timedelta(hours=24)
            timer_rows.append({"case_id": cid, "name": "respond_24h", "kind": "sla",
                               "status": "met" if i % 3 else "running", "started_at": at, "due_at": ts(due),
                               "next_at": None if i % 3 else ts(due), "warned": 0, "provisional": False,
                               "ended_at": ts(received + timedelta(hours=2)) if i % 3 else None})
            window_rows.append({"case_id": cid, "workflow": "complaint", "clock": "respond_24h", "opened_at": at,
                                "opened_by": "start", "due_at": ts(due), "breached_at": None,
                                "closed_at": ts(received + timedelta(hours=2)) if i % 3 else None,
                                "outcome": "met" if i % 3 else None})
        with store.write() as conn:
            conn.execute(cases.insert(), case_rows)
            conn.execute(timers.insert(), timer_rows)
            conn.execute(sla_windows.insert(), window_rows)
    with store.engine.connect() as conn:            # as autovacuum / a DBA would after a bulk load
        conn.execute(sa.text("ANALYZE"))
        conn.commit()


def reads(engine: Engine) -> dict[str, Callable[[], Any]]:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    return {
        "report complaints --month": lambda: reports.complaints(engine, "2025-03"),
        "list": lambda: list_cases(engine),
        "list --workflow complaint": lambda: list_cases(engine, "complaint"),
        "sla status (a month)": lambda: sla_compliance(engine, "complaint", MARCH, MARCH + timedelta(days=31), now),
    }


def compare(kind: str, pg: str | None, catalog: Catalog, sizes: tuple[int, int], rounds: int) -> list[dict[str, Any]]:
    with database(kind, pg) as small, database(kind, pg) as large:
        sides = []
        for store, n in zip((small, large), sizes):
            began = time.perf_counter()
            seed(store, catalog, n)
            engine = Engine(store, catalog)             # reads take their month and `now` as arguments
            sides.append({"n": n, "reads": reads(engine), "seed_s": time.perf_counter() - began})
        names = list(sides[0]["reads"])
        for side in sides:                         # warm the caches once (first page reads)
            for name in names:
                side["reads"][name]()
        times: dict[str, list[list[float]]] = {name: [[], []] for name in names}
        for r in range(rounds):
            for name in names:
                for idx in ((0, 1) if r % 2 == 0 else (1, 0)):
                    began = time.perf_counter()
                    result = sides[idx]["reads"][name]()
                    times[name][idx].append(time.perf_counter() - began)
                    if name.startswith("report"):
                        assert result["total"] == IN_MONTH, result["total"]
        out = []
        for name in names:
            tracemalloc.start()
            sides[1]["reads"][name]()
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            small_t, large_t = times[name]
            ratio = statistics.median(b / a for a, b in zip(small_t, large_t))
            out.append({"backend": kind, "read": name, "small": sizes[0], "large": sizes[1],
                        "small_ms": statistics.median(small_t) * 1e3, "large_ms": statistics.median(large_t) * 1e3,
                        "ratio": ratio, "peak_mib": peak, "rounds": rounds,
                        "seed_s": sides[1]["seed_s"]})
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k vs 100k cases (instead of 10k vs 1M)")
    ap.add_argument("--rounds", type=int, help="timed rounds (default 15 quick, 31 full)")
    ap.add_argument("--pg", help="PostgreSQL URL (default CASEFLOW_BENCH_PG or /tmp/pgdev/url)")
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    sizes = (10_000, 100_000) if args.quick else (10_000, 1_000_000)
    rounds = args.rounds or (15 if args.quick else 31)
    pg = None if args.skip_pg else _pg_url(args.pg)
    backends = ["sqlite"] + (["postgres"] if pg and _pg_reachable(pg) else [])
    catalog = Catalog.load(SHIPPED)
    as_json = os.environ.get("CASEFLOW_BENCH_JSON") == "1"
    for kind in backends:
        for r in compare(kind, pg, catalog, sizes, rounds):
            goal = GOALS[r["read"]]
            row = {"name": f"{r['read']}, {kind}: {r['large']:,} vs {r['small']:,} cases (latency ratio, lower "
                           f"is better)", "value": round(r["large_ms"], 2), "unit": "ms",
                   "baseline": f"same read, {r['small']:,} cases", "baseline_value": round(r["small_ms"], 2),
                   "ratio": round(r["ratio"], 2),
                   "note": f"goal <= {goal}x: {'met' if r['ratio'] <= goal else 'NOT MET'}; peak traced memory "
                           f"{r['peak_mib']:.1f} MiB; median of {r['rounds']} interleaved rounds"}
            if as_json:
                print(json.dumps(row, ensure_ascii=False), flush=True)
            else:
                print(f"{kind:<8} {r['read']:<28} {r['small_ms']:>9.2f} ms {r['large_ms']:>9.2f} ms "
                      f"{r['ratio']:>6.2f}x (goal <= {goal}x)  peak {r['peak_mib']:.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
