"""Inbox: does `caseflow inbox` for one person cost what one indexed query costs, with 100,000 open cases?

    . /tmp/venv/bin/activate
    python bench/bench_inbox.py --quick      # 10,000 open cases (under a minute)
    python bench/bench_inbox.py              # 100,000 open cases across the three workflows
    python bench/bench_inbox.py --pg URL     # also on PostgreSQL (default: CASEFLOW_BENCH_PG or /tmp/pgdev/url)

Each database is filled in bulk (Core executemany) with open complaints, refunds
and member cards spread over their states the way a live system looks (most
complaints with a department, most refunds collecting signatures, most cards
active), a quarter of the complaints assigned to the 客服专员, and one running
SLA clock per complaint and refund, some overdue; the fields the inbox's
description reads (amounts, ID numbers, points) differ from case to case. Each
case's work queues (`case_queue`) are computed as every write computes them; the
database's triggers (revision 0010) give them their deadline and created_at. For a
few people — an agent (first page of 50 rows, and everything), a department, a
middle manager who signs, the VIP desk — it times `views.inbox.inbox()` (the
query, every row described by the code `show` uses, the rows built), the inbox's
query alone (its SQL, rows fetched, none described), and a plain
`SELECT … WHERE id IN (…)` of the same rows by primary key. The ratios inbox /
SELECT and query / SELECT are the figures (printed, not asserted). "found" is how
many rows the query returned (a page is the limit + 10). The EXPLAIN of the first
page's query (an agent, the VIP desk) is printed below the table.

With CASEFLOW_BENCH_JSON=1 (as bench/run.py runs it) it prints one JSON row per
(backend, person), else a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sla import _pg_reachable, _pg_url, database  # noqa: E402

from caseflow.catalog import SHIPPED, Catalog  # noqa: E402
from caseflow.runtime.actions import pending_signoff_role  # noqa: E402
from caseflow.runtime.engine import Engine  # noqa: E402
from caseflow.runtime.queue import queues as case_queues  # noqa: E402
from caseflow.runtime.queue import rows as queue_rows  # noqa: E402
from caseflow.sla.clocks import ts  # noqa: E402
from caseflow.store.database import Store  # noqa: E402
from caseflow.store.tables import case_queue, cases, timers  # noqa: E402
from caseflow.views import inbox as view  # noqa: E402

NOW = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
CHUNK = 20_000
COMPLAINT = {"form_no": "TS-B", "customer_name": "张三", "phone": "13812345678", "channel": "phone",
             "category": "quality", "description": "卫生间防水层漏水", "severity": "normal",
             "received_at": "2025-03-03T02:00:00Z"}
REFUND = {"order_no": "D-B", "customer_name": "王建国", "contract_amount": "80000.00", "amount_paid": "20000.00",
          "work_started": False, "path": "before_work"}
CARD = {"member_id": "M-B", "name": "李四", "id_number": "110101199001011234", "birth_date": "1990-01-01",
        "phone": "13900001111", "tier": "vip", "points": 120}
# (state, share of the workflow's cases, extra data)
COMPLAINT_MIX = [("received", 2, {}), ("assessing", 3, {}),
                 ("investigating", 16, {"responsible_dept": "engineering", "valid": True}),
                 ("investigating", 8, {"responsible_dept": "site_supervisor", "valid": True}),
                 ("investigating", 4, {"responsible_dept": "tech_dept", "valid": True}),
                 ("investigating", 4, {"responsible_dept": "sales_dept", "valid": True}),
                 ("investigating", 4, {"responsible_dept": "design", "valid": True}),
                 ("investigating", 4, {"responsible_dept": "customer_service", "valid": True}),
                 ("proposing", 10, {"solution": "重做防水"}), ("implementing", 10, {"solution": "重做防水"}),
                 ("escalated", 5, {}), ("final_answer", 5, {}), ("in_litigation", 2, {}), ("reviewing", 13, {}),
                 ("replied_invalid", 10, {"valid": False})]
REFUND_MIX = [("requested", 5, {}), ("terminating", 10, {}), ("explaining", 10, {}), ("applying", 10, {}),
              ("signing", 60, {"refund_amount": "20000.00"}), ("approved", 5, {"refund_amount": "20000.00"})]
CARD_MIX = [("active", 85, {}), ("applied", 3, {}), ("lost", 3, {}), ("replacing", 3, {}), ("expired", 3, {}),
            ("inactive", 3, {})]
AGENTS = ["chen.jing", "liu.yang", "wang.fang", "wu.ting"]
SIGNERS = [("handler", "lin.xiao"), ("middle_manager", "gao.feng"), ("district_lead", "liang.yong")]
PEOPLE = [("wang.fang", 50), ("wang.fang", None), ("deng.chao", None), ("gao.feng", 50), ("xie.na", 50)]


def _spread(mix: list[tuple[str, int, dict[str, Any]]], n: int) -> list[tuple[str, dict[str, Any]]]:
    total = sum(share for _, share, _ in mix)
    out: list[tuple[str, dict[str, Any]]] = []
    for state, share, extra in mix:
        out += [(state, extra)] * (n * share // total)
    return out + [(mix[0][0], mix[0][2])] * (n - len(out))


def _own(workflow: str, data: dict[str, Any], i: int) -> dict[str, Any]:
    """What differs from case to case in the fields the inbox's description reads (amounts, points, the ID
    number), so that cases alike in state are not alike in everything (a live queue is not)."""
    if workflow == "refund":
        paid = 20_000 + (i % 700) * 10
        return {"amount_paid": f"{paid}.00", **({"refund_amount": f"{paid}.00"} if "refund_amount" in data else {})}
    if workflow == "member_card":
        return {"id_number": f"110101199001{i % 1_000_000:06d}", "upgrade_points": (i * 37) % 5000,
                "points": (i * 11) % 3000, "member_id": f"M-{i}"}
    return {"customer_name": f"张{i % 97}", "form_no": f"TS-B-{i}"}


def seed(store: Store, catalog: Catalog, n: int) -> None:
    """n open cases: 40% complaints, 30% refunds, 30% member cards."""
    engine = Engine(store, catalog)
    defs = {w: catalog.get(w) for w in ("complaint", "refund", "member_card")}
    with store.write() as conn:
        for d in defs.values():
            engine.register(conn, d, NOW)
    plan = ([("complaint", s, {**COMPLAINT, **x}) for s, x in _spread(COMPLAINT_MIX, n * 4 // 10)]
            + [("refund", s, {**REFUND, **x}) for s, x in _spread(REFUND_MIX, n * 3 // 10)]
            + [("member_card", s, {**CARD, **x}) for s, x in _spread(CARD_MIX, n - n * 4 // 10 - n * 3 // 10)])
    stamp = ts(NOW - timedelta(days=3))
    for start in range(0, len(plan), CHUNK):
        case_rows, timer_rows, queued = [], [], []
        for i in range(start, min(start + CHUNK, len(plan))):
            workflow, state, data = plan[i]
            data = {**data, **_own(workflow, data, i)}
            d = defs[workflow]
            cid = f"{workflow[:3].upper()}-{i:08X}"
            created = ts(NOW - timedelta(days=30, seconds=i * 7))
            signoffs = []
            if state == "signing":
                signoffs = [{"role": r, "by": who, "at": stamp} for r, who in SIGNERS[:i % 4]]
            assignee = AGENTS[(i // 4) % 4] if workflow == "complaint" and i % 4 == 0 else None
            case_rows.append({
                "id": cid, "workflow": workflow, "definition": d.sha256, "state": state,
                "data": json.dumps(data, ensure_ascii=False, sort_keys=True), "signoffs": json.dumps(signoffs),
                "version": 3, "parent_case": None, "created_at": created, "updated_at": ts(NOW - timedelta(minutes=i)),
                "assignee": assignee, "assigned_at": stamp if assignee else None, "work_started_at": None,
                "next_signoff_role": pending_signoff_role(d, state, signoffs)})
            due_at = None
            if workflow != "member_card":
                due_at = ts(NOW + timedelta(hours=(i % 97) - 24, minutes=i % 53))   # about a quarter overdue
                timer_rows.append({"case_id": cid, "name": "bench_sla", "kind": "sla", "status": "running",
                                   "started_at": stamp, "due_at": due_at, "next_at": due_at, "warned": 0,
                                   "provisional": False, "paused_at": None, "remaining_s": None, "ended_at": None})
            queued += [{**r, "due_at": due_at, "created_at": created}           # as every write does
                       for r in queue_rows(d, cid, case_queues(d, state, data, signoffs, assignee))]
        with store.write() as conn:
            conn.execute(cases.insert(), case_rows)
            if queued:
                conn.execute(case_queue.insert(), queued)
            if timer_rows:
                conn.execute(timers.insert(), timer_rows)
    with store.engine.connect() as conn:                 # as autovacuum / a DBA would after a bulk load
        conn.execute(sa.text("ANALYZE"))
        conn.commit()


def measure(engine: Engine, user: str, limit: int | None, rounds: int) -> dict[str, Any]:
    rows = view.inbox(engine, user, limit)                # warm: definitions compiled, caches filled
    ids = [r["id"] for r in rows]
    person = engine.person(user)
    with engine.store.read() as conn:
        q = view.queue_for(engine, conn, person)
    page = view.query(q, limit + view.PAGE_MARGIN if limit else None)
    plain = (sa.select(cases.c.id, cases.c.workflow, cases.c.definition, cases.c.state, cases.c.data,
                       cases.c.signoffs, cases.c.assignee, cases.c.updated_at).where(cases.c.id.in_(ids)))
    inbox_s, query_s, select_s = [], [], []
    found = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        view.inbox(engine, user, limit)
        inbox_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with engine.store.read() as conn:                # the inbox's query alone: its SQL, rows fetched
            found = len(conn.execute(page).all())
        query_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with engine.store.read() as conn:
            got = [dict(r._mapping) for r in conn.execute(plain)]
        select_s.append(time.perf_counter() - t0)
        assert len(got) == len(ids)
    i, qs, s = statistics.median(inbox_s), statistics.median(query_s), statistics.median(select_s)
    return {"user": user, "limit": limit, "rows": len(ids), "found": found, "inbox_ms": i * 1000,
            "query_ms": qs * 1000, "select_ms": s * 1000, "ratio": i / s if s else None,
            "query_ratio": qs / s if s else None, "groups": _groups(rows)}


def _groups(rows: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["group"]] = counts.get(r["group"], 0) + 1
    return ", ".join(f"{g} {n}" for g, n in counts.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 open cases, 3 rounds (instead of 100,000, 7)")
    ap.add_argument("--cases", type=int, help="open cases (default 100,000; quick 10,000)")
    ap.add_argument("--rounds", type=int, help="timed rounds per person (default 7; quick 3)")
    ap.add_argument("--pg", help="PostgreSQL URL (default CASEFLOW_BENCH_PG or /tmp/pgdev/url)")
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    n = args.cases or (10_000 if args.quick else 100_000)
    rounds = args.rounds or (3 if args.quick else 7)
    pg = None if args.skip_pg else _pg_url(args.pg)
    backends = ["sqlite"] + (["postgres"] if pg and _pg_reachable(pg) else [])
    catalog = Catalog.load(SHIPPED)
    as_json = os.environ.get("CASEFLOW_BENCH_JSON") == "1"
    table, plans = [], []
    for kind in backends:
        with database(kind, pg) as store:
            t0 = time.perf_counter()
            seed(store, catalog, n)
            print(f"... {kind}: {n:,} open cases seeded in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
            engine = Engine(store, catalog, lambda: NOW)
            plans += [(kind, who, list(view.explain(engine, who, 50))) for who in ("wang.fang", "xie.na")]
            for user, limit in PEOPLE:
                r = {"backend": kind, "cases": n, **measure(engine, user, limit, rounds)}
                table.append(r)
                if as_json:
                    print(json.dumps(_row(r), ensure_ascii=False), flush=True)
    if not as_json:
        print(_table(table))
        for kind, who, lines in plans:
            print(f"\nEXPLAIN of the inbox query (first page of 50) for {who} on {kind}:")
            print("\n".join("  " + line for line in lines))
    if "postgres" not in backends and not args.skip_pg:
        print("note: PostgreSQL left out (no URL, or the server did not answer)", file=sys.stderr)


def _who(r: dict[str, Any]) -> str:
    return f"{r['user']}" + (f" (first {r['limit']})" if r["limit"] else " (all)")


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"inbox {r['backend']}, {r['cases']:,} open cases, {_who(r)}", "value": round(r["inbox_ms"], 1),
            "unit": "ms", "baseline": f"plain SELECT of the same {r['rows']} rows by id",
            "baseline_value": round(r["select_ms"], 2),
            "ratio": round(r["ratio"], 1) if r["ratio"] else None,
            "note": f"the inbox query alone {r['query_ms']:.1f} ms (ratio "
                    f"{r['query_ratio'] and round(r['query_ratio'], 1)}), returned {r['found']} rows; "
                    f"groups: {r['groups'] or 'none'}"}


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["inbox latency beside a plain SELECT of the same rows (median; ratio = inbox / SELECT;",
             "query = the inbox's SQL alone, its rows fetched, not described; q-ratio = query / SELECT)", "",
             f"{'backend':<9} {'cases':>8}  {'person':<24} {'rows':>6} {'found':>6} {'inbox ms':>9} "
             f"{'query ms':>9} {'SELECT ms':>10} {'ratio':>6} {'q-ratio':>7}  groups"]
    for r in rows:
        ratio = f"{r['ratio']:.1f}" if r["ratio"] else "-"
        qratio = f"{r['query_ratio']:.1f}" if r["query_ratio"] else "-"
        lines.append(f"{r['backend']:<9} {r['cases']:>8,}  {_who(r):<24} {r['rows']:>6} {r['found']:>6} "
                     f"{r['inbox_ms']:>9.1f} {r['query_ms']:>9.1f} {r['select_ms']:>10.2f} {ratio:>6} {qratio:>7}"
                     f"  {r['groups']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
