"""Advance throughput: caseflow's Engine beside the same writes hand-coded.

Three ways to make one step of a complaint case, all in this process and on the
same database, schema and connection settings:

  engine  `Engine.advance(case, "revise", "zheng.hai", {"solution": …})`: the
          cs_manager revising the proposed solution, a transition from
          `proposing` back to `proposing` (the complaint's internal loop).
          Everything the engine does per step is included: read the case,
          role, required fields, guards, data schema, machine, versioned UPDATE,
          hash-chained audit row, commit.
  core    the floor in SQLAlchemy Core, as one would hand-code it: in one
          transaction SELECT the case, UPDATE it with a version check, INSERT
          one audit row (its sha256 computed, no chain lookup), COMMIT.
  raw     the same four statements through the DB-API driver (sqlite3 or
          psycopg) with no SQLAlchemy at all.

The cases are round-robined (K of them per way) so that no way enjoys a hotter
row than another. Ways are interleaved in rounds (the order rotates each round)
and the figure is the median over rounds; the ratio is the median of the
per-round ratios, so drift on a noisy machine hits both sides alike.

`walk_main_path` opens complaints and walks them to `closed` along the main
path (the comparison with SpiffWorkflow, bench_spiff.py, uses it).
"""

from __future__ import annotations

import cProfile
import hashlib
import json
import os
import pstats
import secrets
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from caseflow.catalog import SHIPPED, Catalog
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store, create_engine
from caseflow.store.tables import audit, cases

# Keep in step with OPEN_DATA / STEPS in bench_spiff.py.
COMPLAINT = {"form_no": "TS-2025-001", "customer_name": "张三", "phone": "13812345678",
             "address": "上海市浦东新区世纪大道100号", "channel": "phone", "category": "quality",
             "description": "卫生间防水层漏水", "severity": "normal", "received_at": "2025-03-03T10:00"}
# (event or "sign", actor, --set values)
MAIN_PATH: list[tuple[str, str, dict[str, str]]] = [
    ("assess", "wang.fang", {}),
    ("accept", "wang.fang", {"responsible_dept": "engineering",
                             "assessment_note": "防水施工问题，投诉成立"}),
    ("find_cause", "tang.liang", {"root_cause": "防水层施工不规范", "responsible_person": "xu.peng",
                                  "solution": "重做防水并赔偿瓷砖损失"}),
    ("sign", "zheng.hai", {}),                                   # approve_solution: the manager's sign-off
    ("customer_accepts", "huang.lei", {"customer_signature": "张三"}),
    ("assign_responsibility", "zheng.hai", {"responsibility_code": "B2"}),
    ("decide_penalty", "zheng.hai", {"penalty_decision": "罚款200元"}),
    ("summarize", "zhou.jie", {"summary": "已重做防水，顾客满意"}),
]
TO_PROPOSING = 3          # the first three steps bring a case to `proposing`


# -- databases --------------------------------------------------------------------------------

@dataclass
class Database:
    """One database to measure on: a SQLAlchemy URL plus how to reach it without SQLAlchemy."""

    label: str
    url: str
    kind: str                               # sqlite | postgresql
    sync: str | None = None                 # SQLite synchronous level
    cleanup: Callable[[], None] = lambda: None
    path: Path | None = None                # SQLite file
    pg_conninfo: str | None = None
    pg_schema: str | None = None

    @contextmanager
    def env(self) -> Iterator[None]:
        """caseflow's store reads CASEFLOW_SQLITE_SYNC when it connects: set it for this database."""
        old = os.environ.get("CASEFLOW_SQLITE_SYNC")
        if self.sync:
            os.environ["CASEFLOW_SQLITE_SYNC"] = self.sync
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("CASEFLOW_SQLITE_SYNC", None)
            else:
                os.environ["CASEFLOW_SQLITE_SYNC"] = old


def sqlite_database(directory: Path, sync: str) -> Database:
    path = directory / f"bench-{sync.lower()}-{secrets.token_hex(3)}.db"
    return Database(f"SQLite WAL, synchronous={sync}", f"sqlite:///{path}", "sqlite", sync=sync, path=path)


