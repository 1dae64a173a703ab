"""The hash-chained, append-only audit log: append and read.

Each row carries the sha256 of its own content and of the previous row of the
same case, so editing, deleting, inserting or reordering rows breaks the
chain; checkpoints (see `verify.py`) cover the deletion of a whole case's
history. Appends happen inside the caller's transaction, so a row exists iff
the change it describes was committed.

The hashed bytes: `canonical([row[k] for k in HASHED + present OPTIONAL])`
(JSON, sorted keys, no spaces, UTF-8); `case_version`, the version of the case
row after the commit the row belongs to, is the last of them (rows written
before revision 0005_evidence have none and hash without it). With an audit
key (`keys.py`) each row also stores `mac = HMAC-SHA256(key, hash)`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit.keys import audit_key, mac
from caseflow.errors import UsageError
from caseflow.jsontext import encoder
from caseflow.store.backend import backend_of
from caseflow.store.driver_text import SIGNOFF_KINDS
from caseflow.store.tables import attempts, audit, cases
from caseflow.values import ValueProblem, check_length, check_text, format_now

GENESIS = "0" * 64
HASHED = ("case_id", "seq", "workflow", "definition", "kind", "event", "from_state", "to_state",
          "actor", "roles", "changes", "note", "effective_at", "recorded_at", "prev_hash")
ATTEMPT_HASHED = ("case_id", "workflow", "event", "actor", "error", "reason", "effective_at",
                  "recorded_at", "prev_hash")
# Added by revision 0004: hashed after the others when present (rows written before it have none).
WHO = ("org", "os_user")
# Added by revision 0005_evidence, hashed last when present: the case version the row's commit produced.
OPTIONAL = WHO + ("case_version",)


@dataclass
class Entry:
    """One audit row before it is chained."""

    kind: str                  # open transition signoff reject escalation decision notify spawn timer unmask
    event: str
    from_state: str | None
    to_state: str | None
    actor: str
    roles: list[str] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


def real_stamp() -> str:
    """The real time a row is written, always recorded beside the (possibly simulated) effective time."""
    return format_now()


def canonical(value: Any) -> str:
    return _CANONICAL(value)


# json.dumps with these options, its encoder built once (dumps builds one per call)
_CANONICAL = encoder(sort_keys=True, separators=(",", ":"), default=str)


def row_hash(row: dict[str, Any], keys: tuple[str, ...] = HASHED, complete: bool = False) -> str:
    """`complete`: `keys` already names the OPTIONAL columns the row has (`chained` works them out once)."""
    if not complete:
        keys = keys + tuple(k for k in OPTIONAL if row.get(k) is not None)
    return hashlib.sha256(_CANONICAL([row[k] for k in keys] if complete else [row.get(k) for k in keys])
                          .encode("utf-8")).hexdigest()


# Built once: constructing a SELECT costs more than running it on an indexed table.
_HEAD = (sa.select(audit.c.seq, audit.c.hash).where(audit.c.case_id == sa.bindparam("case_id"))
         .order_by(audit.c.seq.desc()).limit(1))
_ROW_HEAD = sa.select(cases.c.audit_seq, cases.c.audit_hash).where(cases.c.id == sa.bindparam("case_id"))


INSERT = audit.insert()         # built once; bulk import batches these rows


def head(conn: Connection, case_id: str) -> tuple[int, str]:
    """(seq, hash) of the last row of a case, or (0, GENESIS): from the case row, which keeps it
    (`cases.audit_seq`/`audit_hash`), else from the log itself (a case row that is gone, or has none)."""
    row = conn.execute(_ROW_HEAD, {"case_id": case_id}).first()
    if row is not None and row.audit_seq is not None:
        return row.audit_seq, row.audit_hash
    last = conn.execute(_HEAD, {"case_id": case_id}).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


def chained(*, case_id: str, workflow: str, definition: str, entries: list[Entry], effective_at: str,
            after: tuple[int, str], version: int | None = None, recorded_at: str | None = None,
            org: str | None = None, os_user: str | None = None) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    """The audit rows of `entries`, chained after the head `after`; and the new head (seq, hash)."""
    recorded_at = recorded_at or real_stamp()
    for e in entries:
        if e.note:
            check_note(e.note)
    key = audit_key()
    seq, prev = after
    os_user = _clip(os_user)
    # The hashed text of a row is `row_hash`'s, byte for byte (tests/test_chain_text.py): the JSON list of
    # HASHED + the OPTIONAL present, i.e. "[" + the parts joined by "," + "]". The parts every row of the
    # call shares are encoded once, around the ones that differ.
    tail = "".join(["," + _part(v) for v in (org, os_user, version) if v is not None] + ["]"])
    head = "[" + _CANONICAL(case_id) + ","
    middle = "," + _CANONICAL(workflow) + "," + _CANONICAL(definition) + ","
    times = "," + _CANONICAL(effective_at) + "," + _CANONICAL(recorded_at) + ","
    sha256 = hashlib.sha256
    rows = []
    for e in entries:
        seq += 1
        roles, changes = _roles(tuple(e.roles)), _CANONICAL(e.changes)
        text = "".join((head, str(seq), middle, _part(e.kind), ",", _part(e.event), ",", _part(e.from_state), ",",
                        _part(e.to_state), ",", _part(e.actor), ",", _part(roles), ",", _part(changes), ",",
                        _part(e.note), times, _part(prev), tail))
        digest = sha256(text.encode("utf-8")).hexdigest()
        rows.append({"case_id": case_id, "seq": seq, "workflow": workflow, "definition": definition,
                     "kind": e.kind, "event": e.event, "from_state": e.from_state, "to_state": e.to_state,
                     "actor": e.actor, "roles": roles, "changes": changes, "note": e.note,
                     "effective_at": effective_at, "recorded_at": recorded_at, "prev_hash": prev, "org": org,
                     "os_user": os_user, "case_version": version, "hash": digest, "mac": mac(key, digest)})
        prev = digest
    return rows, (seq, prev)


_STRING = json.encoder.encode_basestring      # what the canonical encoder writes for a str (ensure_ascii off)


def _part(value: Any) -> str:
    """One hashed value as the canonical encoder writes it inside a list."""
    if value.__class__ is str:
        return _STRING(value)
    return "null" if value is None else _CANONICAL(value)


@lru_cache(maxsize=256)
def _roles(roles: tuple[str, ...]) -> str:
    """A row's roles as hashed: the sorted list (one or none, mostly), written once per set of roles."""
    return canonical(sorted(roles))


