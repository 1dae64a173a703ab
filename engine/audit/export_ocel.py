"""OCEL 2.0 export (JSON and SQLite) and read-back, written by caseflow itself.

Objects: every case (type = its workflow id, e.g. `refund`), every person
who acted (`person`), every order a case is about (`order`), and one
bookkeeping object per case and clock/table/role (`sla`, `timer`,
`notification`, `escalation`, `decision`, `fire`, `spawn`, `unmask`).
Object-to-object: a linked case `spawned_by` its parent, a case `for_order`
its order, a bookkeeping object `of_case` its case.

Events: one per audit row, id `<case>:<seq>`. An activity (`open`, the
transition's event, `sign:<role>`, `reject:<role>`) relates to its case (`case`),
its person (`resource`) and, when opened, its order (`order`); a bookkeeping
row relates to its bookkeeping object only, so a case's flattened log holds
the process steps and nothing else. Every event carries the row's stored
fields as attributes (`seq`, `kind`, … and, unmasked, `prev_hash`/`hash`).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from caseflow.audit.export_log import INT_FIELDS, RECORD_FIELDS, EventLog, Record, record_from

BOOKKEEPING_TYPES = {"sla": "sla", "sla_warning": "sla", "timer": "timer", "notify": "notification",
                     "escalation": "escalation", "decision": "decision", "fire": "fire", "spawn": "spawn",
                     "unmask": "unmask"}
EPOCH = "1970-01-01T00:00:00.000Z"


def _type_of(r: Record) -> tuple[str, str | None]:
    """(event type, bookkeeping object type or None)."""
    if r.activity is not None:
        return r.activity, None
    kind = str(r.fields["kind"])
    return kind, BOOKKEEPING_TYPES.get(kind, kind)


def _value_type(name: str) -> str:
    return "integer" if name in INT_FIELDS else "string"


def build(log: EventLog) -> dict[str, Any]:
    """The OCEL 2.0 JSON document."""
    objects: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []

    def obj(oid: str, otype: str, **attrs: Any) -> dict[str, Any]:
        if oid not in objects:
            objects[oid] = {"id": oid, "type": otype,
                            "attributes": [{"name": k, "time": EPOCH, "value": v} for k, v in attrs.items()
                                           if v is not None],
                            "relationships": []}
        return objects[oid]

    def link(source: str, target: str, qualifier: str) -> None:
        rels = objects[source]["relationships"]
        if not any(x["objectId"] == target and x["qualifier"] == qualifier for x in rels):
            rels.append({"objectId": target, "qualifier": qualifier})

    for t in log.traces:
        obj(t.case_id, t.workflow, workflow=t.workflow, definition=t.definition, state=t.state)
        if t.order:
            obj(f"order:{t.order}", "order", order_no=t.order)
            link(t.case_id, f"order:{t.order}", "for_order")
    for t in log.traces:
        if t.parent_case:
            if t.parent_case not in objects:
                obj(t.parent_case, "case")
            link(t.case_id, t.parent_case, "spawned_by")
        for r in t.records:
            etype, btype = _type_of(r)
            rels: list[dict[str, str]] = []
            if btype is None:
                rels.append({"objectId": t.case_id, "qualifier": "case"})
                actor = str(r.fields["actor"])
                if actor in log.people:
                    obj(actor, "person", name=log.people[actor])
                    rels.append({"objectId": actor, "qualifier": "resource"})
                if r.activity == "open" and t.order:
                    rels.append({"objectId": f"order:{t.order}", "qualifier": "order"})
            else:
                oid = f"{t.case_id}/{btype}/{r.fields['event']}"
                obj(oid, btype, case_id=t.case_id, name=r.fields["event"])
                link(oid, t.case_id, "of_case")
                rels.append({"objectId": oid, "qualifier": etype})
            attrs = [{"name": k, "value": r.fields.get(k)} for k in RECORD_FIELDS if r.fields.get(k) is not None]
            attrs += [{"name": "label_zh", "value": r.label_zh}]
            if r.role:
                attrs.append({"name": "role", "value": r.role})
            events.append({"id": f"{t.case_id}:{r.seq}", "type": etype, "time": r.timestamp,
                           "attributes": attrs, "relationships": rels})
    names = RECORD_FIELDS + ("label_zh", "role")
    event_types = sorted({e["type"] for e in events})
    object_types: dict[str, list[str]] = {}
    for o in objects.values():
        seen = object_types.setdefault(o["type"], [])
        seen += [a["name"] for a in o["attributes"] if a["name"] not in seen]
    return {
        "objectTypes": [{"name": n, "attributes": [{"name": a, "type": "string"} for a in attrs]}
                        for n, attrs in sorted(object_types.items())],
        "eventTypes": [{"name": n, "attributes": [{"name": a, "type": _value_type(a)} for a in names]}
                       for n in event_types],
        "objects": list(objects.values()),
        "events": events,
    }


def write_json(log: EventLog) -> str:
    return json.dumps(build(log), ensure_ascii=False, indent=1) + "\n"


def _table_names(types: list[str]) -> dict[str, str]:
    """OCEL SQLite names a table per type: letters and digits only, unique."""
    out: dict[str, str] = {}
    for name in types:
        base = re.sub(r"[^0-9A-Za-z]", "", name) or "type"
        candidate, n = base, 1
        while candidate in out.values():
            n += 1
            candidate = f"{base}{n}"
        out[name] = candidate
    return out


def write_sqlite(log: EventLog, path: Path) -> None:
    doc = build(log)
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path)
    try:
        with db:
            _fill(db, doc)
    finally:
        db.close()


def _fill(db: sqlite3.Connection, doc: dict[str, Any]) -> None:
    q = _quote
    db.execute("CREATE TABLE event (ocel_id TEXT PRIMARY KEY, ocel_type TEXT)")
    db.execute("CREATE TABLE object (ocel_id TEXT PRIMARY KEY, ocel_type TEXT)")
    db.execute("CREATE TABLE event_map_type (ocel_type TEXT PRIMARY KEY, ocel_type_map TEXT)")
    db.execute("CREATE TABLE object_map_type (ocel_type TEXT PRIMARY KEY, ocel_type_map TEXT)")
    db.execute("CREATE TABLE event_object (ocel_event_id TEXT, ocel_object_id TEXT, ocel_qualifier TEXT)")
    db.execute("CREATE TABLE object_object (ocel_source_id TEXT, ocel_target_id TEXT, ocel_qualifier TEXT)")
    emap = _table_names([t["name"] for t in doc["eventTypes"]])
    for et in doc["eventTypes"]:
        cols = [a["name"] for a in et["attributes"]]
        db.execute("INSERT INTO event_map_type VALUES (?, ?)", (et["name"], emap[et["name"]]))
        decl = ", ".join(f"{q(c)} {'INTEGER' if _value_type(c) == 'integer' else 'TEXT'}" for c in cols)
        db.execute(f"CREATE TABLE {q('event_' + emap[et['name']])} (ocel_id TEXT PRIMARY KEY, ocel_time TEXT, "
                   f"{decl})")
    omap = _table_names([t["name"] for t in doc["objectTypes"]])
    for ot in doc["objectTypes"]:
        cols = [a["name"] for a in ot["attributes"]]
        db.execute("INSERT INTO object_map_type VALUES (?, ?)", (ot["name"], omap[ot["name"]]))
        decl = "".join(f", {q(c)} TEXT" for c in cols)
        db.execute(f"CREATE TABLE {q('object_' + omap[ot['name']])} (ocel_id TEXT, ocel_time TEXT, "
                   f"ocel_changed_field TEXT{decl})")
    for e in doc["events"]:
        db.execute("INSERT INTO event VALUES (?, ?)", (e["id"], e["type"]))
        values = {a["name"]: a["value"] for a in e["attributes"]}
        cols = ["ocel_id", "ocel_time", *values]
        db.execute(f"INSERT INTO {q('event_' + emap[e['type']])} ({', '.join(q(c) for c in cols)}) "
                   f"VALUES ({', '.join('?' for _ in cols)})", [e["id"], e["time"], *values.values()])
        db.executemany("INSERT INTO event_object VALUES (?, ?, ?)",
                       [(e["id"], r["objectId"], r["qualifier"]) for r in e["relationships"]])
    for o in doc["objects"]:
        db.execute("INSERT INTO object VALUES (?, ?)", (o["id"], o["type"]))
        values = {a["name"]: a["value"] for a in o["attributes"]}
        cols = ["ocel_id", "ocel_time", *values]
        db.execute(f"INSERT INTO {q('object_' + omap[o['type']])} ({', '.join(q(c) for c in cols)}) "
                   f"VALUES ({', '.join('?' for _ in cols)})", [o["id"], EPOCH, *values.values()])
        db.executemany("INSERT INTO object_object VALUES (?, ?, ?)",
                       [(o["id"], r["objectId"], r["qualifier"]) for r in o["relationships"]])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_json_records(text: str) -> list[dict[str, Any]]:
    doc = json.loads(text)
    return [record_from({a["name"]: a["value"] for a in e.get("attributes", [])}) for e in doc["events"]]


def read_sqlite_records(path: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        out = []
        for m in db.execute("SELECT ocel_type_map FROM event_map_type").fetchall():
            for row in db.execute(f"SELECT * FROM {_quote('event_' + m[0])}"):
                out.append(record_from({k: row[k] for k in row.keys()}))
        return out
    finally:
        db.close()


__all__ = ["build", "write_json", "write_sqlite", "read_json_records", "read_sqlite_records"]
