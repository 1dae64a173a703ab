"""`caseflow verify` beside `caseflow validate`: time and peak memory per shipped workflow.

Each measurement is a fresh process (`caseflow … --fresh`, so no recorded result
is reused; a throw-away CASEFLOW_CACHE_DIR) and reports wall time, CPU time
(user + sys of the child: the machine is shared, so wall time is noisy) and peak
resident memory. Goal: all shipped workflows together under 30 s and 500 MB.

    python bench/bench_verify.py [--bound N] [--only refund,complaint]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ["refund", "complaint", "self_review", "followup_visit", "member_card"]


def caseflow() -> list[str]:
    beside = Path(sys.executable).with_name("caseflow")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "caseflow.cli.main"]


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """(wall s, cpu s, peak MB, exit code) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(caseflow() + args, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bound", type=int, default=12)
    parser.add_argument("--only", default=",".join(SHIPPED))
    opts = parser.parse_args()
    env = {**os.environ, "CASEFLOW_CACHE_DIR": tempfile.mkdtemp(prefix="bench-verify-")}
    print(f"| workflow | validate --no-verify wall / cpu | verify --bound {opts.bound} wall / cpu "
          "| peak MB (so far) | exit |")
    print("|---|---|---|---|---|")
    total_wall = total_cpu = 0.0
    peak = 0.0
    for wf in opts.only.split(","):
        path = f"workflows/{wf}.yaml"
        vw, vc, _, _ = measure(["--workflows", "workflows", "validate", "--no-verify", path], env)
        w, c, mb, rc = measure(["--workflows", "workflows", "verify", "--fresh", "--bound", str(opts.bound), path],
                               env)
        total_wall, total_cpu, peak = total_wall + w, total_cpu + c, max(peak, mb)
        print(f"| {wf} | {vw:.2f} s / {vc:.2f} s | {w:.1f} s / {c:.1f} s | {mb:.0f} | {rc} |", flush=True)
    print(f"| **all** | | **{total_wall:.1f} s / {total_cpu:.1f} s** | {peak:.0f} (max) | |")
    print(f"\ngoal: all together < 30 s and < 500 MB; load average now {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores (wall time grows with it, CPU time does not)")


if __name__ == "__main__":
    main()