def append(conn: Connection, *, case_id: str, workflow: str, definition: str, entries: list[Entry],
           effective_at: str, version: int | None = None, recorded_at: str | None = None, org: str | None = None,
           os_user: str | None = None, after: tuple[int, str] | None = None) -> int:
    """Chain and insert entries for one case, and keep the new head on the case row; returns the last seq.

    `version` is the case row's version once the caller's transaction commits
    (unchanged for rows that record no change of the case row); every engine path
    passes it. Without it the rows prove no version. `after`: the head the caller
    read with its snapshot (else it is read here).
    """
    rows, new_head = chained(case_id=case_id, workflow=workflow, definition=definition, entries=entries,
                             effective_at=effective_at, after=after if after is not None else head(conn, case_id),
                             version=version, recorded_at=recorded_at, org=org, os_user=os_user)
    if rows:
        conn.execute(INSERT, rows)
        conn.execute(SET_HEAD, {"case_id": case_id, "audit_seq": new_head[0], "audit_hash": new_head[1]})
    return new_head[0]


SET_HEAD = cases.update().where(cases.c.id == sa.bindparam("case_id")).values(
    audit_seq=sa.bindparam("audit_seq"), audit_hash=sa.bindparam("audit_hash"))


def append_attempt(conn: Connection, *, case_id: str | None, workflow: str | None, event: str,
                   actor: str, error: str, reason: str, effective_at: str, recorded_at: str | None = None,
                   os_user: str | None = None) -> None:
    """Record a refused or denied attempt in its own chain; the case is not touched."""
    backend_of(conn).lock(conn, "attempts")
    last = conn.execute(sa.select(attempts.c.hash).order_by(attempts.c.id.desc()).limit(1)).scalar()
    row = {"case_id": _clip(case_id), "workflow": _clip(workflow), "event": _clip(event) or "",
           "actor": _clip(actor) or "", "error": error, "reason": _clip(reason, 2000) or "",
           "effective_at": effective_at, "recorded_at": recorded_at or real_stamp(), "prev_hash": last or GENESIS,
           "os_user": _clip(os_user)}
    row["hash"] = digest = row_hash(row, ATTEMPT_HASHED)
    row["mac"] = mac(audit_key(), digest)
    conn.execute(attempts.insert(), [row])


def check_note(note: str | None) -> None:
    """A note is text like any other: storable, and within the one size limit (values.STRING_MAX)."""
    if note:
        try:
            check_text(note, "--note")
            check_length(note, "--note")
        except ValueProblem as exc:
            raise UsageError(str(exc)) from None


def _clip(text: str | None, limit: int = 64) -> str | None:
    """Refused input can be anything; keep what fits the column, NUL escaped, encodable."""
    if text is None:
        return None
    safe = text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(safe) <= limit else safe[:limit - 1] + "…"


def current_version(conn: Connection, case_id: str) -> int:
    """The case row's version now, inside the caller's transaction (or the last logged one if the row is gone)."""
    version = conn.execute(sa.select(cases.c.version).where(cases.c.id == case_id)).scalar()
    if version is None:
        version = conn.execute(sa.select(audit.c.case_version).where(audit.c.case_id == case_id)
                               .order_by(audit.c.seq.desc()).limit(1)).scalar()
    return int(version or 0)


_SIGNOFF_ROWS = (sa.select(audit.c.kind, audit.c.actor, audit.c.roles, audit.c.effective_at, audit.c.case_version,
                           audit.c.changes)
                 .where(audit.c.case_id == sa.bindparam("case_id"),
                        audit.c.kind.in_(SIGNOFF_KINDS))
                 .order_by(audit.c.seq.desc()))


def proved_signoffs(conn: Connection, case_id: str, version: int) -> list[dict[str, Any]] | None:
    """The sign-offs the chain records for the case at `version` (the signatures since the last
    state change, or those a migration carried over); None when the rows predate `case_version` and cannot say."""
    return signoffs_of(conn.execute(_SIGNOFF_ROWS, {"case_id": case_id}), version)


def signoffs_of(rows: Iterable[Any], version: int) -> list[dict[str, Any]] | None:
    """`proved_signoffs` from the case's rows of SIGNOFF_KINDS, newest first (kind, actor, roles,
    effective_at, case_version, changes)."""
    found: list[dict[str, Any]] = []
    for r in rows:
        if r.case_version is None:
            return None
        if r.case_version > version:
            continue
        if r.kind == "migrate":
            moved = (json.loads(r.changes).get("@migration") or {}).get("signoffs") or [[], []]
            return [*moved[1], *reversed(found)]
        if r.kind != "signoff":
            break
        roles = json.loads(r.roles) or [None]
        found.append({"role": roles[0], "by": r.actor, "at": r.effective_at})
    return list(reversed(found))


def history(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(audit).where(audit.c.case_id == case_id).order_by(audit.c.seq))
    return [dict(r._mapping) for r in rows]
