"""Run one caseflow CLI command, pausing just before its write until RACE_N processes are there.

A test harness for the 'two operators at the same moment' guarantee: without the
barrier, process start-up jitter (~300 ms) makes a real collision unlikely.
"""

import os
import sys
import time
from pathlib import Path

from caseflow.cli.main import main
from caseflow.runtime import engine as runtime

race_dir = Path(os.environ["RACE_DIR"])
n = int(os.environ["RACE_N"])
original = runtime.Engine.write


def write_after_barrier(self, change, now, note, kind="transition", conn=None):
    (race_dir / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 30
    while len(list(race_dir.glob("ready-*"))) < n and time.monotonic() < deadline:
        time.sleep(0.005)
    return original(self, change, now, note, kind, conn)


runtime.Engine.write = write_after_barrier
main(sys.argv[1:])
