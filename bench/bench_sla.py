"""SLA sweep: does `caseflow sla run` cost what the due timers cost, whatever the number of cases?

    . /tmp/venv/bin/activate
    python bench/bench_sla.py --quick        # 200 due timers in 5k vs 50k cases (under a minute)
    python bench/bench_sla.py                # 1k due timers in 10k vs 1M cases
    python bench/bench_sla.py --pg URL       # also on PostgreSQL (default: CASEFLOW_BENCH_PG or /tmp/pgdev/url)

Each database is filled in bulk (Core executemany) with complaint cases, one
`respond_24h` clock each and a two-row hash-chained history each: 1,000 clocks
due, the rest either running with a deadline far ahead or already met
(`next_at` NULL) — the shape of a live system. Each
round sweeps the 1,000 due clocks (breach + escalation + outbox row + audit
rows, one transaction per timer), then puts them back on the list; rounds
alternate between the small and the large database, and a last round runs
under tracemalloc for the peak Python memory. The figure that matters is the
ratio large/small of sweep times: near 1 means the sweep does not grow with
the number of cases.

With CASEFLOW_BENCH_JSON=1 (as bench/run.py runs it) it prints one JSON row per
database (bench/README.md, "Rows from other scripts"), else a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from caseflow.audit import chain as audit  # noqa: E402
from caseflow.audit.keys import audit_key, mac  # noqa: E402
from caseflow.catalog import SHIPPED, Catalog  # noqa: E402
from caseflow.runtime.engine import Engine  # noqa: E402
from caseflow.runtime.sweep import recompute_provisional, sweep  # noqa: E402
from caseflow.sla.clocks import ts  # noqa: E402
from caseflow.store.database import Store  # noqa: E402
from caseflow.store.tables import audit as audit_table  # noqa: E402
from caseflow.store.tables import cases, timers  # noqa: E402

DATA = {"form_no": "TS-B", "customer_name": "张三", "phone": "13812345678", "channel": "phone",
        "category": "quality", "description": "卫生间防水层漏水", "severity": "normal",
        "received_at": "2025-03-03T02:00:00Z"}
CHUNK = 20_000


def seed(store: Store, catalog: Catalog, n_cases: int, due: dict[datetime, int], far: datetime,
         opened: datetime) -> list[str]:
    """Insert `n_cases` complaints in `assessing`, each with a respond_24h clock and its audit history.

    `due` maps a deadline to how many clocks fall due then (the first cases get
    them); of the others, even ones run with a deadline at `far`, odd ones
    were met. Returns the ids of the cases with due clocks, in order.
    """
    d = catalog.get("complaint")
    engine = Engine(store, catalog)
    with store.write() as conn:
        engine.register(conn, d, opened)
    deadlines = [at for at, n in sorted(due.items()) for _ in range(n)]
    data = json.dumps(DATA, ensure_ascii=False, sort_keys=True)
    stamp = ts(opened)
    ids: list[str] = []
    for start in range(0, n_cases, CHUNK):
        case_rows, timer_rows, audit_rows = [], [], []
        for i in range(start, min(start + CHUNK, n_cases)):
            cid = f"COM-{i:08X}"
            case_rows.append({"id": cid, "workflow": "complaint", "definition": d.sha256, "state": "assessing",
                              "data": data, "signoffs": "[]", "version": 2, "parent_case": None,
                              "created_at": stamp, "updated_at": stamp})
            timer_rows.append(_timer(cid, i, deadlines, far, stamp))
            audit_rows += _history(cid, d.sha256, stamp, met=timer_rows[-1]["status"] == "met")
            if i < len(deadlines):
                ids.append(cid)
        with store.write() as conn:
            conn.execute(cases.insert(), case_rows)
            conn.execute(timers.insert(), timer_rows)
            conn.execute(audit_table.insert(), audit_rows)
    with store.engine.connect() as conn:       # as autovacuum would after a bulk load: plans need statistics
        store.backend.analyze(conn)
    return ids


def _timer(cid: str, i: int, deadlines: list[datetime], far: datetime, stamp: str) -> dict[str, Any]:
    row = {"case_id": cid, "name": "respond_24h", "kind": "sla", "started_at": stamp, "warned": 2,
           "provisional": False, "paused_at": None, "remaining_s": None, "ended_at": None}
    if i < len(deadlines):
        return {**row, "status": "running", "due_at": ts(deadlines[i]), "next_at": ts(deadlines[i])}
    if i % 2 == 0:
        return {**row, "status": "running", "due_at": ts(far), "next_at": ts(far)}
    return {**row, "status": "met", "due_at": ts(far), "next_at": None, "ended_at": stamp}


def _history(cid: str, sha: str, stamp: str, met: bool = False) -> list[dict[str, Any]]:
    """open → received, assess → assessing, the clock started (and met): a chain `audit verify` accepts,
    whose replay gives the seeded case row and timer."""
    rows, prev = [], audit.GENESIS
    steps: list[tuple[str, str, str | None, str | None, str, dict[str, Any], int]] = [
        ("open", "open", None, "received", "wang.fang", {k: [None, v] for k, v in DATA.items()}, 1),
        ("transition", "assess", "received", "assessing", "wang.fang", {}, 2),
        ("sla", "respond_24h", None, None, "system", {"status": [None, "running"]}, 2)]
    if met:
        steps.append(("sla", "respond_24h", None, None, "system", {"status": ["running", "met"]}, 2))
    for seq, (kind, event, src, dest, actor, changes, version) in enumerate(steps, 1):
        row = {"case_id": cid, "seq": seq, "workflow": "complaint", "definition": sha, "kind": kind,
               "event": event, "from_state": src, "to_state": dest, "actor": actor,
               "roles": audit.canonical(["cs_agent"] if actor != "system" else []),
               "changes": audit.canonical(changes), "note": None,
               "effective_at": stamp, "recorded_at": stamp, "prev_hash": prev, "case_version": version}
        row["hash"] = prev = audit.row_hash(row)
        row["mac"] = mac(audit_key(), row["hash"])
        rows.append(row)
    return rows


@contextmanager
def database(kind: str, pg_url: str | None) -> Iterator[Store]:
    """A fresh, migrated database: a temporary SQLite file or a throwaway PostgreSQL schema."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/bench.db")
            store.migrate(simulation=True)      # benches run on a simulated clock
            yield store
            store.engine.dispose()
        return
    assert pg_url
    schema = f"bench_sla_{secrets.token_hex(4)}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_url else "?"
    store = Store(f"{pg_url}{sep}options=-csearch_path%3D{schema}")
    try:
        store.migrate(simulation=True)
        yield store
    finally:
        store.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def rearm(store: Store, ids: list[str], at: datetime) -> None:
    """Put the breached clocks of `ids` back on the sweeper's list, due at `at` (outside the timing)."""
    with store.write() as conn:
        conn.execute(timers.update().where(timers.c.case_id.in_(ids))
                     .values(status="running", due_at=ts(at), next_at=ts(at)))


