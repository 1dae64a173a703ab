"""Realistic workloads beside floors doing the same persisted work, in the same run.

    python bench/bench_paths.py [--quick] [--skip-pg] [--only refund,complaint,card]
    python bench/bench_paths.py --profile refund      # cProfile of the engine's path on SQLite, by library

Workloads (each case opened, then walked; every call is one persisted step):
  refund      the before-work refund path: open, start_before_work, sign_termination, explain,
              apply, four sign-offs (the last fires approve), pay — 10 steps
  complaint   the complaint main path (bench_advance.MAIN_PATH): open + 8 steps
  card        member-card purchases: open, issue, then 8 purchases — 10 steps

Floors, per step, the same persisted work with nothing of caseflow's rules: read the case row
(with its chain head), the optimistic UPDATE (state, data, version, head) with the version
check, one sha256-chained audit row in caseflow's format, commit; for `open` an INSERT of the
case and of its first audit row. `raw`: the DB-API driver (sqlite3 / psycopg), no SQLAlchemy.
`core`: SQLAlchemy Core with statements built once, on caseflow's connection setup.

Ways are interleaved in rounds (order rotating); a figure is the median over rounds, a ratio the
median of per-round ratios. On PostgreSQL the statements each way sends per step are counted at
the server: the measured connections run with `log_statement = 'all'` (set per session; needs a
superuser, as on scripts/pg-throwaway.sh's server) and the lines of the server log carrying their
backend PIDs are counted — every statement the server executed, pool pings and BEGIN/COMMIT
included. The log is `pg_current_logfile()`, else `postgres.log` beside the data directory (the
throwaway layout), else $CASEFLOW_BENCH_PG_LOG. Without the log the counts are left out with a note.

The engine works on a simulation database on PostgreSQL (the person comes from `--as`, as on
SQLite): on a live one the person is the database login, and one login cannot act as the nine
people of a refund. With CASEFLOW_BENCH_JSON=1 (run.py) each result is a JSON row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_advance as adv  # noqa: E402

from caseflow.catalog import Catalog  # noqa: E402
from caseflow.runtime.engine import Engine  # noqa: E402
from caseflow.store.database import Store, create_engine  # noqa: E402
from caseflow.store.tables import audit, cases  # noqa: E402

Step = tuple[str, str, str, dict[str, str]]          # (advance | sign, event, actor, --set values)
REFUND = {"customer_name": "王建国", "contract_amount": "80000.00", "amount_paid": "20000.00", "work_started": "false"}
CARD = {"name": "李娜", "phone": "13900000001"}          # the rest is given at issue (processes.md §3)
PURCHASE = {"amount": "300.00", "special_goods": "false", "promotion": "false", "items": "1"}     # all in cash


def _refund_open(i: str) -> dict[str, str]:
    return {**REFUND, "order_no": f"D-{i}"}


def _card_open(i: str) -> dict[str, str]:
    return dict(CARD)


WORKLOADS: dict[str, tuple[str, str, Callable[[str], dict[str, str]], list[Step]]] = {
    "refund": ("refund", "wang.fang", _refund_open, [
        ("advance", "start_before_work", "wang.fang", {}),
        ("advance", "sign_termination", "lin.xiao", {}),
        ("advance", "explain", "lin.xiao", {"reason": "客户资金周转困难", "responsibility": "客户原因"}),
        ("advance", "apply", "lin.xiao", {"refund_amount": "20000.00"}),
        ("sign", "sign", "lin.xiao", {}), ("sign", "sign", "gao.feng", {}),
        ("sign", "sign", "liang.yong", {}), ("sign", "sign", "zhang.wei", {}),
        ("advance", "pay", "cao.ying", {"payment_ref": "PAY-1"}),
    ]),
    "complaint": ("complaint", "wang.fang", lambda i: dict(adv.COMPLAINT),
                  [("sign" if e == "sign" else "advance", e, a, s) for e, a, s in adv.MAIN_PATH]),
    "card": ("member_card", "xie.na", _card_open, [
        ("advance", "issue", "xie.na", {"tier": "vip", "birth_date": "1990-01-01", "id_number": "ID-{i}",
                                        "member_id": "M-{i}", "card_no": "C-{i}", "same_day_cash": "300.00",
                                        "in_person": "true"})] + [("advance", "purchase", "xie.na", PURCHASE)] * 8),
}
LABEL = {"refund": "refund path (before work)", "complaint": "complaint main path", "card": "member-card purchases"}
GOAL_RAW = {"sqlite": {"refund": 0.4}, "postgresql": {"refund": 0.5}}


# -- the engine --------------------------------------------------------------------------------

class EngineWay:
    def __init__(self, engine: Engine, workload: str) -> None:
        self.engine, self.workload = engine, workload
        self.workflow, self.opener, self.open_data, self.steps = WORKLOADS[workload]
        self.states: list[str] = []

    def instance(self) -> int:
        tag = secrets.token_hex(4)
        cid = self.engine.open(self.workflow, self.opener, self.open_data(tag))["id"]
        states = [self.engine.read_case(cid).state] if not self.states else None
        for kind, event, actor, sets in self.steps:
            sets = {k: v.replace("{i}", tag) for k, v in sets.items()}
            if kind == "sign":
                out = self.engine.sign(cid, actor)
            else:
                out = self.engine.advance(cid, event, actor, adv._accepted(self.engine, event, sets)
                                          if self.workflow == "complaint" else sets)
            if states is not None:
                states.append(out["state"])
        if states is not None:
            self.states = states
        return len(self.steps) + 1


# -- the floors ----------------------------------------------------------------------------------

def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _audit_row(case_id: str, seq: int, prev: str, workflow: str, sha: str, event: str, source: str | None,
               dest: str, actor: str, changes: dict[str, Any], version: int) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    row = {"case_id": case_id, "seq": seq, "workflow": workflow, "definition": sha, "kind": "transition",
           "event": event, "from_state": source, "to_state": dest, "actor": actor, "roles": "[]",
           "changes": _canonical(changes), "note": None, "effective_at": now, "recorded_at": now,
           "prev_hash": prev, "org": None, "os_user": "bench", "case_version": version}
    row["hash"] = hashlib.sha256(_canonical(list(row.values())).encode()).hexdigest()
    return row


AUDIT_COLS = ("case_id", "seq", "workflow", "definition", "kind", "event", "from_state", "to_state", "actor",
              "roles", "changes", "note", "effective_at", "recorded_at", "prev_hash", "org", "os_user",
              "case_version", "hash")


class Floor:
    """One instance = the workload's open + steps as plain persisted steps (the engine's own state names)."""

    def __init__(self, workload: str, states: list[str], sha: str) -> None:
        self.workflow, _opener, self.open_data, self.steps = WORKLOADS[workload]
        self.states, self.sha = states, sha

    def instance(self) -> int:
        tag = secrets.token_hex(4)
        cid = f"FL-{tag}"
        data = dict(self.open_data(tag))
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        first = _audit_row(cid, 1, "0" * 64, self.workflow, self.sha, "open", None, self.states[0], "opener",
                           {k: [None, v] for k, v in data.items()}, 1)
        self.open(cid, data, now, first)
        for (_kind, event, actor, sets), dest in zip(self.steps, self.states[1:]):
            self.step(cid, event, actor, sets, dest)
        return len(self.steps) + 1

    def open(self, cid: str, data: dict[str, Any], now: str, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def step(self, cid: str, event: str, actor: str, sets: dict[str, str], dest: str) -> None:
        raise NotImplementedError

    def apply(self, cid: str, state: str, data_text: str, version: int, seq: int, prev: str, event: str,
              actor: str, sets: dict[str, str], dest: str) -> tuple[dict[str, Any], dict[str, Any]]:
        data = json.loads(data_text)
        changes = {k: [data.get(k), v] for k, v in sets.items() if data.get(k) != v}
        data.update(sets)
        row = _audit_row(cid, seq + 1, prev, self.workflow, self.sha, event, state, dest, actor, changes, version + 1)
        now = row["recorded_at"]
        values = {"cid": cid, "seen": version, "state": dest, "data": json.dumps(data, ensure_ascii=False,
                                                                                 sort_keys=True),
                  "version": version + 1, "now": now, "seq": seq + 1, "hash": row["hash"]}
        return values, row


_R_SELECT = "SELECT state, data, version, audit_seq, audit_hash FROM cases WHERE id = {p}"
_R_UPDATE = ("UPDATE cases SET state = {p}, data = {p}, version = {p}, updated_at = {p}, audit_seq = {p}, "
             "audit_hash = {p} WHERE id = {p} AND version = {p}")
_R_CASE = ("INSERT INTO cases (id, workflow, definition, state, data, signoffs, version, created_at, updated_at, "
           "audit_seq, audit_hash) VALUES ({v})")
_R_AUDIT = f"INSERT INTO audit ({', '.join(AUDIT_COLS)}) VALUES ({{v}})"


class RawFloor(Floor):
    def __init__(self, db: adv.Database, workload: str, states: list[str], sha: str, log: bool = False) -> None:
        super().__init__(workload, states, sha)
        self.sqlite = db.kind == "sqlite"
        self.pids: set[int] = set()
        if self.sqlite:
            assert db.path is not None
            self.conn: Any = adv.raw_sqlite(db.path, db.sync)
            p = "?"
        else:
            import psycopg
            self.conn = psycopg.connect(db.pg_conninfo, options=f"-csearch_path={db.pg_schema}")
            if log:
                self.pids.add(_log_session(self.conn))
            p = "%s"
        self.select, self.update = _R_SELECT.format(p=p), _R_UPDATE.format(p=p)
        self.insert_case = _R_CASE.format(v=", ".join([p] * 11))
        self.insert_audit = _R_AUDIT.format(v=", ".join([p] * len(AUDIT_COLS)))

    def _tx(self, work: Callable[[Any], None]) -> None:
        cur = self.conn.cursor()
        if self.sqlite:
            cur.execute("BEGIN IMMEDIATE")
        try:
            work(cur)
        except BaseException:
            cur.execute("ROLLBACK") if self.sqlite else self.conn.rollback()
            raise
        cur.execute("COMMIT") if self.sqlite else self.conn.commit()

    def open(self, cid: str, data: dict[str, Any], now: str, row: dict[str, Any]) -> None:
        def work(cur: Any) -> None:
            cur.execute(self.insert_case, (cid, self.workflow, self.sha, self.states[0],
                                           json.dumps(data, ensure_ascii=False, sort_keys=True), "[]", 1, now, now,
                                           1, row["hash"]))
            cur.execute(self.insert_audit, tuple(row[c] for c in AUDIT_COLS))
        self._tx(work)

    def step(self, cid: str, event: str, actor: str, sets: dict[str, str], dest: str) -> None:
        def work(cur: Any) -> None:
            cur.execute(self.select, (cid,))
            state, data, version, seq, prev = cur.fetchone()
            v, row = self.apply(cid, state, data, version, seq, prev, event, actor, sets, dest)
            cur.execute(self.update, (v["state"], v["data"], v["version"], v["now"], v["seq"], v["hash"], cid,
                                      v["seen"]))
            if cur.rowcount != 1:
                raise RuntimeError("stale case in the floor")
            cur.execute(self.insert_audit, tuple(row[c] for c in AUDIT_COLS))
        self._tx(work)

    def close(self) -> None:
        self.conn.close()


class CoreFloor(Floor):
    SELECT = sa.select(cases.c.state, cases.c.data, cases.c.version, cases.c.audit_seq, cases.c.audit_hash) \
        .where(cases.c.id == sa.bindparam("cid"))
    UPDATE = (cases.update().where(cases.c.id == sa.bindparam("cid"), cases.c.version == sa.bindparam("seen"))
              .values(state=sa.bindparam("state"), data=sa.bindparam("data"), version=sa.bindparam("version"),
                      updated_at=sa.bindparam("now"), audit_seq=sa.bindparam("seq"), audit_hash=sa.bindparam("hash")))
    INSERT_CASE = cases.insert()
    INSERT_AUDIT = audit.insert()

    def __init__(self, db: adv.Database, workload: str, states: list[str], sha: str, log: bool = False) -> None:
        super().__init__(workload, states, sha)
        self.engine = create_engine(db.url)          # caseflow's connection setup
        self.pids = _log_engine(self.engine) if log else set()

    def open(self, cid: str, data: dict[str, Any], now: str, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.INSERT_CASE, {"id": cid, "workflow": self.workflow, "definition": self.sha,
                                            "state": self.states[0],
                                            "data": json.dumps(data, ensure_ascii=False, sort_keys=True),
                                            "signoffs": "[]", "version": 1, "created_at": now, "updated_at": now,
                                            "audit_seq": 1, "audit_hash": row["hash"]})
            conn.execute(self.INSERT_AUDIT, row)

    def step(self, cid: str, event: str, actor: str, sets: dict[str, str], dest: str) -> None:
        with self.engine.begin() as conn:
            r = conn.execute(self.SELECT, {"cid": cid}).one()
            v, row = self.apply(cid, r.state, r.data, r.version, r.audit_seq, r.audit_hash, event, actor, sets, dest)
            if conn.execute(self.UPDATE, v).rowcount != 1:
                raise RuntimeError("stale case in the floor")
            conn.execute(self.INSERT_AUDIT, row)

    def close(self) -> None:
        self.engine.dispose()


# -- the engine's own statements, replayed raw ---------------------------------------------------

Batch = tuple[int, list[list[tuple[str, Any, bool]]]]        # (the engine's steps, its transactions' statements)


def engine_statements(engine: sa.engine.Engine, work: Callable[[], int]) -> Batch:
    """The statements (text, parameters, executemany) the engine sent to the DB-API cursor during `work`,
    one list per committed transaction (with the reads before it; BEGIN/COMMIT left out)."""
    steps: list[list[tuple[str, Any, bool]]] = [[]]

    def record(_conn: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            steps[-1].append((statement, params, many))

    def committed(_conn: Any) -> None:
        steps.append([])

    sa.event.listen(engine, "before_cursor_execute", record)
    sa.event.listen(engine, "commit", committed)
    try:
        done = work()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
        sa.event.remove(engine, "commit", committed)
    return done, [s for s in steps if s]


def replay_rates(db: adv.Database, copy: Path, batches: list[Batch]) -> list[float]:
    """The engine's statements run again on raw sqlite3 against `copy` (the database as it was before they
    ran), each transaction in BEGIN IMMEDIATE … COMMIT with the raw floor's settings: steps/s per batch."""
    conn = adv.raw_sqlite(copy, db.sync)
    cur, rates = conn.cursor(), []
    try:
        for steps, transactions in batches:
            t0 = time.perf_counter()
            for statements in transactions:
                cur.execute("BEGIN IMMEDIATE")
                for statement, params, many in statements:
                    (cur.executemany if many else cur.execute)(statement, params)
                    if statement.startswith("SELECT"):
                        cur.fetchall()
                cur.execute("COMMIT")
            rates.append(steps / (time.perf_counter() - t0))
    finally:
        conn.close()
    return rates


