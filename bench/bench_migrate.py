"""`caseflow migrate`: dry-run and run throughput over many open cases, beside the plain advance rate.

    python bench/bench_migrate.py --quick     # 2,000 open refunds (SQLite)
    python bench/bench_migrate.py             # 10,000 open refunds (SQLite, and PostgreSQL when reachable)

The refunds are imported (`runtime.bulk.import_cases`), then 30% are walked to 填写退费申请单
(start_before_work, sign_termination, explain: three `Engine.advance` calls each, timed: the
baseline) and a third of those further to 逐级签字 with one signature. The plan moves them to
tests/migration/review/refund.yaml (an added 财务审核 step): the signed ones are forbidden, the
rest migratable. Measured: `dry_run` (every case's history replayed under the new version) and
`migrate` (every migratable case moved in its own transaction), in cases per second, beside
advances per second on the same database. With CASEFLOW_BENCH_JSON=1 it prints JSON rows.
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
from caseflow.definition.compile import load_definition  # noqa: E402
from caseflow.migration.plan import load_plan, plan_text  # noqa: E402
from caseflow.migration.run import dry_run, migrate  # noqa: E402
from caseflow.runtime.bulk import Row, import_cases  # noqa: E402
from caseflow.runtime.engine import Engine  # noqa: E402

NEW = ROOT.parent / "tests" / "migration" / "review" / "refund.yaml"
REFUND = {"customer_name": "王建国", "contract_amount": "80000.00", "amount_paid": "20000.00", "work_started": "false"}
EXPLAIN = {"reason": "客户资金周转困难", "responsibility": "客户原因"}


def measure(kind: str, pg: str | None, catalog: Catalog, n: int, tmp: Path) -> dict[str, float]:
    with database(kind, pg) as store:
        engine = Engine(store, catalog)
        report = import_cases(engine, "refund", "wang.fang",
                              (Row(i + 2, sets={**REFUND, "order_no": f"D-{i}"}) for i in range(n)))
        ids = [o["id"] for o in report.opened]
        walked, signed = ids[: n * 3 // 10], ids[: n // 10]
        steps = 0
        began = time.perf_counter()
        for cid in walked:
            engine.advance(cid, "start_before_work", "wang.fang")
            engine.advance(cid, "sign_termination", "lin.xiao")
            engine.advance(cid, "explain", "lin.xiao", EXPLAIN)
            steps += 3
        advance_s = time.perf_counter() - began
        for cid in signed:
            engine.advance(cid, "apply", "lin.xiao", {"refund_amount": "20000.00"})
            engine.sign(cid, "lin.xiao")
        old = catalog.get("refund")
        new = load_definition(NEW, catalog.org, catalog.calendars)
        path = tmp / f"plan-{kind}.yaml"
        path.write_text(plan_text(old, new, str(NEW), {}), encoding="utf-8")
        plan = load_plan(path, lambda w, sha: old, lambda p: new)
        began = time.perf_counter()
        judged = dry_run(engine, plan, "zhang.wei")
        dry_s = time.perf_counter() - began
        began = time.perf_counter()
        moved = migrate(engine, plan, "zhang.wei")
        run_s = time.perf_counter() - began
        counts = judged.counts()
        assert counts["migratable"] == n - len(signed) and counts["forbidden"] == len(signed), counts
        assert len(moved.migrated) == n - len(signed), moved.counts()
    return {"advance": steps / advance_s, "dry": n / dry_s, "run": len(moved.migrated) / run_s,
            "dry_s": dry_s, "run_s": run_s, "moved": len(moved.migrated)}


def main() -> None:
    import tempfile
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 open refunds, SQLite only (instead of 10,000)")
    ap.add_argument("--cases", type=int)
    ap.add_argument("--pg", help="PostgreSQL URL (default CASEFLOW_BENCH_PG or /tmp/pgdev/url)")
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    n = args.cases or (2_000 if args.quick else 10_000)
    pg = None if (args.skip_pg or args.quick) else _pg_url(args.pg)
    backends = ["sqlite"] + (["postgres"] if pg and _pg_reachable(pg) else [])
    catalog = Catalog.load(SHIPPED)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in backends:
            r = measure(kind, pg, catalog, n, Path(tmp))
            rows = [
                {"name": f"migrate dry-run, {n:,} open refunds, {kind}", "value": round(r["dry"]), "unit": "cases/s",
                 "baseline": "Engine.advance on the same database", "baseline_value": round(r["advance"]),
                 "baseline_unit": "advances/s", "note": f"{r['dry_s']:.1f} s for every case's history replayed"},
                {"name": f"migrate run, {r['moved']:,} of {n:,} refunds moved, {kind}", "value": round(r["run"]),
                 "unit": "cases/s", "baseline": "Engine.advance on the same database",
                 "baseline_value": round(r["advance"]), "baseline_unit": "advances/s",
                 "note": f"{r['run_s']:.1f} s, judging included; one transaction per case"},
            ]
            for row in rows:
                if os.environ.get("CASEFLOW_BENCH_JSON") == "1":
                    print(json.dumps(row, ensure_ascii=False), flush=True)
                else:
                    print(f"{row['name']:<48} {row['value']:>7} cases/s   advance {row['baseline_value']:>6} /s   "
                          f"{row['note']}", flush=True)


if __name__ == "__main__":
    main()
