"""XES (IEEE 1849-2016) export and read-back, written by caseflow itself.

One trace per case (`concept:name` = case id); one event per activity:
`concept:name` (`open`, the transition's event, `sign:<role>`, `reject:<role>`),
`time:timestamp` (UTC, ms, strictly increasing per case), `org:resource`,
`org:role`, `lifecycle:transition` = complete. Everything else is in the
declared `caseflow` extension: `caseflow:seq` (the log's order), the row's
stored fields (`caseflow:kind`, `caseflow:effective_at`, `caseflow:changes`,
…, `caseflow:definition`), `caseflow:hash`/`caseflow:prev_hash` in an
unmasked export, and `caseflow:bookkeeping`: the SLA/timer/notification/…
rows that followed the activity, as a JSON list of records, so they are
there to verify but are not activities that swamp a process map.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from caseflow.audit.export_log import RECORD_FIELDS, EventLog, Record, record_from

XES_NS = "http://www.xes-standard.org/"
CASEFLOW_URI = "urn:caseflow:xes:audit:1"        # docs/audit.md defines the extension's keys
EXTENSIONS = (("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
              ("Time", "time", "http://www.xes-standard.org/time.xesext"),
              ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
              ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
              ("caseflow", "caseflow", CASEFLOW_URI))
BOOKKEEPING = "caseflow:bookkeeping"


def _attr(parent: ET.Element, key: str, value: Any) -> None:
    if value is None:
        return
    tag = "int" if isinstance(value, int) and not isinstance(value, bool) else "string"
    ET.SubElement(parent, tag, key=key, value=str(value))


def _date(parent: ET.Element, key: str, value: str) -> None:
    ET.SubElement(parent, "date", key=key, value=value)


def _fields(parent: ET.Element, r: Record) -> None:
    for k in RECORD_FIELDS:
        _attr(parent, f"caseflow:{k}", r.fields.get(k))


def _bookkeeping(rows: list[Record]) -> str:
    return json.dumps([r.fields for r in rows], ensure_ascii=False, sort_keys=True)


def write(log: EventLog) -> bytes:
    root = ET.Element("log", {"xes.version": "1849-2016", "xes.features": "", "xmlns": XES_NS})
    for name, prefix, uri in EXTENSIONS:
        ET.SubElement(root, "extension", name=name, prefix=prefix, uri=uri)
    trace_globals = ET.SubElement(root, "global", scope="trace")
    _attr(trace_globals, "concept:name", "__INVALID__")
    event_globals = ET.SubElement(root, "global", scope="event")
    _attr(event_globals, "concept:name", "__INVALID__")
    _date(event_globals, "time:timestamp", "1970-01-01T00:00:00.000Z")
    _attr(event_globals, "lifecycle:transition", "complete")
    ET.SubElement(root, "classifier", name="Activity", keys="concept:name")
    _attr(root, "concept:name", "caseflow audit log")
    _attr(root, "caseflow:masked", "true" if log.masked else "false")
    for t in log.traces:
        trace = ET.SubElement(root, "trace")
        _attr(trace, "concept:name", t.case_id)
        _attr(trace, "caseflow:workflow", t.workflow)
        _attr(trace, "caseflow:definition", t.definition)
        _attr(trace, "caseflow:parent_case", t.parent_case)
        _attr(trace, "caseflow:order", t.order)
        _attr(trace, "caseflow:state", t.state)
        if t.leading():
            _attr(trace, BOOKKEEPING, _bookkeeping(t.leading()))
        for step, after in t.steps():
            ev = ET.SubElement(trace, "event")
            _attr(ev, "concept:name", step.activity)
            _attr(ev, "caseflow:label_zh", step.label_zh)
            _date(ev, "time:timestamp", step.timestamp)
            _attr(ev, "org:resource", step.fields["actor"])
            _attr(ev, "org:role", step.role)
            _attr(ev, "lifecycle:transition", "complete")
            _fields(ev, step)
            if after:
                _attr(ev, BOOKKEEPING, _bookkeeping(after))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def read_records(data: bytes) -> list[dict[str, Any]]:
    """Every record in an XES file caseflow wrote (activities and bookkeeping), for `export verify`."""
    root = ET.fromstring(data)
    ns = {"x": XES_NS} if root.tag.startswith("{") else {}
    q = (lambda tag: f"x:{tag}") if ns else (lambda tag: tag)
    out: list[dict[str, Any]] = []
    for trace in root.findall(q("trace"), ns):
        for child in trace:
            tag = child.tag.split("}")[-1]
            if tag != "event" and child.get("key") == BOOKKEEPING:
                out += [record_from(x) for x in json.loads(child.get("value") or "[]")]
            if tag != "event":
                continue
            fields: dict[str, Any] = {}
            after: list[dict[str, Any]] = []
            for a in child:
                key = a.get("key") or ""
                if key == BOOKKEEPING:
                    after = [record_from(x) for x in json.loads(a.get("value") or "[]")]
                elif key.startswith("caseflow:") and key[9:] in RECORD_FIELDS:
                    fields[key[9:]] = a.get("value")
            out.append(record_from(fields))
            out += after
    return out


__all__ = ["write", "read_records", "CASEFLOW_URI"]
