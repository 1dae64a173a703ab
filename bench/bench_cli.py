"""CLI latency: `caseflow show` and `caseflow advance` as new processes.

Each command is a fresh process (interpreter start, imports, loading the
workflow catalog, opening the database, one Engine call, printing), the way an
operator or a script runs it. The baseline, measured in the same run and
interleaved with it, is `python -c "import sqlalchemy"` with the same
interpreter: the least any SQLAlchemy-based CLI pays. `python -c pass` is
recorded too, for scale. Caches are warm (one untimed run of each first):
.pyc files exist and the files are in the OS page cache, as on a machine where
caseflow is used every day.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from caseflow.catalog import SHIPPED, Catalog
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_advance import COMPLAINT, MAIN_PATH, TO_PROPOSING, walk  # noqa: E402


def caseflow_command() -> list[str]:
    beside = Path(sys.executable).with_name("caseflow")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("caseflow")
    if found:
        return [found]
    return [sys.executable, "-c", "from caseflow.cli.main import cli; cli()"]


def _env() -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE dropped: the warm-up run writes the .pyc files, as an installed caseflow has them
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEFLOW_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["CASEFLOW_SQLITE_SYNC"] = "NORMAL"
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[:300]}")
    return seconds


def measure(n: int, with_pass: bool = True) -> dict[str, Any]:
    """Median wall time (ms) of each command over n interleaved runs (+ `python -c pass` if with_pass)."""
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'cli.db'}"
        store = Store(url)
        store.migrate()
        engine = Engine(store, Catalog.load(SHIPPED))
        cid = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
        walk(engine, MAIN_PATH[:TO_PROPOSING], cid)
        store.engine.dispose()

        base = caseflow_command() + ["--db", url, "--workflows", str(SHIPPED), "--as", "zheng.hai"]
        commands = {
            "show": lambda i: base + ["show", cid],
            "advance": lambda i: base + ["advance", cid, "revise", "--set", f"solution=方案 {i}"],
            "import sqlalchemy": lambda i: [sys.executable, "-c", "import sqlalchemy"],
        }
        if with_pass:
            commands["python -c pass"] = lambda i: [sys.executable, "-c", "pass"]
        env, cwd = _env(), Path(tmp)
        _run(commands["show"](-1), env, cwd)           # warm .pyc files and the page cache
        if with_pass:
            _run(commands["advance"](-1), env, cwd)
        times: dict[str, list[float]] = {k: [] for k in commands}
        names = list(commands)
        for i in range(n):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                times[name].append(_run(commands[name](i), env, cwd))
    return {"n": n, "command": " ".join(caseflow_command()),
            "median_ms": {k: statistics.median(v) * 1e3 for k, v in times.items()},
            "min_ms": {k: min(v) * 1e3 for k, v in times.items()}}


if __name__ == "__main__":
    import json
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5), ensure_ascii=False, indent=2))
