"""`caseflow export verify FILE`: recompute the hash chains from an export alone.

The file's format is recognised from its first bytes (XES, OCEL JSON, OCEL
SQLite, CSV). Every record (activities and bookkeeping alike) is grouped by
case and ordered by `seq`; each row's hash is recomputed from its stored
fields (the bytes docs/audit.md documents), and each `prev_hash` must be the
hash of the row before it (the zero hash for row 1). No database is needed.
A masked export carries no hashes, so it cannot be verified: that is
reported as such, not as intact.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from caseflow.audit import export_csv, export_ocel, export_xes
from caseflow.audit.chain import GENESIS, row_hash
from caseflow.errors import ExportUnreadable


@dataclass(frozen=True)
class ExportProblem:
    case_id: str
    seq: int
    kind: str            # edited relinked missing duplicate
    message: str

    def __str__(self) -> str:
        return f"{self.case_id} row {self.seq}: {self.message}"


@dataclass
class ExportReport:
    path: str
    format: str
    cases: int = 0
    rows: int = 0
    hashed: int = 0
    problems: list[ExportProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.hashed == self.rows and self.rows > 0

    @property
    def first(self) -> ExportProblem | None:
        return min(self.problems, key=lambda p: (p.case_id, p.seq)) if self.problems else None

    def as_dict(self) -> dict[str, Any]:
        first = self.first
        return {"ok": self.ok, "file": self.path, "format": self.format, "cases": self.cases, "rows": self.rows,
                "hashed": self.hashed, "first_broken": {"case_id": first.case_id, "seq": first.seq} if first else None,
                "problems": [{"case_id": p.case_id, "seq": p.seq, "kind": p.kind, "message": p.message}
                             for p in self.problems]}


def detect(path: Path) -> str:
    try:
        head = path.open("rb").read(64)
    except OSError as exc:
        raise ExportUnreadable(str(path), exc.strerror or "cannot be read") from None
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"SQLite format 3\x00"):
        return "ocel-sqlite"
    if text.startswith(b"<"):
        return "xes"
    if text.startswith(b"{"):
        return "ocel"
    return "csv"


def read(path: Path) -> tuple[str, list[dict[str, Any]]]:
    fmt = detect(path)
    try:
        if fmt == "ocel-sqlite":
            return fmt, export_ocel.read_sqlite_records(path)
        data = path.read_bytes()
        if fmt == "xes":
            return fmt, export_xes.read_records(data)
        text = data.decode("utf-8")
        if fmt == "ocel":
            return fmt, export_ocel.read_json_records(text)
        records = export_csv.read_records(text)
    except (ValueError, KeyError, TypeError, OSError) as exc:   # malformed XML/JSON/CSV, missing columns
        raise ExportUnreadable(str(path), f"not a caseflow {fmt} export ({type(exc).__name__}: {exc})") from None
    except (sqlite3.DatabaseError, ElementTree.ParseError) as exc:
        raise ExportUnreadable(str(path), f"not a caseflow {fmt} export ({exc})") from None
    if records and any(r.get("case_id") is None or r.get("seq") is None for r in records):
        raise ExportUnreadable(str(path), "rows without case_id and seq: not a caseflow export")
    return fmt, records


def verify_records(records: list[dict[str, Any]], path: str = "", fmt: str = "") -> ExportReport:
    report = ExportReport(path, fmt, rows=len(records))
    by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_case[str(r["case_id"])].append(r)
    report.cases = len(by_case)
    for case_id in sorted(by_case):
        rows = sorted(by_case[case_id], key=lambda r: int(r["seq"]))
        before: dict[str, Any] | None = None
        for r in rows:
            seq = int(r["seq"])
            if r.get("hash") is None:
                before = None
                continue
            report.hashed += 1
            if row_hash(r) != r["hash"]:
                report.problems.append(ExportProblem(case_id, seq, "edited",
                                                     "its content does not match its hash (edited)"))
            if before is not None and int(before["seq"]) == seq:
                report.problems.append(ExportProblem(case_id, seq, "duplicate", "appears twice"))
            elif before is not None and int(before["seq"]) + 1 != seq:
                report.problems.append(ExportProblem(case_id, seq, "missing",
                                                     f"rows {int(before['seq']) + 1}–{seq - 1} are missing"))
            elif before is not None and r.get("prev_hash") != before["hash"]:
                report.problems.append(ExportProblem(case_id, seq, "relinked",
                                                     f"its prev_hash is not row {seq - 1}'s hash"))
            elif seq == 1 and r.get("prev_hash") != GENESIS:
                report.problems.append(ExportProblem(case_id, seq, "relinked", "row 1 does not start the chain"))
            before = r
    return report


def verify_file(path: Path) -> ExportReport:
    fmt, records = read(path)
    return verify_records(records, str(path), fmt)


__all__ = ["verify_file", "verify_records", "read", "detect", "ExportReport", "ExportProblem"]