def compare(kind: str, pg_url: str | None, catalog: Catalog, sizes: tuple[int, int], n_due: int,
            rounds: int) -> list[dict[str, Any]]:
    """Sweep `n_due` timers in a small and a large database, round after round, alternating.

    Rounds alternate which database goes first, so a burst of load from
    elsewhere spoils a round of each rather than one side; the figures are
    medians, and the ratio is the median of the per-round ratios.
    """
    opened = datetime(2025, 3, 3, 2, tzinfo=UTC)
    due, now = opened + timedelta(hours=24), opened + timedelta(hours=24, minutes=5)
    with database(kind, pg_url) as small, database(kind, pg_url) as large:
        sides = []
        for store, n in zip((small, large), sizes):
            began = time.perf_counter()
            ids = seed(store, catalog, n, {due: n_due}, opened + timedelta(days=3650), opened)
            sides.append({"store": store, "ids": ids, "engine": Engine(store, catalog), "cases": n,
                          "seed_s": time.perf_counter() - began, "times": []})
        for r in range(rounds):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                if r:
                    rearm(side["store"], side["ids"], due)
                report = sweep(side["engine"], now)
                assert report.breached == n_due, report
                side["times"].append(report.seconds)
        for side in sides:                      # one more round each, for memory
            rearm(side["store"], side["ids"], due)
            tracemalloc.start()
            sweep(side["engine"], now)
            side["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            began = time.perf_counter()         # `sla run --recompute`: a scan, hence not in every sweep
            recompute_provisional(side["engine"], now)
            side["recompute_s"] = time.perf_counter() - began
    ratios = [b / a for a, b in zip(sides[0]["times"], sides[1]["times"])]
    out = []
    for side in sides:
        seconds = statistics.median(side["times"])
        out.append({"backend": kind, "cases": side["cases"], "due": n_due, "seconds": seconds,
                    "rate": n_due / seconds, "peak_mib": side["peak_mib"], "seed_s": side["seed_s"],
                    "rounds": rounds, "ratio": statistics.median(ratios), "recompute_s": side["recompute_s"]})
    return out


def _pg_url(given: str | None) -> str | None:
    if given:
        return given
    if os.environ.get("CASEFLOW_BENCH_PG"):
        return os.environ["CASEFLOW_BENCH_PG"]
    path = Path("/tmp/pgdev/url")
    return path.read_text().strip() if path.exists() else None


def _pg_reachable(url: str) -> bool:
    try:
        probe = sa.create_engine(url)
        with probe.connect():
            pass
        probe.dispose()
        return True
    except sa.exc.SQLAlchemyError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="200 due timers in 5k vs 50k cases, 1 round (instead of 1000 in 10k vs 1M, 5 rounds)")
    ap.add_argument("--due", type=int, help="due timers per sweep (default 1000, quick 200)")
    ap.add_argument("--pg", help="PostgreSQL URL (default CASEFLOW_BENCH_PG or /tmp/pgdev/url)")
    ap.add_argument("--rounds", type=int, help="sweeps per database (default 3 quick, 5 full)")
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    small, large = (5_000, 50_000) if args.quick else (10_000, 1_000_000)
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.due = args.due or (200 if args.quick else 1000)
    pg = None if args.skip_pg else _pg_url(args.pg)
    backends = ["sqlite"] + (["postgres"] if pg and _pg_reachable(pg) else [])
    catalog = Catalog.load(SHIPPED)
    as_json = os.environ.get("CASEFLOW_BENCH_JSON") == "1"
    results = []
    for kind in backends:
        pair = compare(kind, pg, catalog, (small, large), args.due, args.rounds)
        results.append(pair)
        if as_json:
            print(json.dumps(_row(pair)), flush=True)
        else:
            print(f"... {kind} done", file=sys.stderr, flush=True)
    if not as_json:
        print(_table(results, args.due))
    if "postgres" not in backends and not args.skip_pg:
        print("note: PostgreSQL left out (no URL, or the server did not answer)", file=sys.stderr)