def sqlite_copy(db: adv.Database) -> Path:
    """A consistent copy of the SQLite database file (the backup API: the WAL's pages included)."""
    assert db.path is not None
    target = db.path.with_name(db.path.stem + "-replay.db")
    src, dst = sqlite3.connect(db.path), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


# -- statements counted at the PostgreSQL server --------------------------------------------------

def _log_session(dbapi_conn: Any) -> int:
    cur = dbapi_conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = int(cur.fetchone()[0])
    cur.execute("SET log_statement = 'all'")
    cur.close()
    dbapi_conn.commit()
    return pid


def _log_engine(engine: sa.engine.Engine) -> set[int]:
    pids: set[int] = set()

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        pids.add(_log_session(dbapi_conn))
        dbapi_conn.autocommit = autocommit
    return pids


def server_log(url: str) -> Path | None:
    if os.environ.get("CASEFLOW_BENCH_PG_LOG"):
        return Path(os.environ["CASEFLOW_BENCH_PG_LOG"])
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            found = conn.execute(sa.text("SELECT pg_current_logfile()")).scalar()
            data_dir = Path(conn.execute(sa.text("SHOW data_directory")).scalar_one())
    finally:
        eng.dispose()
    for p in ([data_dir / found] if found else []) + [data_dir.parent / "postgres.log"]:
        if p.exists() and os.access(p, os.R_OK):
            return p
    return None


