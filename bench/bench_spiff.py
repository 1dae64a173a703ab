"""SpiffWorkflow running the complaint process, persisted after every step.

Runs in its own virtual environment (SpiffWorkflow is not a caseflow
dependency; see bench/requirements.txt):

    python3 -m venv /tmp/spiffvenv
    /tmp/spiffvenv/bin/pip install -r bench/requirements.txt
    /tmp/spiffvenv/bin/python bench/bench_spiff.py --instances 20 --rounds 3

Each instance walks bench/complaint.bpmn along the complaint main path (the
same eight events, with the same form data, as bench/bench_advance.py walks
workflows/complaint.yaml). Persistence is the way SpiffWorkflow applications do
it: the whole workflow is serialized with BpmnWorkflowSerializer to JSON and
stored in SQLite, one row per instance, written when the instance is created and
updated after every completed task, one transaction each.

Two modes, both timed:
  memory  the application keeps the workflow object between steps and only
          serializes and saves after each one (the cheapest honest use);
  reload  each step is a separate request: read the row, deserialize, complete
          the task, serialize, save (what a CLI or a stateless web worker does,
          and what caseflow's Engine.advance does).

Prints one JSON object on stdout; bench/run.py reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

HERE = Path(__file__).resolve().parent

# Opening data and one (user task, form data) pair per caseflow event; keep in
# step with COMPLAINT / MAIN_PATH in bench_advance.py.
OPEN_DATA = {"form_no": "TS-2025-001", "customer_name": "张三", "phone": "13812345678",
             "address": "上海市浦东新区世纪大道100号", "channel": "phone", "category": "quality",
             "description": "卫生间防水层漏水", "severity": "normal", "received_at": "2025-03-03T10:00"}
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("received", {}),                                                               # assess
    ("assessing", {"valid": True, "responsible_dept": "engineering",                # accept
                   "assessment_note": "防水施工问题，投诉成立"}),
    ("investigating", {"root_cause": "防水层施工不规范", "responsible_person": "xu.peng",  # find_cause
                       "solution": "重做防水并赔偿瓷砖损失"}),
    ("proposing", {"approved_by": "zheng.hai"}),                                    # approve_solution
    ("implementing", {"customer_accepted": True, "customer_signature": "张三"}),      # customer_accepts
    ("assign_responsibility", {"responsibility_code": "B2"}),                        # assign_responsibility
    ("decide_penalty", {"penalty_decision": "罚款200元"}),                            # decide_penalty
    ("summarize", {"summary": "已重做防水，顾客满意"}),                                 # summarize
]


def load_spec(path: Path = HERE / "complaint.bpmn"):  # noqa: ANN201
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_file(str(path))
    return parser.get_spec("complaint")


def connect(db: Path, sync: str) -> sqlite3.Connection:
    """The same SQLite settings as caseflow's store: WAL, the given synchronous level."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA wal_autocheckpoint=4000")      # caseflow's WAL_CHECKPOINT_PAGES (this venv has no caseflow)
    conn.execute("CREATE TABLE IF NOT EXISTS instances (id INTEGER PRIMARY KEY, "
                 "state TEXT NOT NULL, updated_at REAL NOT NULL)")
    return conn


def _complete(wf: BpmnWorkflow, spec_name: str, data: dict[str, Any]) -> None:
    ready = [t for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.manual]
    task = next((t for t in ready if t.task_spec.name == spec_name), None)
    if task is None:
        raise SystemExit(f"bench_spiff: no ready task {spec_name!r}; ready: {[t.task_spec.name for t in ready]}")
    task.data.update(data)
    task.run()
    wf.do_engine_steps()


def _save(conn: sqlite3.Connection, iid: int, blob: str, insert: bool = False) -> None:
    conn.execute("BEGIN IMMEDIATE")
    if insert:
        conn.execute("INSERT INTO instances (id, state, updated_at) VALUES (?, ?, ?)", (iid, blob, time.time()))
    else:
        conn.execute("UPDATE instances SET state = ?, updated_at = ? WHERE id = ?", (blob, time.time(), iid))
    conn.execute("COMMIT")


def _load(conn: sqlite3.Connection, serializer: BpmnWorkflowSerializer, iid: int) -> BpmnWorkflow:
    row = conn.execute("SELECT state FROM instances WHERE id = ?", (iid,)).fetchone()
    return serializer.deserialize_json(row[0])


def run_instance(spec, serializer: BpmnWorkflowSerializer, conn: sqlite3.Connection,  # noqa: ANN001
                 iid: int, mode: str) -> int:
    """Create one instance and walk it to the end; returns the bytes of its final JSON."""
    wf = BpmnWorkflow(spec)
    wf.data.update(OPEN_DATA)
    wf.do_engine_steps()
    blob = serializer.serialize_json(wf)
    _save(conn, iid, blob, insert=True)
    for spec_name, data in STEPS:
        if mode == "reload":
            wf = _load(conn, serializer, iid)
        _complete(wf, spec_name, data)
        blob = serializer.serialize_json(wf)
        _save(conn, iid, blob)
    if not wf.is_completed():
        raise SystemExit("bench_spiff: the workflow did not reach its end event")
    return len(blob.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=20, help="instances per round and mode")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", default="memory,reload")
    ap.add_argument("--sync", default=os.environ.get("CASEFLOW_SQLITE_SYNC", "NORMAL"))
    ap.add_argument("--db", help="SQLite file (default: a fresh temporary file)")
    args = ap.parse_args(argv)

    import SpiffWorkflow
    spec = load_spec()
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    tmp = None
    if args.db:
        db = Path(args.db)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-spiff-")
        db = Path(tmp.name) / "spiff.db"
    conn = connect(db, args.sync)
    modes = [m for m in args.modes.split(",") if m]
    next_id = 1
    run_instance(spec, serializer, conn, 0, "memory")          # warm-up, not timed
    rounds: list[dict[str, Any]] = []
    size = 0
    for r in range(args.rounds):
        for mode in modes:
            t0 = time.perf_counter()
            for _ in range(args.instances):
                size = run_instance(spec, serializer, conn, next_id, mode)
                next_id += 1
            seconds = time.perf_counter() - t0
            rounds.append({"round": r, "mode": mode, "instances": args.instances,
                           "steps": args.instances * (len(STEPS) + 1), "seconds": seconds})
    conn.close()
    print(json.dumps({"spiffworkflow": getattr(SpiffWorkflow, "__version__", None) or _version(),
                      "python": sys.version.split()[0], "sync": args.sync,
                      "steps_per_instance": len(STEPS) + 1, "json_bytes": size, "rounds": rounds}))
    if tmp:
        tmp.cleanup()
    return 0


def _version() -> str:
    from importlib.metadata import version
    return version("SpiffWorkflow")


if __name__ == "__main__":
    sys.exit(main())
