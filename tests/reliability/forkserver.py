"""A pre-imported interpreter that forks one CLI process per request.

A new `python` costs about a second here (SQLAlchemy, Alembic, click, CEL), which
would make a few hundred colliding or killed processes take minutes. This server
imports everything once, holds no database connection, and forks a child per
command: each child is a real, separate process (own pid, own connections, can
be SIGKILLed) running `driver.run(argv)` — the real CLI — with its own
environment and its stdout/stderr in files.

Protocol, one JSON object per line on stdin → one per line on stdout:
  {"argv": [...], "env": {...}, "out": PATH, "err": PATH}  →  {"pid": PID}
  {"wait": [PID...], "timeout": S}                          →  {"rcs": {PID: rc or null}}
A negative rc is the signal that ended the child (-9 after SIGKILL).
"""

from __future__ import annotations

import json
import os
import sys
import time

import caseflow.catalog  # noqa: E401,F401,E402
from tests.reliability import driver  # noqa: F401  (imports the engine, SQLAlchemy, click…)


def child(req: dict) -> None:
    os.setsid()
    out = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.environ.clear()
    os.environ.update(req["env"])
    code = 70
    try:
        code = driver.run(req["argv"])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    done: dict[int, int] = {}
    for line in sys.stdin:
        req = json.loads(line)
        if "argv" in req:
            pid = os.fork()
            if pid == 0:
                child(req)
            reply: dict = {"pid": pid}
        else:
            deadline = time.monotonic() + req["timeout"]
            rcs: dict[int, int | None] = {}
            for pid in req["wait"]:
                while pid not in done:
                    got, status = os.waitpid(pid, os.WNOHANG)
                    if got:
                        done[pid] = os.waitstatus_to_exitcode(status)
                    elif time.monotonic() > deadline:
                        break
                    else:
                        time.sleep(0.005)
                rcs[pid] = done.get(pid)
            reply = {"rcs": rcs}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