_LINE = re.compile(r"\[(\d+)\] LOG:  (?:statement|execute [^:]*):")


def count_statements(log: Path, pids: set[int], work: Callable[[], int]) -> float:
    """Statements the server logged for these sessions during `work`, per step it reports."""
    start = log.stat().st_size
    steps = work()
    time.sleep(0.2)                              # let the server write its last lines
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", "replace")
    n = sum(1 for m in _LINE.finditer(text) if int(m.group(1)) in pids)
    return n / steps


# -- measuring -----------------------------------------------------------------------------------

def measure(db: adv.Database, catalog: Catalog, workload: str, rounds: int, instances: int,
            log: Path | None) -> dict[str, Any]:
    with db.env():
        store = Store(db.url)
        store.migrate(simulation=True)
        engine = Engine(store, catalog)
        eway = EngineWay(engine, workload)
        eway.instance()                                        # warm-up; learns the state names
        sha = engine.catalog.get(WORKLOADS[workload][0]).sha256
        ways: dict[str, Any] = {"engine": eway, "raw": RawFloor(db, workload, eway.states, sha),
                                "core": CoreFloor(db, workload, eway.states, sha)}
        for w in ways.values():
            w.instance()
        rates: dict[str, list[float]] = {k: [] for k in ways}
        names = list(ways)
        for r in range(rounds):
            for name in names[r % 3:] + names[:r % 3]:
                t0 = time.perf_counter()
                steps = sum(ways[name].instance() for _ in range(instances))
                rates[name].append(steps / (time.perf_counter() - t0))
        replayed: dict[str, float] = {}
        if db.kind == "sqlite":      # how much of the engine's step is the SQL it sends (what it persists)
            copy = sqlite_copy(db)
            batches = [engine_statements(store.engine, lambda: sum(eway.instance() for _ in range(instances)))
                       for _ in range(rounds)]
            replayed = {"rate": statistics.median(replay_rates(db, copy, batches)),
                        "statements": sum(len(s) for _, b in batches for s in b) / sum(n for n, _ in batches)}
            copy.unlink()
        sent: dict[str, float] = {}
        if log is not None:
            counted = Store(db.url)
            pids = _log_engine(counted.engine)
            cengine = EngineWay(Engine(counted, catalog), workload)
            sent["engine"] = count_statements(log, pids, lambda: sum(cengine.instance() for _ in range(3)))
            counted.engine.dispose()
            for name, cls in (("raw", RawFloor), ("core", CoreFloor)):
                floor = cls(db, workload, eway.states, sha, log=True)
                sent[name] = count_statements(log, floor.pids, lambda f=floor: sum(f.instance() for _ in range(3)))
                floor.close()
        ways["raw"].close()
        ways["core"].close()
        store.engine.dispose()
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = {b: statistics.median(a / c for a, c in zip(rates["engine"], rates[b])) for b in ("raw", "core")}
    return {"median": med, "ratio": ratio, "sent": sent, "steps": len(WORKLOADS[workload][3]) + 1,
            "replayed": replayed}


