"""caseflow benchmarks: one command, one table, every figure beside a baseline from the same run.

    . /tmp/venv/bin/activate            # the project's environment
    python bench/run.py --quick         # a few minutes
    python bench/run.py                 # more rounds and iterations

Rows (each with its baseline measured in this run, and the ratio):
  advance throughput   Engine.advance on SQLite (WAL, synchronous NORMAL and FULL)
                       and PostgreSQL, beside the same writes hand-coded in
                       SQLAlchemy Core and in the raw driver  (goal: >= 0.5x Core)
  SpiffWorkflow        the complaint main path, persisted after every step, per
                       step, beside SpiffWorkflow in its own venv (goal: >= 3x)
  CLI latency          `caseflow show` / `caseflow advance` as new processes,
                       beside `python -c "import sqlalchemy"`
  definition load, SLA sweep
                       rows from bench/bench_load.py and bench/bench_sla.py when
                       present (see bench/README.md for the row protocol)

Where a goal is not met the report adds where the time goes (a wall-clock split
of Engine.advance and a cProfile grouped by library). PostgreSQL comes from
CASEFLOW_BENCH_PG or /tmp/pgdev/url and is skipped, with a note, if unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics as st
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_advance as adv  # noqa: E402
import bench_cli  # noqa: E402

SPIFF_PYTHON = Path(os.environ.get("CASEFLOW_BENCH_SPIFF_PYTHON", "/tmp/spiffvenv/bin/python"))
OTHER_SCRIPTS = [("realistic paths", HERE / "bench_paths.py"),
                 ("definition load", HERE / "bench_load.py"), ("SLA sweep", HERE / "bench_sla.py"),
                 ("inbox", HERE / "bench_inbox.py"), ("reads at scale", HERE / "bench_reads.py"),
                 ("bulk import", HERE / "bench_import.py"), ("migration", HERE / "bench_migrate.py")]


@dataclass
class Plan:
    rounds: int
    n_normal: int
    n_full: int
    n_pg: int
    n_profile: int
    spiff_instances: int
    spiff_rounds: int
    cli_runs: int
    other_timeout: int
    ladder_rounds: int
    ladder_n: int


# Many short interleaved rounds rather than a few long ones: a burst of load from
# elsewhere then spoils a few paired rounds, not a whole figure. A round is still long
# enough (80 revise steps on SQLite) that one WAL checkpoint (~10 ms, whichever way's
# commit crosses the 1,000-page threshold pays it) does not decide that round's ratio.
QUICK = Plan(rounds=12, n_normal=80, n_full=50, n_pg=40, n_profile=60, spiff_instances=5, spiff_rounds=6,
             cli_runs=3, other_timeout=300, ladder_rounds=6, ladder_n=10)
FULL = Plan(rounds=40, n_normal=50, n_full=30, n_pg=25, n_profile=600, spiff_instances=20, spiff_rounds=10,
            cli_runs=15, other_timeout=3600, ladder_rounds=40, ladder_n=30)


@dataclass
class Row:
    group: str
    name: str
    value: float | None
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    goal: float | None = None           # minimum ratio
    note: str = ""
    baseline_unit: str | None = None    # when the baseline is counted in another unit
    max_ratio: float | None = None      # a latency goal: at most this ratio

    def verdict(self) -> str:
        if self.max_ratio is not None and self.ratio is not None:
            return "met" if self.ratio <= self.max_ratio else \
                f"NOT MET ({(self.ratio / self.max_ratio - 1) * 100:.0f}% over)"
        if self.goal is None or self.ratio is None:
            return ""
        if self.ratio >= self.goal:
            return "met"
        short = (1 - self.ratio / self.goal) * 100
        return f"NOT MET ({short:.1f}% short)" if short < 10 else f"NOT MET ({short:.0f}% short)"


def _ratio(r: float, goal: float | None) -> str:
    """Two decimals, three near a goal so that 'NOT MET' never shows beside a rounded-up goal."""
    return f"{r:.3f}x" if goal is not None and abs(r / goal - 1) < 0.1 else f"{r:.2f}x"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f} {unit}".strip()


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# -- advance ---------------------------------------------------------------------------------

def bench_advance(plan: Plan, catalog: Any, tmp: Path, skip_pg: bool) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    dbs: list[tuple[Any, int]] = [(adv.sqlite_database(tmp, "NORMAL"), plan.n_normal),
                                  (adv.sqlite_database(tmp, "FULL"), plan.n_full)]
    url = adv.pg_url()
    skipped = None
    if skip_pg:
        skipped = "skipped (--skip-pg)"
    elif not url:
        skipped = ("skipped: set CASEFLOW_BENCH_PG to a postgresql+psycopg:// URL "
                   "(or write one to /tmp/pgdev/url)")
    else:
        try:
            dbs.append((adv.pg_database(url), plan.n_pg))
        except Exception as exc:  # noqa: BLE001 - any failure to reach it means skip, with the reason
            skipped = (f"skipped: {url.split('@')[-1]} unreachable "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
    for db, n in dbs:
        log(f"advance on {db.label}: {plan.rounds} interleaved rounds x {n} steps per way")
        try:
            m, engine = adv.measure(db, catalog, plan.rounds, n)
            driver = "sqlite3" if db.kind == "sqlite" else "psycopg"
            rows.append(Row("advance", f"advance (revise), {db.label}", m.median("engine"), "steps/s",
                            "SQLAlchemy Core floor", m.median("core"), m.ratio("engine", "core"), 1.0))
            rows.append(Row("advance", f"advance (revise), {db.label}", m.median("engine"), "steps/s",
                            f"raw {driver} floor", m.median("raw"), m.ratio("engine", "raw"), None,
                            "Core floor vs raw: "
                            f"{m.ratio('core', 'raw'):.2f}x"))
            below = m.ratio("engine", "core") < 1.0
            if below or db.kind == "sqlite" and db.sync == "NORMAL":
                log(f"profiling advance on {db.label}")
                split = adv.phases(engine, None, plan.n_profile, db)
                sql = adv.statements(engine.store.engine, db, adv.revise_loop(engine, db, 20, "s"), 20)
                prof = adv.profile(adv.revise_loop(engine, db, plan.n_profile, "c"), plan.n_profile, db)
                steps = adv.ladder(db, engine, plan.ladder_rounds, plan.ladder_n)
                notes.append(_profile_text(db.label, split, sql, prof, m, below, steps))
            engine.store.engine.dispose()
        finally:
            db.cleanup()
    if skipped:
        rows.append(Row("advance", "advance (revise), PostgreSQL", None, "steps/s", "SQLAlchemy Core floor", None,
                        None, 1.0, skipped.replace("|", "/")))
    return rows, notes


def _profile_text(label: str, split: dict[str, float], sql: dict[str, float], prof: dict[str, Any], m: Any,
                  below: bool, steps: list[tuple[str, float]]) -> str:
    engine_us = 1e6 / m.median("engine")
    core_us = 1e6 / m.median("core")
    lines = [f"### Where an advance's time goes: {label}",
             "",
             f"Engine {engine_us:,.0f} µs per step against the Core floor's {core_us:,.0f} µs "
             f"(ratio {m.ratio('engine', 'core'):.2f}x{', goal 1.0x not met' if below else ''}).",
             "",
             f"Wall-clock split of Engine.advance, no profiler ({prof['steps']} steps, µs per step):",
             "",
             "| phase | µs | share |", "|---|---:|---:|"]
    what = {"snapshot": "read: SELECT case + decode (Engine.snapshot)",
            "plan": "plan: role, requires, CEL guards/effects, data schema, machine (Engine.plan)",
            "write": "write transaction: versioned UPDATE + audit INSERT (one statement on PostgreSQL), clocks, "
                     "commit (Engine.write)",
            "read transaction, user lookup, rest": "connection checkout, user lookup, the rest"}
    for key in ("snapshot", "plan", "write", "read transaction, user lookup, rest"):
        lines.append(f"| {what[key]} | {split[key]:,.0f} | {split[key] / split['total'] * 100:.0f}% |")
    lines.append(f"| total | {split['total']:,.0f} | 100% |")
    lines += ["", "SQL statements per step, engine: " + _sql(sql) + "; Core floor: " + _sql(m.floor_sql) + "."]
    lines += ["", "The Core floor with the engine's extra work added one piece at a time (wall time of the "
              "best of interleaved rounds, µs per step; the best round is the one least disturbed by other "
              "work on the machine):", "", "| step | µs | added |", "|---|---:|---:|"]
    prev = None
    for name, us in steps:
        lines.append(f"| {name} | {us:,.0f} | {'' if prev is None else f'{us - prev:+,.0f}'} |")
        prev = us
    lines.append("")
    lines.append("(The last line's increment is the rest of the engine: role, requires, CEL, machine, "
                 "building the plan and the audit entry, the attempts wrapper, SQLAlchemy statements built "
                 "per call.)")
    lines += _profile_tables(prof)
    return "\n".join(lines)


def _sql(counts: dict[str, float]) -> str:
    return ", ".join(f"{k} ×{v:.3g}" for k, v in counts.items()) + f" (= {sum(counts.values()):.3g})"


def _profile_tables(prof: dict[str, Any]) -> list[str]:
    lines = ["", f"cProfile self time by library ({prof['profiled_us_per_step']:,.0f} µs per step under the "
              "profiler, which inflates pure-Python parts; built-ins count for their caller):", "",
              "| where | share |", "|---|---:|"]
    lines += [f"| {name} | {share * 100:.0f}% |" for name, share in prof["buckets"] if share >= 0.005]
    lines += ["", "Heaviest caseflow functions (cumulative µs per step under the profiler):", "",
              "| function | cumulative | self |", "|---|---:|---:|"]
    lines += [f"| {name} | {ct:,.0f} | {tt:,.0f} |" for name, ct, tt in prof["top_cumulative"]]
    return lines


# -- SpiffWorkflow ---------------------------------------------------------------------------

def ensure_spiff(python: Path, setup: bool) -> str | None:
    """None if the SpiffWorkflow venv is usable, else why not. Creates the default venv if allowed."""
    if python.exists():
        return None
    if not setup:
        return f"{python} not found"
    venv = python.parent.parent
    log(f"creating the SpiffWorkflow venv {venv} (once; see bench/README.md)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements.txt")],
                       check=True, capture_output=True, text=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        err = getattr(exc, "stderr", "") or str(exc)
        return f"could not create {venv}: {str(err).strip().splitlines()[-1][:200] if err else exc}"
    return None


def bench_spiff(plan: Plan, catalog: Any, tmp: Path, python: Path, setup: bool) -> tuple[list[Row], list[str]]:
    problem = ensure_spiff(python, setup)
    if problem:
        return [Row("spiff", "complaint main path vs SpiffWorkflow", None, "steps/s", "SpiffWorkflow", None,
                    None, 1.5, f"skipped: {problem}")], []
    db = adv.sqlite_database(tmp, "NORMAL")
    log(f"complaint main path: caseflow vs SpiffWorkflow, {plan.spiff_rounds} rounds x "
        f"{plan.spiff_instances} instances")
    ours: list[float] = []
    theirs: dict[str, list[float]] = {"memory": [], "reload": []}
    info: dict[str, Any] = {}
    with db.env():
        engine = adv.new_engine(db, catalog)
        adv.walk_main_path(engine, 2)                      # warm-up
        for _ in range(plan.spiff_rounds):
            steps, seconds = adv.walk_main_path(engine, plan.spiff_instances)
            ours.append(steps / seconds)
            done = subprocess.run([str(python), str(HERE / "bench_spiff.py"), "--instances",
                                   str(plan.spiff_instances), "--rounds", "1", "--sync", "NORMAL"],
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                engine.store.engine.dispose()
                tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
                return [Row("spiff", "complaint main path vs SpiffWorkflow", None, "steps/s", "SpiffWorkflow",
                            None, None, 1.5, f"bench_spiff.py failed: {tail[0][:200]}")], []
            info = json.loads(done.stdout.strip().splitlines()[-1])
            for r in info["rounds"]:
                theirs[r["mode"]].append(r["steps"] / r["seconds"])
        notes = []
        if st.median(a / b for a, b in zip(ours, theirs["reload"])) < 1.5:
            log("profiling the complaint main path")
            notes.append(_main_path_text(engine, db, plan, ours, theirs))
        engine.store.engine.dispose()
    ours_med = st.median(ours)
    per = info.get("steps_per_instance", 9)
    rows = []
    what = {"memory": "SpiffWorkflow, workflow kept in memory, saved after each task",
            "reload": "SpiffWorkflow, each step loads + deserializes, then saves"}
    for mode in ("memory", "reload"):
        ratio = st.median(a / b for a, b in zip(ours, theirs[mode]))
        rows.append(Row("spiff", "complaint main path, SQLite WAL NORMAL, per step", ours_med, "steps/s",
                        what[mode], st.median(theirs[mode]), ratio, 1.5 if mode == "reload" else None,
                        f"{per} steps/instance; Spiff {info.get('spiffworkflow')}, "
                        f"{info.get('json_bytes', 0) / 1024:.0f} KiB JSON per instance"))
    return rows, notes


def _main_path_text(engine: Any, db: Any, plan: Plan, ours: list[float], theirs: dict[str, list[float]]) -> str:
    n = plan.spiff_instances
    events = adv.per_event(engine, db, n)
    steps = n * (len(adv.MAIN_PATH) + 1)
    sql = adv.statements(engine.store.engine, db, lambda: adv.walk_main_path(engine, 2),
                         2 * (len(adv.MAIN_PATH) + 1))
    prof = adv.profile(lambda: adv.walk_main_path(engine, n), steps, db)
    lines = ["### Where a main-path step's time goes (caseflow beside SpiffWorkflow)", "",
             f"caseflow {1e6 / st.median(ours):,.0f} µs per step; "
             f"SpiffWorkflow {1e6 / st.median(theirs['memory']):,.0f} µs "
             f"(in memory) and {1e6 / st.median(theirs['reload']):,.0f} µs (reload each step).", "",
             f"Wall time per call, no profiler (mean of {n} complaints):", "",
             "| call | µs |", "|---|---:|"]
    lines += [f"| {name} | {us:,.0f} |" for name, us in events]
    lines += ["", "SQL statements per step on the main path (mean over open + 8 events): " + _sql(sql) + "."]
    lines += _profile_tables(prof)
    return "\n".join(lines)


# -- CLI -------------------------------------------------------------------------------------

def bench_cli_rows(plan: Plan) -> list[Row]:
    log(f"CLI cold start: {plan.cli_runs} runs of each command")
    r = bench_cli.measure(plan.cli_runs, with_pass=plan is not QUICK)
    med = r["median_ms"]
    base = med["import sqlalchemy"]
    note = f"median of {r['n']}" + (f"; `python -c pass` {med['python -c pass']:.0f} ms"
                                    if "python -c pass" in med else "")
    return [Row("cli", f"`caseflow {cmd}` cold start (latency; lower is better)", med[cmd], "ms",
                '`python -c "import sqlalchemy"`', base, med[cmd] / base, None, note,
                max_ratio=1.3 if cmd == "show" else None)
            for cmd in ("show", "advance")]


# -- the other engineers' scripts ------------------------------------------------------------

def other_rows(plan: Plan, quick: bool) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    took: list[str] = []
    for group, script in OTHER_SCRIPTS:
        if not script.exists():
            rows.append(Row(group, f"{group} ({script.name})", None, "", note=f"{script.name} not present yet"))
            continue
        log(f"{group}: {script.name}{' --quick' if quick else ''}")
        cmd = [sys.executable, str(script)] + (["--quick"] if quick else [])
        env = {**os.environ, "CASEFLOW_BENCH_JSON": "1"}
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=plan.other_timeout, env=env,
                                  cwd=ROOT)
            took.append(f"{script.name}{' --quick' if quick else ''} {time.perf_counter() - t0:.0f} s")
        except subprocess.TimeoutExpired:
            rows.append(Row(group, f"{group} ({script.name})", None, "",
                            note=f"timed out after {plan.other_timeout} s"))
            continue
        found = [_row_from(group, obj) for obj in _json_objects(done.stdout)]
        found = [r for r in found if r is not None]
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append(Row(group, f"{group} ({script.name})", None, "",
                            note=f"exited {done.returncode}: {tail[:200]}"))
        rows.extend(found)
        if not found and done.returncode == 0:
            rows.append(Row(group, f"{group} ({script.name})", None, "",
                            note="no machine-readable rows; its output is below the table"))
            out = done.stdout.strip().splitlines()
            notes.append(f"### Output of {script.name}\n\n```\n" + "\n".join(out[:80])
                         + ("\n…" if len(out) > 80 else "") + "\n```")
    if took:
        notes.insert(0, "Time taken by the other scripts: " + ", ".join(took) + ".")
    return rows, notes


def _json_objects(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith(("{", "[")):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        for obj in value if isinstance(value, list) else [value]:
            if isinstance(obj, dict) and "name" in obj:
                out.append(obj)
    return out


def _row_from(group: str, obj: dict[str, Any]) -> Row | None:
    def num(key: str) -> float | None:
        v = obj.get(key)
        return float(v) if isinstance(v, (int, float)) else None
    value, base = num("value"), num("baseline_value")
    ratio = num("ratio")
    if ratio is None and value is not None and base:
        ratio = value / base
    return Row(str(obj.get("group", group)), str(obj["name"]), value, str(obj.get("unit", "")),
               str(obj.get("baseline", "")), base, ratio, num("goal"), str(obj.get("note", "")),
               obj.get("baseline_unit"))


# -- report ----------------------------------------------------------------------------------

def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), model)
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")))
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{model}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


def _loadavg() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def revision() -> str:
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             cwd=ROOT).stdout.strip()
    except OSError:
        rev = ""
    return rev or "unknown"


def table(rows: list[Row]) -> str:
    lines = ["| Measure | caseflow | Baseline (same run) | Baseline figure | Ratio | Goal | |",
             "|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        ratio = _ratio(r.ratio, r.goal) if r.ratio is not None else "—"
        goal = f">= {r.goal:g}x" if r.goal is not None else (f"<= {r.max_ratio:g}x" if r.max_ratio else "")
        verdict = r.verdict()
        extra = "; ".join(x for x in (verdict, r.note) if x)
        base = _fmt(r.baseline_value, r.baseline_unit or r.unit) if r.baseline_value is not None else "—"
        lines.append(f"| {r.name} | {_fmt(r.value, r.unit)} | {r.baseline or '—'} | {base} | {ratio} | "
                     f"{goal} | {extra} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="caseflow benchmarks (see bench/README.md)")
    ap.add_argument("--quick", action="store_true", help="fewer rounds and iterations; a few minutes")
    ap.add_argument("--only", default="advance,spiff,cli,others",
                    help="comma-separated subset of: advance, spiff, cli, others")
    ap.add_argument("--skip-pg", action="store_true", help="do not measure PostgreSQL")
    ap.add_argument("--spiff-python", type=Path, default=SPIFF_PYTHON,
                    help="python of the SpiffWorkflow venv (default /tmp/spiffvenv/bin/python, "
                         "or CASEFLOW_BENCH_SPIFF_PYTHON)")
    ap.add_argument("--no-spiff-setup", action="store_true", help="do not create the SpiffWorkflow venv if missing")
    ap.add_argument("--out", type=Path, help="also write the report (markdown) to this file")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    started = time.perf_counter()
    load_before = _loadavg()

    import logging
    logging.getLogger("transitions").setLevel(logging.WARNING)
    catalog = adv.load_catalog()
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="caseflow-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if "advance" in only:
            r, n = bench_advance(plan, catalog, tmp, args.skip_pg)
            rows += r
            notes += n
        if "spiff" in only:
            r, n = bench_spiff(plan, catalog, tmp, args.spiff_python, not args.no_spiff_setup)
            rows += r
            notes += n
        if "cli" in only:
            rows += bench_cli_rows(plan)
        if "others" in only:
            r, n = other_rows(plan, args.quick)
            rows += r
            notes += n

    import sqlalchemy
    elapsed = time.perf_counter() - started
    cmd = "python bench/run.py" + (" --quick" if args.quick else "")
    head = [f"# caseflow benchmarks ({'quick' if args.quick else 'full'} mode)", "",
            f"- date: {datetime.now(UTC).astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
            f"- machine: {machine()}",
            f"- command: `{cmd}` (took {elapsed:.0f} s)",
            f"- caseflow: {revision()}; Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
            f"SQLite {__import__('sqlite3').sqlite_version}",
            f"- load average (1 min) before / after: {load_before} / {_loadavg()} on {os.cpu_count()} cores "
            "(other work on the machine slows both sides of a ratio, not always equally)",
            "- throughput figures are medians over interleaved rounds; ratios are medians of per-round ratios "
            "(higher is better, except CLI latency)",
            ""]
    report = "\n".join(head) + "\n" + table(rows) + "\n\n" + "\n\n".join(notes) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