def pg_url() -> str | None:
    url = os.environ.get("CASEFLOW_BENCH_PG")
    if url:
        return url
    f = Path("/tmp/pgdev/url")
    return f.read_text().strip() if f.exists() else None


def pg_database(base_url: str) -> Database:
    """A fresh schema in the given PostgreSQL database, dropped by cleanup(); raises if unreachable."""
    schema = f"bench_{secrets.token_hex(5)}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"
    libpq = sa.engine.make_url(base_url).set(drivername="postgresql")

    def cleanup() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return Database("PostgreSQL", url, "postgresql", cleanup=cleanup,
                    pg_conninfo=libpq.render_as_string(hide_password=False), pg_schema=schema)


# -- the three ways of making a step ---------------------------------------------------------

def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _audit_row(case_id: str, row: Any, seq: int, old: str | None, new: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    out = {"case_id": case_id, "seq": seq, "workflow": row[1], "definition": row[2], "kind": "transition",
           "event": "revise", "from_state": row[3], "to_state": row[3], "actor": "zheng.hai",
           "roles": '["cs_manager"]', "changes": _canonical({"solution": [old, new]}), "note": None,
           "effective_at": now, "recorded_at": now, "prev_hash": "0" * 64}
    out["hash"] = hashlib.sha256(_canonical(list(out.values())).encode()).hexdigest()
    return out


class CoreFloor:
    """The floor in SQLAlchemy Core: one transaction, four statements, written by hand.

    Statements are built once with bind parameters, as the engine's hot path does, so the
    floor is the best hand-written Core, not just the most idiomatic.
    """

    SELECT = sa.select(cases.c.id, cases.c.workflow, cases.c.definition, cases.c.state, cases.c.data,
                       cases.c.version).where(cases.c.id == sa.bindparam("cid"))
    UPDATE = (cases.update().where(cases.c.id == sa.bindparam("cid"), cases.c.version == sa.bindparam("seen"))
              .values(data=sa.bindparam("data"), version=sa.bindparam("version"),
                      updated_at=sa.bindparam("now")))
    INSERT = audit.insert()

    def __init__(self, url: str, ids: list[str]) -> None:
        self.engine = create_engine(url)        # caseflow's connection setup: same PRAGMAs, BEGIN IMMEDIATE
        self.ids = ids

    def step(self, i: int) -> None:
        case_id = self.ids[i % len(self.ids)]
        with self.engine.begin() as conn:
            row = conn.execute(self.SELECT, {"cid": case_id}).one()
            data = json.loads(row.data)
            old, data["solution"] = data.get("solution"), f"方案 {i}"
            now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
            done = conn.execute(self.UPDATE, {"cid": case_id, "seen": row.version, "now": now,
                                              "data": json.dumps(data, ensure_ascii=False, sort_keys=True),
                                              "version": row.version + 1})
            if done.rowcount != 1:
                raise RuntimeError("stale case in the floor benchmark")
            conn.execute(self.INSERT, [_audit_row(case_id, row, row.version + 1, old, data["solution"])])

    def close(self) -> None:
        self.engine.dispose()


LADDER = [
    "Core floor: 1 transaction, SELECT + UPDATE + INSERT",
    "+ the read in its own transaction, as Engine.advance does",
    "+ audit hash chain: SELECT the case's last audit row, chain the hash",
    "+ SLA clocks: SELECT the case's timers",
    "+ data schema check (jsonschema) twice, as plan and commit each do",
]


class CoreLadder:
    """The Core floor with the engine's extra work added one piece at a time (levels 0-4, cumulative),
    to price each piece in wall time, without a profiler."""

    def __init__(self, url: str, ids: list[str], level: int, definition: Any) -> None:
        self.engine = create_engine(url)
        self.ids, self.level, self.definition = ids, level, definition

    def _read(self, conn: Any, case_id: str) -> Any:
        return conn.execute(sa.select(cases.c.id, cases.c.workflow, cases.c.definition, cases.c.state,
                                      cases.c.data, cases.c.version).where(cases.c.id == case_id)).one()

    def step(self, i: int) -> None:
        from caseflow.definition.evaluate import schema_problem
        from caseflow.store.tables import timers
        case_id = self.ids[i % len(self.ids)]
        if self.level >= 1:
            with self.engine.connect() as conn:
                conn = conn.execution_options(caseflow_readonly=True)
                with conn.begin():
                    row = self._read(conn, case_id)
        with self.engine.begin() as conn:
            if self.level < 1:
                row = self._read(conn, case_id)
            data = json.loads(row.data)
            old, data["solution"] = data.get("solution"), f"方案 {i}"
            if self.level >= 4:
                schema_problem(self.definition, data)
                schema_problem(self.definition, data)
            now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
            done = conn.execute(cases.update().where(cases.c.id == case_id, cases.c.version == row.version)
                                .values(data=json.dumps(data, ensure_ascii=False, sort_keys=True),
                                        version=row.version + 1, updated_at=now))
            if done.rowcount != 1:
                raise RuntimeError("stale case in the floor benchmark")
            if self.level >= 3:
                conn.execute(sa.select(timers).where(timers.c.case_id == case_id)).all()
            entry = _audit_row(case_id, row, row.version + 1, old, data["solution"])
            if self.level >= 2:
                last = conn.execute(sa.select(audit.c.seq, audit.c.hash).where(audit.c.case_id == case_id)
                                    .order_by(audit.c.seq.desc()).limit(1)).first()
                entry["seq"], entry["prev_hash"] = (last.seq + 1, last.hash) if last else (1, "0" * 64)
                entry.pop("hash")
                entry["hash"] = hashlib.sha256(_canonical(list(entry.values())).encode()).hexdigest()
            conn.execute(audit.insert(), [entry])

    def close(self) -> None:
        self.engine.dispose()


def ladder(db: Database, engine: Engine, rounds: int, n: int, k: int = 10) -> list[tuple[str, float]]:
    """µs per step at each ladder level and for the engine itself, interleaved like measure(); the best
    round of each, since increments of a few hundred µs drown in other processes' load otherwise."""
    definition = engine.catalog.get("complaint")
    with db.env():
        ids = cases_in_proposing(engine, k)
        ways: dict[str, Any] = {name: CoreLadder(db.url, floor_cases(engine, ids[0], f"FL{lv}", k), lv, definition)
                                for lv, name in enumerate(LADDER)}
        ways["Engine.advance"] = EngineWay(engine, ids)
        for w in ways.values():
            _time(w.step, 0, max(10, n // 10))
        rates: dict[str, list[float]] = {name: [] for name in ways}
        names = list(ways)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                rates[name].append(_time(ways[name].step, (r + 1) * n, n))
        for name in LADDER:
            ways[name].close()
    return [(name, 1e6 / max(v)) for name, v in rates.items()]


_SELECT = "SELECT id, workflow, definition, state, data, version FROM cases WHERE id = {p}"
_UPDATE = "UPDATE cases SET data = {p}, version = {p}, updated_at = {p} WHERE id = {p} AND version = {p}"
_INSERT = ("INSERT INTO audit (case_id, seq, workflow, definition, kind, event, from_state, to_state, actor, "
           "roles, changes, note, effective_at, recorded_at, prev_hash, hash) VALUES ({v})")


def raw_sqlite(path: Path | str, sync: str | None) -> sqlite3.Connection:
    """A raw sqlite3 connection with the settings caseflow's store gives a SQLite writer
    (store/backend_sqlite.py), for the raw floors; BEGIN and COMMIT are the caller's."""
    from caseflow.store.backend_sqlite import WAL_CHECKPOINT_PAGES
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    for pragma in ("journal_mode=WAL", f"synchronous={sync}", "busy_timeout=30000", "foreign_keys=ON",
                   f"wal_autocheckpoint={WAL_CHECKPOINT_PAGES}"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


class RawFloor:
    """The same four statements through the DB-API driver."""

    def __init__(self, db: Database, ids: list[str]) -> None:
        self.ids, self.db = ids, db
        if db.kind == "sqlite":
            assert db.path is not None
            self.conn: Any = raw_sqlite(db.path, db.sync)
            p = "?"
        else:
            import psycopg
            self.conn = psycopg.connect(db.pg_conninfo, options=f"-csearch_path={db.pg_schema}")
            p = "%s"
        self.select = _SELECT.format(p=p)
        self.update = _UPDATE.format(p=p)
        self.insert = _INSERT.format(v=", ".join([p] * 16))

    def step(self, i: int) -> None:
        case_id = self.ids[i % len(self.ids)]
        sqlite = self.db.kind == "sqlite"
        cur = self.conn.cursor()
        if sqlite:
            cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(self.select, (case_id,))
            row = cur.fetchone()
            data = json.loads(row[4])
            old, data["solution"] = data.get("solution"), f"方案 {i}"
            now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
            cur.execute(self.update, (json.dumps(data, ensure_ascii=False, sort_keys=True), row[5] + 1, now,
                                      case_id, row[5]))
            if cur.rowcount != 1:
                raise RuntimeError("stale case in the floor benchmark")
            cur.execute(self.insert, tuple(_audit_row(case_id, row, row[5] + 1, old, data["solution"]).values()))
            if sqlite:
                cur.execute("COMMIT")
            else:
                self.conn.commit()
        except BaseException:
            if sqlite:
                cur.execute("ROLLBACK")
            else:
                self.conn.rollback()
            raise

    def close(self) -> None:
        self.conn.close()


class EngineWay:
    def __init__(self, engine: Engine, ids: list[str]) -> None:
        self.engine, self.ids = engine, ids

    def step(self, i: int) -> None:
        self.engine.advance(self.ids[i % len(self.ids)], "revise", "zheng.hai", {"solution": f"方案 {i}"})


# -- setup ------------------------------------------------------------------------------------

def new_engine(db: Database, catalog: Catalog) -> Engine:
    """A simulation database: the person comes from `--as` (on a live PostgreSQL database it is the login,
    and the bench's one login is no person of the org chart; docs/security.md)."""
    store = Store(db.url)
    store.migrate(simulation=True)
    return Engine(store, catalog)


def walk(engine: Engine, steps: list[tuple[str, str, dict[str, str]]], case_id: str) -> None:
    for event, actor, sets in steps:
        if event == "sign":
            engine.sign(case_id, actor)
        else:
            engine.advance(case_id, event, actor, _accepted(engine, event, sets))


def _accepted(engine: Engine, event: str, sets: dict[str, str]) -> dict[str, str]:
    """Only the values the current complaint definition lets this event set, so that the walk keeps
    working while designers move a field from operator input to a computed effect."""
    d = engine.catalog.get("complaint")
    allowed = {k for t in d.transitions if t.event == event for k in (*t.accepts, *t.inputs)}
    return {k: v for k, v in sets.items() if k in allowed}


def cases_in_proposing(engine: Engine, k: int) -> list[str]:
    ids = []
    for _ in range(k):
        cid = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
        walk(engine, MAIN_PATH[:TO_PROPOSING], cid)
        ids.append(cid)
    return ids


def floor_cases(engine: Engine, template: str, prefix: str, k: int) -> list[str]:
    """Copies of an engine case row under new ids (no audit rows), for a floor to update."""
    ids = [f"{prefix}-{i:04d}-{secrets.token_hex(2)}" for i in range(k)]
    with engine.store.write() as conn:
        row = dict(conn.execute(sa.select(cases).where(cases.c.id == template)).one()._mapping)
        conn.execute(cases.insert(), [{**row, "id": i, "version": 1, "parent_case": None} for i in ids])
    return ids


# -- measuring --------------------------------------------------------------------------------

@dataclass
class Measured:
    """Steps per second for each way, per round, on one database."""

    db: str
    n: int
    rates: dict[str, list[float]] = field(default_factory=dict)
    floor_sql: dict[str, float] = field(default_factory=dict)     # statements per Core floor step

    def median(self, way: str) -> float:
        return statistics.median(self.rates[way])

    def ratio(self, way: str, base: str) -> float:
        return statistics.median(a / b for a, b in zip(self.rates[way], self.rates[base]))


def _time(step: Callable[[int], None], start: int, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(start, start + n):
        step(i)
    return n / (time.perf_counter() - t0)


def measure(db: Database, catalog: Catalog, rounds: int, n: int, k: int = 10) -> tuple[Measured, Engine]:
    """Interleaved rounds of engine, core and raw steps on one database."""
    with db.env():
        engine = new_engine(db, catalog)
        ids = cases_in_proposing(engine, k)
        ways: dict[str, Any] = {
            "engine": EngineWay(engine, ids),
            "core": CoreFloor(db.url, floor_cases(engine, ids[0], "FLC", k)),
            "raw": RawFloor(db, floor_cases(engine, ids[0], "FLR", k)),
        }
        for w in ways.values():               # warm-up: statement caches, pools, page cache
            _time(w.step, 0, max(20, n // 10))
        core = ways["core"]
        floor_sql = statements(core.engine, db, lambda: _time(core.step, 10**6, 10), 10)
        result = Measured(db.label, n, floor_sql=floor_sql)
        names = list(ways)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                result.rates.setdefault(name, []).append(_time(ways[name].step, (r + 1) * n, n))
        for name in ("core", "raw"):
            ways[name].close()
    return result, engine


def phases(engine: Engine, ids: list[str] | None, n: int, db: Database) -> dict[str, float]:
    """Wall-clock split of Engine.advance (µs per step), without a profiler's distortion."""
    spent = {"snapshot": 0.0, "plan": 0.0, "write": 0.0}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - t0
        return wrapper

    with db.env():
        ids = ids or cases_in_proposing(engine, 10)
    with db.env():
        for name in spent:
            setattr(engine, name, timed(name, getattr(engine, name)))
        try:
            t0 = time.perf_counter()
            for i in range(n):
                engine.advance(ids[i % len(ids)], "revise", "zheng.hai", {"solution": f"方案 p{i}"})
            total = time.perf_counter() - t0
        finally:
            for name in spent:
                delattr(engine, name)
    out = {k: v / n * 1e6 for k, v in spent.items()}
    out["total"] = total / n * 1e6
    out["read transaction, user lookup, rest"] = out["total"] - out["snapshot"] - out["plan"] - out["write"]
    return out


BUCKETS = [
    ("database driver (sqlite3 / psycopg C calls, fsync)", lambda f, n: "sqlite3" in n or "/psycopg" in f
     or "psycopg" in n),
    ("SQLAlchemy: building statements, compile cache keys", lambda f, n: "/sqlalchemy/sql/" in f),
    ("SQLAlchemy: execute, results, transactions, pool, events", lambda f, n: "/sqlalchemy/" in f),
    ("jsonschema (data schema validation)", lambda f, n: "jsonschema" in f or "referencing" in f
     or "/rpds" in f or "/attr/" in f),
    ("CEL guards and effects", lambda f, n: "cel_expr_python" in f + n or "/engine/expressions.py" in f),
    ("transitions (machine)", lambda f, n: "/transitions/" in f),
    ("json, hashlib (stdlib)", lambda f, n: "/json/" in f or "hashlib" in n or "sha256" in n
     or "_json" in n),
    ("caseflow engine code", lambda f, n: "/engine/" in f and "/site-packages/" not in f),
]
OTHER = "other (the benchmark loop, interpreter)"


def _bucket_of(func: tuple[str, int, str]) -> str | None:
    filename, _line, name = func
    return next((b for b, test in BUCKETS if test(filename, name)), None)


def _attribute(stats: dict[Any, Any]) -> dict[str, float]:
    """Self time per bucket. Built-ins and stdlib helpers (dict.get, isinstance, contextlib, enum…)
    have no bucket of their own: their time goes to whoever called them, split by time per caller."""
    out: dict[str, float] = {}

    def give(func: Any, amount: float, depth: int) -> None:
        label = _bucket_of(func)
        if label is None:
            callers = stats.get(func, (0, 0, 0, 0, {}))[4]
            shares = {c: v[2] for c, v in callers.items()} if callers else {}
            whole = sum(shares.values()) or sum(v[1] for v in callers.values())
            if depth < 6 and callers and whole > 0:
                for c, v in callers.items():
                    part = shares[c] if sum(shares.values()) else v[1]
                    give(c, amount * part / whole, depth + 1)
                return
            label = OTHER
        out[label] = out.get(label, 0.0) + amount

    for func, (_cc, _nc, tt, _ct, _callers) in stats.items():
        give(func, tt, 0)
    return out


def revise_loop(engine: Engine, db: Database, n: int, tag: str) -> Callable[[], None]:
    """n revise advances over 10 fresh cases in `proposing` (the cases are made now, not when run)."""
    with db.env():
        ids = cases_in_proposing(engine, 10)

    def work() -> None:
        for i in range(n):
            engine.advance(ids[i % len(ids)], "revise", "zheng.hai", {"solution": f"方案 {tag}{i}"})
    return work


def profile(work: Callable[[], None], steps: int, db: Database) -> dict[str, Any]:
    """cProfile over `work`: self time grouped by library, plus the heaviest caseflow functions."""
    with db.env():
        prof = cProfile.Profile()
        prof.enable()
        work()
        prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    buckets = _attribute(stats)
    total = sum(buckets.values())
    ours: list[tuple[float, float, str]] = []
    for (filename, line, name), (_cc, _nc, tt, ct, _callers) in stats.items():
        if "/engine/" in filename and "/site-packages/" not in filename:
            ours.append((ct, tt, f"{Path(filename).name}:{line} {name}"))
    ours.sort(reverse=True)
    return {"steps": steps, "profiled_us_per_step": total / steps * 1e6,
            "buckets": sorted(((k, v / total) for k, v in buckets.items()), key=lambda kv: -kv[1]),
            "top_cumulative": [(name, ct / steps * 1e6, tt / steps * 1e6) for ct, tt, name in ours[:12]]}


def statements(target: sa.engine.Engine, db: Database, work: Callable[[], None], steps: int) -> dict[str, float]:
    """SQL statements sent through `target` per step, by verb and table (BEGIN and COMMIT included;
    psycopg opens its transactions implicitly, so PostgreSQL shows no BEGIN)."""
    seen: dict[str, int] = {}

    def count(conn: Any, cursor: Any, stmt: str, params: Any, context: Any, many: bool) -> None:
        words = stmt.split()
        verb = words[0].upper() if words else "?"
        table = ""
        for kw in ("FROM", "INTO", "UPDATE"):
            if kw in (w.upper() for w in words):
                idx = [w.upper() for w in words].index(kw)
                table = words[idx + 1] if kw != "UPDATE" else words[1]
                break
        key = f"{verb} {table}".strip()
        seen[key] = seen.get(key, 0) + 1

    def commit(conn: Any) -> None:
        seen["COMMIT"] = seen.get("COMMIT", 0) + 1

    sa.event.listen(target, "before_cursor_execute", count)
    sa.event.listen(target, "commit", commit)
    try:
        with db.env():
            work()
    finally:
        sa.event.remove(target, "before_cursor_execute", count)
        sa.event.remove(target, "commit", commit)
    return {k: v / steps for k, v in sorted(seen.items(), key=lambda kv: -kv[1])}


def per_event(engine: Engine, db: Database, instances: int) -> list[tuple[str, float]]:
    """Mean wall time (µs) of each main-path call: open, then each event."""
    spent: dict[str, float] = {}
    with db.env():
        for _ in range(instances):
            t0 = time.perf_counter()
            cid = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
            spent["open"] = spent.get("open", 0.0) + time.perf_counter() - t0
            for event, actor, sets in MAIN_PATH:
                t0 = time.perf_counter()
                walk(engine, [(event, actor, sets)], cid)
                name = "sign (approve_solution)" if event == "sign" else event
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
    return [(k, v / instances * 1e6) for k, v in spent.items()]


def walk_main_path(engine: Engine, instances: int) -> tuple[int, float]:
    """Open and close `instances` complaints along the main path; (steps, seconds)."""
    t0 = time.perf_counter()
    for _ in range(instances):
        cid = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
        walk(engine, MAIN_PATH, cid)
    return instances * (len(MAIN_PATH) + 1), time.perf_counter() - t0


def load_catalog() -> Catalog:
    return Catalog.load(SHIPPED)