def _row(pair: list[dict[str, Any]]) -> dict[str, Any]:
    s, big = pair
    return {"name": f"SLA sweep {s['backend']}, {s['due']} due, {big['cases']:,} vs {s['cases']:,} cases",
            "value": round(big["rate"]), "unit": "timers/s", "baseline": f"same sweep, {s['cases']:,} cases",
            "baseline_value": round(s["rate"]), "goal": 0.7, "ratio": round(1 / big["ratio"], 2),
            "note": f"median of {s['rounds']} rounds: {big['seconds']:.2f}s vs {s['seconds']:.2f}s; peak traced memory "
                    f"{big['peak_mib']:.1f} vs {s['peak_mib']:.1f} MiB; max RSS {_rss_mib():.0f} MiB; "
                    f"--recompute scan {big['recompute_s']:.2f}s vs {s['recompute_s']:.2f}s"}


def _table(results: list[list[dict[str, Any]]], due: int) -> str:
    lines = [f"SLA sweep: {due} due timers (breach + escalation + outbox + audit, one transaction each)", "",
             f"{'backend':<9} {'cases':>10} {'sweep s':>8} {'timers/s':>9} {'peak MiB':>9} {'seed s':>7} "
             f"{'--recompute s':>13}"]
    for pair in results:
        for r in pair:
            lines.append(f"{r['backend']:<9} {r['cases']:>10,} {r['seconds']:>8.2f} {r['rate']:>9.0f} "
                         f"{r['peak_mib']:>9.1f} {r['seed_s']:>7.1f} {r['recompute_s']:>13.3f}")
        s, big = pair
        lines.append(f"{'':<9} {'ratio':>10} {big['ratio']:>8.2f}x  (sweep time {big['cases']:,} / "
                     f"{s['cases']:,} cases, median of {s['rounds']} interleaved rounds; near 1 = "
                     f"independent of the number of cases)")
    lines.append(f"\nmax RSS of this process: {_rss_mib():.0f} MiB (includes seeding)")
    return "\n".join(lines)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