def rows_for(db: adv.Database, workload: str, m: dict[str, Any], note: str) -> list[dict[str, Any]]:
    driver = "sqlite3" if db.kind == "sqlite" else "psycopg"
    label = f"{LABEL[workload]}, {db.label}, per step"
    sent = m["sent"]
    extra = (f"; statements at the server per step: engine {sent['engine']:.2f}, raw {sent['raw']:.2f}, "
             f"Core {sent['core']:.2f}" if sent else "") + (f"; {note}" if note else "")
    return [{"group": "paths", "name": label, "value": m["median"]["engine"], "unit": "steps/s",
             "baseline": f"raw {driver} floor, same persisted work", "baseline_value": m["median"]["raw"],
             "ratio": m["ratio"]["raw"], "goal": GOAL_RAW[db.kind].get(workload),
             "note": f"{m['steps']} steps per case{extra}"},
            {"group": "paths", "name": label, "value": m["median"]["engine"], "unit": "steps/s",
             "baseline": "SQLAlchemy Core floor, same persisted work", "baseline_value": m["median"]["core"],
             "ratio": m["ratio"]["core"],
             "note": f"Core floor vs raw: {m['median']['core'] / m['median']['raw']:.2f}x"}] + ([
            {"group": "paths", "name": label, "value": m["median"]["engine"], "unit": "steps/s",
             "baseline": "the engine's own statements replayed on raw sqlite3",
             "baseline_value": m["replayed"]["rate"], "ratio": m["median"]["engine"] / m["replayed"]["rate"],
             "note": f"ratio of medians (replayed after the rounds); {m['replayed']['statements']:.2f} "
                     f"statements per step, BEGIN IMMEDIATE/COMMIT apart; "
                     f"replayed vs raw floor: {m['replayed']['rate'] / m['median']['raw']:.2f}x (the most the "
                     f"engine's persisted work allows)"}] if m["replayed"] else [])


