"""Rebuild a case from its audit chain: state, data, sign-offs, version, clocks, counters, keys.

The case row, the timers, the decision counters and the unique-key table are
mutable; the chain is the evidence. Replaying the logged changes in order must
give exactly what those tables hold, so an edit of any of them, or a tail of
the log cut off (even one that did not change the state), shows as a
difference. What each row contributes:

- `open`, `transition`, `reject`, `signoff` rows carry the field changes
  (`changes[field] = [before, after]`; keys starting with `@` are event
  inputs, not fields);
- a `signoff` row adds the signature `{role: roles[0], by: actor, at:
  effective_at}`; `open`, `transition` and `reject` rows clear the sign-offs;
- a `migrate` row (a case moved to another definition version, or moved back)
  carries the field changes too, its `to_state`, and the sign-offs before and
  after in `changes["@migration"]["signoffs"]`;
- every row carries `case_version`, the version of the case row after its
  commit; the last row's must be the case row's;
- `sla` / `timer` rows with `changes.status = [before, after]` set the clock's
  status;
- a counting `decision` row (`changes.count` not null, with `period` and
  `counted_by`) is one increment of the shared counter
  (decision, data[counted_by], period).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.errors import CaseflowError
from caseflow.store.tables import case_keys, cases, decision_counts, definitions, timers

Found = tuple[str, int | None, str, str]          # where, seq, kind, message: a Problem in verify.py
FIELD_KINDS = frozenset({"open", "transition", "reject", "signoff", "migrate"})
CLEARS_SIGNOFFS = frozenset({"open", "transition", "reject"})
CLOCK_KINDS = frozenset({"sla", "timer"})


@dataclass
class Replayed:
    """What a case's chain proves about it."""

    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    signoffs: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None
    version_seq: int | None = None        # the row that last set `version`
    clocks: dict[str, str] = field(default_factory=dict)
    counted: Counter[tuple[str, str, str]] = field(default_factory=Counter)


def loads(text: Any) -> Any:
    """A stored JSON text parsed (None if it is not JSON); a value already parsed as it is."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def replay(rows: list[dict[str, Any]]) -> Replayed:
    """Rows of one case, ordered by seq, chain already verified."""
    out = Replayed()
    for r in rows:
        changes = loads(r["changes"])
        changes = changes if isinstance(changes, dict) else {}
        kind = r["kind"]
        if r["to_state"] is not None:
            out.state = r["to_state"]
        if kind in FIELD_KINDS:
            for k, v in changes.items():
                if k.startswith("@") or not (isinstance(v, list) and len(v) == 2):
                    continue
                if v[1] is None:
                    out.data.pop(k, None)
                else:
                    out.data[k] = v[1]
        if kind in CLEARS_SIGNOFFS:
            out.signoffs = []
        if kind == "signoff":
            roles = loads(r["roles"]) or [None]
            out.signoffs.append({"role": roles[0], "by": r["actor"], "at": r["effective_at"]})
        if kind == "migrate":
            moved = (changes.get("@migration") or {}).get("signoffs")
            out.signoffs = list(moved[1]) if isinstance(moved, list) and len(moved) == 2 else []
        if kind in CLOCK_KINDS and isinstance(changes.get("status"), list) and len(changes["status"]) == 2:
            out.clocks[r["event"]] = changes["status"][1]
        if kind == "decision" and changes.get("count") is not None and changes.get("period"):
            key = out.data.get(changes.get("counted_by") or "")
            if key is not None:
                out.counted[(r["event"], str(key), str(changes["period"]))] += 1
        if r.get("case_version") is not None:
            out.version, out.version_seq = r["case_version"], r["seq"]
    return out


def _same_data(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Fields whose values differ (a None value counts as absent, as the log records it)."""
    a = {k: v for k, v in a.items() if v is not None}
    b = {k: v for k, v in b.items() if v is not None}
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _signature(s: Any) -> tuple[Any, Any, Any]:
    return (s.get("role"), s.get("by"), s.get("at")) if isinstance(s, dict) else (None, None, None)


def compare_case(case_id: str, case: dict[str, Any], proved: Replayed) -> list[tuple[int | None, str, str]]:
    """(seq, kind, message) for every way the case row differs from what its chain proves.

    Messages name fields, never values: personal data must not reach a report.
    """
    out: list[tuple[int | None, str, str]] = []
    last = proved.version_seq
    if proved.version is not None and case["version"] != proved.version:
        if case["version"] > proved.version:
            out.append((last, "truncated",
                        f"case row is at version {case['version']} but its history ends at version "
                        f"{proved.version} (row {last}): the newest rows were deleted, or the case row was changed"))
        else:
            out.append((last, "version", f"case row is at version {case['version']} but its history proves "
                                          f"version {proved.version} (row {last}): the case row was changed"))
    data = loads(case["data"])
    fields = _same_data(data if isinstance(data, dict) else {}, proved.data)
    if fields:
        out.append((None, "data", f"case data differs from what its history records in {', '.join(fields)} "
                                  f"(the case row was edited, or rows were deleted)"))
    signoffs = loads(case["signoffs"])
    signoffs = signoffs if isinstance(signoffs, list) else [None]
    if [_signature(s) for s in signoffs] != [_signature(s) for s in proved.signoffs]:
        shown = ", ".join(f"{s.get('by')} as {s.get('role')}" for s in signoffs if isinstance(s, dict)) or "none"
        logged = ", ".join(f"{s['by']} as {s['role']}" for s in proved.signoffs) or "none"
        out.append((None, "signoffs", f"sign-offs in the case row ({shown}) are not the ones its history "
                                      f"records ({logged})"))
    return out


