"""Event-log CSV export and read-back: one line per activity, the columns mining tools map directly.

`case_id`, `activity`, `timestamp` (UTC, ms, strictly increasing per case),
`resource`, `role`, `lifecycle`, `label_zh`, then the row's stored fields
(`seq` …; `prev_hash`/`hash` only in an unmasked export) and `bookkeeping`:
the SLA/timer/notification/… rows after the activity as a JSON list of
records. An empty cell is an absent value (None).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from caseflow.audit.export_log import HASH_FIELDS, RECORD_FIELDS, EventLog, record_from

LEAD = ("case_id", "activity", "timestamp", "resource", "role", "lifecycle", "label_zh")


def columns(masked: bool) -> tuple[str, ...]:
    stored = tuple(k for k in RECORD_FIELDS if k != "case_id" and not (masked and k in HASH_FIELDS))
    return LEAD + stored + ("bookkeeping",)


def write(log: EventLog, bom: bool = False) -> str:
    cols = columns(log.masked)
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(cols)
    for t in log.traces:
        lead = t.leading()
        for i, (step, after) in enumerate(t.steps()):
            books = (lead if i == 0 else []) + after
            row = {"case_id": t.case_id, "activity": step.activity, "timestamp": step.timestamp,
                   "resource": step.fields["actor"], "role": step.role, "lifecycle": "complete",
                   "label_zh": step.label_zh, **{k: v for k, v in step.fields.items() if k != "case_id"},
                   "bookkeeping": json.dumps([r.fields for r in books], ensure_ascii=False, sort_keys=True)
                   if books else None}
            out.writerow(["" if row.get(c) is None else str(row[c]) for c in cols])
    return ("\ufeff" if bom else "") + buf.getvalue()


def read_records(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))):
        fields = {k: (v if v != "" else None) for k, v in row.items() if k in RECORD_FIELDS}
        out.append(record_from(fields))
        if row.get("bookkeeping"):
            out += [record_from(x) for x in json.loads(row["bookkeeping"])]
    return out


__all__ = ["write", "read_records", "columns", "LEAD"]