def profile(workload: str, instances: int = 20) -> int:
    """Where the engine's time goes on one path (cProfile self time grouped by library, bench_advance)."""
    import logging
    logging.getLogger("transitions").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="caseflow-paths-") as tmp:
        db = adv.sqlite_database(Path(tmp), "NORMAL")
        with db.env():
            store = Store(db.url)
            store.migrate(simulation=True)
            way = EngineWay(Engine(store, adv.load_catalog()), workload)
            for _ in range(3):
                way.instance()
        steps = instances * (len(WORKLOADS[workload][3]) + 1)
        r = adv.profile(lambda: [way.instance() for _ in range(instances)], steps, db)
        store.engine.dispose()
    print(f"{LABEL[workload]}, SQLite: {r['profiled_us_per_step']:,.0f} µs per step under the profiler")
    for name, share in r["buckets"]:
        print(f"  {share * 100:5.1f}%  {name}")
    for name, ct, tt in r["top_cumulative"]:
        print(f"  {ct:8,.0f} µs cumulative {tt:6,.0f} self  {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--only", default="refund,complaint,card")
    ap.add_argument("--profile", choices=sorted(WORKLOADS), help="profile one workload on SQLite instead")
    args = ap.parse_args(argv)
    if args.profile:
        return profile(args.profile)
    rounds, instances = (8, 3) if args.quick else (15, 4)
    import logging
    logging.getLogger("transitions").setLevel(logging.WARNING)
    catalog = adv.load_catalog()
    as_json = os.environ.get("CASEFLOW_BENCH_JSON") == "1"
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="caseflow-paths-") as tmp:
        dbs: list[tuple[adv.Database, Path | None, str]] = [(adv.sqlite_database(Path(tmp), "NORMAL"), None, "")]
        url = adv.pg_url()
        if not args.skip_pg and url:
            try:
                log = server_log(url)
                dbs.append((adv.pg_database(url), log, "" if log else
                            "server statements not counted: no readable server log (CASEFLOW_BENCH_PG_LOG)"))
            except sa.exc.OperationalError as exc:
                print(f"PostgreSQL left out: {str(exc).splitlines()[0][:160]}", file=sys.stderr)
        for db, log, note in dbs:
            try:
                for workload in args.only.split(","):
                    print(f"[paths] {workload} on {db.label}: {rounds} rounds x {instances} cases", file=sys.stderr)
                    m = measure(db, catalog, workload, rounds, instances, log)
                    for row in rows_for(db, workload, m, note):
                        out.append(row)
                        if as_json:
                            print(json.dumps(row, ensure_ascii=False), flush=True)
            finally:
                db.cleanup()
    if not as_json:
        for row in out:
            print(f"{row['name']:60s} {row['value']:8.0f} steps/s  vs {row['baseline']:45s} "
                  f"{row['baseline_value']:8.0f}  ratio {row['ratio']:.2f}  {row['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