def compare_clocks(case_id: str, have: dict[str, str], proved: Replayed) -> list[tuple[int | None, str, str]]:
    out: list[tuple[int | None, str, str]] = []
    for name in sorted(set(have) | set(proved.clocks)):
        if name not in proved.clocks:
            out.append((None, "timer", f"clock {name} is in the timers table but its history never started it"))
        elif name not in have:
            out.append((None, "timer", f"clock {name} is missing from the timers table "
                                       f"(its history says {proved.clocks[name]})"))
        elif have[name] != proved.clocks[name]:
            out.append((None, "timer", f"clock {name} is {have[name]} in the timers table but its history "
                                       f"says {proved.clocks[name]}"))
    return out


@dataclass
class Tables:
    """The mutable tables, read once, to compare with what the chains prove."""

    cases: dict[str, dict[str, Any]]
    clocks: dict[str, dict[str, str]]
    keys: dict[tuple[str, str, str], str]
    counters: dict[tuple[str, str, str], int]

    @classmethod
    def read(cls, conn: Connection) -> Tables:
        rows = {r.id: dict(r._mapping) for r in conn.execute(sa.select(cases))}
        clocks: dict[str, dict[str, str]] = {}
        for t in conn.execute(sa.select(timers.c.case_id, timers.c.name, timers.c.status)):
            clocks.setdefault(t.case_id, {})[t.name] = t.status
        keys = {(k.workflow, k.field, k.value): k.case_id for k in conn.execute(sa.select(case_keys))}
        counters: dict[tuple[str, str, str], int] = {
            (c.decision, c.key, c.period): int(c._mapping["count"]) for c in conn.execute(sa.select(decision_counts))}
        return cls(rows, clocks, keys, counters)


class Definitions:
    """Definition versions for the unique-key check; None where one cannot be compiled."""

    def __init__(self, conn: Connection, catalog: Any) -> None:
        self.conn, self.catalog = conn, catalog
        self.cache: dict[str, Any] = {}

    def get(self, sha: str) -> Any:
        if self.catalog is None:
            return None
        if sha not in self.cache:
            def load(s: str) -> tuple[str, str]:
                row = self.conn.execute(sa.select(definitions.c.text, definitions.c.path)
                                        .where(definitions.c.sha256 == s)).one()
                return row.text, row.path
            try:
                self.cache[sha] = self.catalog.version(sha, load)
            except (CaseflowError, sa.exc.NoResultFound):
                self.cache[sha] = None
        return self.cache[sha]


def check_keys(tables: Tables, expected: dict[tuple[str, str, str], str], checked: set[str]) -> list[Found]:
    """Unique keys: values name the field only (they are often ID numbers)."""
    out: list[Found] = []
    for (workflow, name, value), case_id in sorted(expected.items(), key=lambda kv: (kv[1], kv[0][1])):
        holder = tables.keys.get((workflow, name, value))
        if holder != case_id:
            out.append((case_id, None, "keys", f"unique {name} of open case {case_id} is "
                                                      f"{'held by ' + holder if holder else 'missing from case_keys'}: "
                                                      f"a second case could take it"))
    for (workflow, name, value), case_id in sorted(tables.keys.items(), key=lambda kv: (kv[1], kv[0][1])):
        if case_id in checked and expected.get((workflow, name, value)) != case_id:
            out.append((case_id, None, "keys", f"case_keys holds a {name} for case {case_id} that its "
                                                      f"history does not give it (closed, or another value)"))
    return out


def check_counters(tables: Tables, counted: dict[tuple[str, str, str], int]) -> list[Found]:
    out: list[Found] = []
    for (decision, key, period) in sorted(set(counted) | set(tables.counters)):
        want, have = counted.get((decision, key, period), 0), tables.counters.get((decision, key, period), 0)
        if want != have:
            out.append(("decision_counts", None, "counters",
                               f"decision counter {decision} ({period}) for one key is {have} but the log "
                               f"records {want} counting decision(s): the counter was reset or edited"))
    return out


__all__ = ["Replayed", "replay", "loads", "compare_case", "compare_clocks", "Tables", "Definitions", "check_keys",
           "check_counters"]
