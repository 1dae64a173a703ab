"""Prove the audit log is what was written: recompute every chain and checkpoint.

The triggers stop an honest mistake; they do not stop someone who drops them
first. So `verify` trusts nothing it reads: it recomputes each row's hash, each
`prev_hash` link and the seq numbering of every case, the separate chain of
refused attempts, and the chain of checkpoints, and compares every checkpointed
head with the rows that are there now. A hash chain alone cannot see a case
whose whole history was deleted, or a tail cut off: that is what checkpoints
(digests over all chain heads, each one chained to the one before) are for.
Every problem names the case and row and says what is wrong, in operator terms.

Beyond the chains, `verify` proves the whole case (see `replay.py`): the case row, its clocks, the
unique keys, the decision counters and the work queues (`queue_check.py`) must be what the chain
says; the definition texts must hash to their keys and the log's guards must be in place
(`integrity.py`). With an audit key every row's MAC is checked, so rows appended with recomputed
hashes are caught; with an anchor file every checkpoint kept outside the database must still be there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import integrity
from caseflow.audit.chain import ATTEMPT_HASHED, GENESIS, canonical, row_hash
from caseflow.audit.keys import audit_key, key_id, mac, mac_ok
from caseflow.audit.queue_check import QueuesOf, check_queues
from caseflow.audit.replay import Definitions, Tables, check_counters, check_keys, compare_case, compare_clocks, replay
from caseflow.store.database import Store
from caseflow.store.tables import attempts, audit, checkpoints
from caseflow.values import format_datetime

ATTEMPTS_KEY = "*attempts"      # the attempts chain's head inside a checkpoint; never a case id


@dataclass(frozen=True)
class Problem:
    """One thing that is wrong; `where` is a case id, 'attempts' or 'checkpoints'."""

    where: str
    seq: int | None
    kind: str          # edited missing inserted reordered rewritten deleted truncated state orphan
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    cases: int = 0
    rows: int = 0
    attempts: int = 0
    checkpoints: int = 0
    last_checkpoint: dict[str, Any] | None = None
    keyed: str | None = None           # key id when MACs were checked
    anchored: int = 0                  # checkpoints checked against the anchor file

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "cases": self.cases, "rows": self.rows, "attempts": self.attempts,
                "checkpoints": self.checkpoints, "last_checkpoint": self.last_checkpoint,
                "keyed": self.keyed, "anchored": self.anchored,
                "problems": [{"where": p.where, "seq": p.seq, "kind": p.kind, "message": p.message}
                             for p in self.problems]}


# -- one case's chain -----------------------------------------------------------------------

def _original_seq(row: dict[str, Any], limit: int) -> int | None:
    """The seq a row's stored hash was computed with, if it was only renumbered."""
    for s in range(1, limit + 1):
        if s != row["seq"] and row_hash({**row, "seq": s}) == row["hash"]:
            return s
    return None


def check_case(case_id: str, rows: list[dict[str, Any]]) -> list[Problem]:
    """Seq numbering, each row's own hash and each link, for rows ordered by seq."""
    out: list[Problem] = []

    def bad(seq: int | None, kind: str, message: str) -> None:
        out.append(Problem(case_id, seq, kind, message))

    limit = max(r["seq"] for r in rows) + len(rows)
    ok = [row_hash(r) == r["hash"] for r in rows]
    intact: dict[int, bool] = {}
    for r, fine in zip(rows, ok):
        intact[r["seq"]] = intact.get(r["seq"], True) and fine
    originals = {r["seq"]: _original_seq(r, limit) for r, fine in zip(rows, ok) if not fine}
    moved = {s: o for s, o in originals.items() if o is not None}
    _report_moves(moved, bad)
    for r, fine in zip(rows, ok):
        if not fine and r["seq"] not in moved:
            bad(r["seq"], "edited", f"row {r['seq']} edited (hash mismatch)")
    if rows[0]["seq"] != 1:
        first = rows[0]["seq"]
        bad(1, "missing", f"row 1 missing (history starts at seq {first})" if first == 2
            else f"rows 1–{first - 1} missing (history starts at seq {first})")
    by_hash = {r["hash"]: r["seq"] for r in rows}
    for i, r in enumerate(rows):
        prev = rows[i - 1] if i else None
        if prev is not None and r["seq"] == prev["seq"]:
            bad(r["seq"], "inserted", f"row {r['seq']} appears twice (a row was inserted with a used seq)")
            continue
        if prev is not None and r["seq"] != prev["seq"] + 1:
            gap = r["seq"] - prev["seq"] - 1
            what = f"row {prev['seq'] + 1}" if gap == 1 else f"rows {prev['seq'] + 1}–{r['seq'] - 1}"
            bad(prev["seq"] + 1, "missing", f"{what} missing (seq gap {prev['seq']}→{r['seq']})")
            continue
        expected = prev["hash"] if prev is not None else GENESIS
        if r["prev_hash"] == expected or (prev is None and r["seq"] != 1):
            continue
        _report_link(r, prev, rows[i - 2] if i >= 2 else None, intact, moved, by_hash, bad)
    return out


def _report_moves(moved: dict[int, int], bad: Any) -> None:
    """Rows whose hash fits another seq: swapped among themselves, or shifted by an insert."""
    if not moved:
        return
    if set(moved) == set(moved.values()):
        seqs = sorted(moved)
        detail = ", ".join(f"row {s} was row {moved[s]}" for s in seqs)
        bad(seqs[0], "reordered", f"rows reordered ({detail})")
        return
    for s, o in sorted(moved.items()):
        why = "a row was inserted before it" if s > o else "a row before it was deleted"
        bad(s, "reordered", f"row {s} was row {o} (renumbered: {why})")


def _report_link(r: dict[str, Any], prev: dict[str, Any] | None, before: dict[str, Any] | None,
                 intact: dict[int, bool], moved: dict[int, int], by_hash: dict[str, int], bad: Any) -> None:
    """A row that does not link to the row before it: name the row that is out of place."""
    if prev is None:
        if r["seq"] not in moved:
            bad(1, "inserted", "row 1 does not start the chain (its prev_hash is not the genesis hash)")
    elif r["prev_hash"] == (before["hash"] if before else GENESIS) and prev["seq"] not in moved:
        to = f"row {before['seq']}" if before else "the start of the chain"
        bad(prev["seq"], "inserted", f"row {prev['seq']} inserted (row {r['seq']} links past it to {to})")
    elif moved and (r["seq"] in moved or prev["seq"] in moved or r["prev_hash"] in by_hash):
        return                                      # explained by the reordering already reported
    elif not intact[r["seq"]]:
        return                                      # the row itself is reported as edited
    elif intact[prev["seq"]]:
        bad(prev["seq"], "rewritten", f"row {prev['seq']} rewritten (its hash was recomputed, but row "
                                      f"{r['seq']} still links to the original), or row {r['seq']} forged")


def check_state(case_id: str, state: str, rows: list[dict[str, Any]]) -> list[Problem]:
    """The case row must agree with its history: the last recorded state is the current one."""
    last = next((r for r in reversed(rows) if r["to_state"] is not None), None)
    if last is None:
        return [Problem(case_id, None, "state", "no audit row records the case's state")]
    if last["to_state"] != state:
        return [Problem(case_id, last["seq"], "state",
                        f"case is in state {state!r} but its history ends in {last['to_state']!r} "
                        f"(row {last['seq']}): the case row or the log's tail was changed")]
    return []


# -- checkpoints ----------------------------------------------------------------------------

def checkpoint_digest(prev: str, created_at: str, actor: str, heads: dict[str, list[Any]]) -> str:
    return hashlib.sha256(canonical([prev, created_at, actor, heads]).encode("utf-8")).hexdigest()


def _heads(conn: Connection) -> dict[str, list[Any]]:
    last = sa.select(audit.c.case_id, sa.func.max(audit.c.seq).label("seq")).group_by(audit.c.case_id).subquery()
    q = sa.select(audit.c.case_id, audit.c.seq, audit.c.hash).join(
        last, sa.and_(audit.c.case_id == last.c.case_id, audit.c.seq == last.c.seq))
    heads: dict[str, list[Any]] = {r.case_id: [r.seq, r.hash] for r in conn.execute(q)}
    top = conn.execute(sa.select(attempts.c.id, attempts.c.hash).order_by(attempts.c.id.desc()).limit(1)).first()
    if top is not None:
        heads[ATTEMPTS_KEY] = [top.id, top.hash]
    return heads


def record_checkpoint(store: Store, actor: str, now: datetime | None = None) -> dict[str, Any]:
    """Write a digest over every chain head, chained to the previous checkpoint.

    Kept even when the log does not verify: earlier checkpoints still expose
    what happened before, and refusing would leave new history uncovered.
    """
    created_at = format_datetime(now or datetime.now(UTC))
    with store.write() as conn:
        store.backend.lock(conn, "checkpoints")
        prev = conn.execute(sa.select(checkpoints.c.digest).order_by(checkpoints.c.id.desc()).limit(1)).scalar()
        heads = _heads(conn)
        digest = checkpoint_digest(prev or GENESIS, created_at, actor, heads)
        signed = mac(audit_key(), digest)
        key = conn.execute(checkpoints.insert().values(created_at=created_at, actor=actor, heads=canonical(heads),
                                                       digest=digest, mac=signed)).inserted_primary_key
        assert key is not None                    # an INSERT of one row always has its key
        cid = key[0]
    cases_n = sum(1 for k in heads if k != ATTEMPTS_KEY)
    return {"id": cid, "digest": digest, "created_at": created_at, "actor": actor, "cases": cases_n,
            "prev": prev or GENESIS, "mac": signed}


def _check_checkpoints(conn: Connection, report: VerifyReport,
                       key: bytes | None = None) -> dict[str, dict[int, tuple[int, str]]]:
    """Recompute the checkpoint chain; return every head ever checkpointed, per chain."""
    expected: dict[str, dict[int, tuple[int, str]]] = {}
    prev, last_id = GENESIS, 0
    for c in conn.execute(sa.select(checkpoints).order_by(checkpoints.c.id)):
        report.checkpoints += 1
        try:
            heads = json.loads(c.heads)
        except ValueError:
            heads = None
        if not isinstance(heads, dict) or checkpoint_digest(prev, c.created_at, c.actor, heads) != c.digest:
            hint = f" (checkpoint id gap {last_id}→{c.id})" if c.id != last_id + 1 else ""
            report.problems.append(Problem("checkpoints", c.id, "edited",
                                           f"checkpoint {c.id} does not verify: it was edited, or an earlier "
                                           f"checkpoint was deleted{hint}"))
        elif key is not None and not mac_ok(key, c.digest, c.mac):
            report.problems.append(Problem("checkpoints", c.id, "unkeyed",
                                           f"checkpoint {c.id} has no valid MAC under the audit key "
                                           f"(written by someone without the key)"))
        for chain_key, (seq, h) in (heads or {}).items():
            expected.setdefault(chain_key, {})[seq] = (c.id, h)
        prev, last_id = c.digest, c.id
        report.last_checkpoint = {"id": c.id, "digest": c.digest, "created_at": c.created_at, "actor": c.actor}
    return expected


def check_against_checkpoints(case_id: str, rows: list[dict[str, Any]],
                              heads: dict[int, tuple[int, str]]) -> list[Problem]:
    """Every head a checkpoint saw must still be there, with the same hash."""
    if not rows:
        last = max(cid for cid, _ in heads.values())
        return [Problem(case_id, None, "deleted", f"case {case_id} history deleted since checkpoint {last}")]
    have = {r["seq"]: r["hash"] for r in rows}
    top = max(have)
    out = []
    beyond = [(seq, cid) for seq, (cid, _) in heads.items() if seq > top]
    if beyond:
        seq, cid = max(beyond)
        gone = f"rows {top + 1}–{seq}" if seq > top + 1 else f"row {seq}"
        out.append(Problem(case_id, top + 1, "truncated",
                           f"history truncated since checkpoint {cid}: {gone} missing"))
    for seq, (cid, h) in sorted(heads.items()):
        if seq in have and have[seq] != h:
            out.append(Problem(case_id, seq, "rewritten",
                               f"row {seq} differs from checkpoint {cid} (history up to it was rewritten)"))
    return out


# -- the whole database ---------------------------------------------------------------------

def _case_rows(conn: Connection) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """All audit rows grouped by case, streamed: memory holds one case at a time."""
    q = sa.select(audit).order_by(audit.c.case_id, audit.c.seq, audit.c.id)
    current: str | None = None
    rows: list[dict[str, Any]] = []
    for r in conn.execute(q.execution_options(yield_per=2000)):
        m = dict(r._mapping)
        if m["case_id"] != current and rows:
            yield current, rows      # type: ignore[misc]
            rows = []
        current = m["case_id"]
        rows.append(m)
    if rows:
        yield current, rows          # type: ignore[misc]


def _check_attempts(conn: Connection, report: VerifyReport, head: dict[int, tuple[int, str]],
                    key: bytes | None = None) -> None:
    prev: dict[str, Any] | None = None
    seen: dict[int, str] = {}
    for r in conn.execute(sa.select(attempts).order_by(attempts.c.id).execution_options(yield_per=2000)):
        m = dict(r._mapping)
        report.attempts += 1
        seen[m["id"]] = m["hash"]
        if row_hash(m, ATTEMPT_HASHED) != m["hash"]:
            report.problems.append(Problem("attempts", m["id"], "edited", f"attempt {m['id']} edited (hash mismatch)"))
        elif m["prev_hash"] != (prev["hash"] if prev else GENESIS):
            after = f"after attempt {prev['id']}" if prev else "at the start"
            report.problems.append(Problem("attempts", m["id"], "missing",
                                           f"attempt {m['id']} does not link to the one before it: "
                                           f"attempts deleted {after}, or attempt {m['id']} forged"))
        elif key is not None and not mac_ok(key, m["hash"], m["mac"]):
            report.problems.append(Problem("attempts", m["id"], "unkeyed",
                                           f"attempt {m['id']} has no valid MAC under the audit key "
                                           f"(appended by someone without the key)"))
        prev = m
    for seq, (cid, h) in sorted(head.items()):
        if seen.get(seq) != h:
            report.problems.append(Problem("attempts", seq, "truncated" if seq not in seen else "rewritten",
                                           f"attempt {seq} seen by checkpoint {cid} is "
                                           f"{'gone' if seq not in seen else 'changed'}"))


def _check_macs(case_id: str, rows: list[dict[str, Any]], key: bytes) -> list[Problem]:
    bad = [r["seq"] for r in rows if not mac_ok(key, r["hash"], r.get("mac"))]
    if not bad:
        return []
    more = " …" if len(bad) > 8 else ""
    which = f"row {bad[0]}" if len(bad) == 1 else f"rows {', '.join(map(str, bad[:8]))}{more}"
    return [Problem(case_id, bad[0], "unkeyed", f"{which} carry no valid MAC under the audit key (appended or "
                                                f"rewritten by someone without the key)")]


def verify(store: Store, expect: str | None = None, catalog: Any = None, anchor: str | None = None,
           key: bytes | None = None, queues: QueuesOf | None = None) -> VerifyReport:
    """Recompute every chain, the checkpoints, and every mutable table against its history.

    `expect` is a checkpoint digest kept outside the database, `anchor` a file
    of them (`audit checkpoint --anchor`): the defence against someone who
    rewrites the log *and* every checkpoint consistently, or deletes
    checkpoints. `key` (default: the configured audit key) checks every MAC.
    `catalog` compiles old definition versions for the unique-key check and, with `queues`
    (`runtime.queue.queues`), for the check of the work queues."""
    report = VerifyReport()
    key = key if key is not None else audit_key()
    report.keyed = key_id(key) if key is not None else None
    anchor_file = integrity.anchor_path(anchor)
    anchored = integrity.read_anchor(anchor_file) if anchor_file else []
    with store.consistent() as conn:
        expected = _check_checkpoints(conn, report, key)
        if expect and not conn.execute(sa.select(checkpoints.c.id)
                                       .where(checkpoints.c.digest == expect.strip().lower())).first():
            report.problems.append(Problem("checkpoints", None, "missing",
                                           f"no checkpoint has digest {expect.strip()[:16]}…: the checkpoint "
                                           f"chain was rewritten, or the digest is from another database"))
        if anchor_file:
            report.anchored = len(anchored)
            report.problems += [Problem(f.where, f.seq, f.kind, f.message)
                                for f in integrity.check_anchor(conn, anchored)]
        for f in integrity.check_guards(conn) + integrity.check_definitions(conn) + integrity.check_orgs(conn):
            report.problems.append(Problem(f.where, f.seq, f.kind, f.message))
        tables = Tables.read(conn)
        defs = Definitions(conn, catalog)
        keys_expected: dict[tuple[str, str, str], str] = {}
        keys_checked: set[str] = set()
        counted: dict[tuple[str, str, str], int] = {}
        all_intact = True
        seen: set[str] = set()
        for case_id, rows in _case_rows(conn):
            seen.add(case_id)
            report.rows += len(rows)
            found = check_case(case_id, rows)
            if case_id in expected:
                found += check_against_checkpoints(case_id, rows, expected[case_id])
            case = tables.cases.get(case_id)
            if case is not None:
                found += check_state(case_id, case["state"], rows)
            else:
                found.append(Problem(case_id, None, "orphan",
                                     f"audit history of case {case_id} has no case row (case row deleted)"))
            if key is not None:
                found += _check_macs(case_id, rows, key)
            if found:
                all_intact = False
            elif case is not None:        # a chain that verifies: now the case must be what it proves
                proved = replay(rows)
                found += [Problem(case_id, seq, kind, msg) for seq, kind, msg in compare_case(case_id, case, proved)]
                found += [Problem(case_id, seq, kind, msg)
                          for seq, kind, msg in compare_clocks(case_id, tables.clocks.get(case_id, {}), proved)]
                for k, n in proved.counted.items():
                    counted[k] = counted.get(k, 0) + n
                d = defs.get(case["definition"])
                if d is not None and proved.state in d.states:
                    keys_checked.add(case_id)
                    if not d.states[proved.state].final:
                        for name in d.unique:
                            if proved.data.get(name) is not None:
                                keys_expected[(d.workflow, name, str(proved.data[name]))] = case_id
            if case is not None:          # the chain head kept on the case row (after what the chain proves)
                found += [Problem(case_id, *f) for f in integrity.head_problems(case, rows)]
            report.problems += found
        report.cases = len(seen | set(tables.cases))
        for case_id in sorted(set(tables.cases) - seen):
            if case_id not in expected:
                report.problems.append(Problem(case_id, None, "deleted", f"case {case_id} has no audit history"))
        for case_id in sorted(set(expected) - seen - {ATTEMPTS_KEY}):
            report.problems += check_against_checkpoints(case_id, [], expected[case_id])
        if catalog is not None:
            report.problems += [Problem(*f) for f in check_keys(tables, keys_expected, keys_checked)]
        if queues is not None:
            report.problems += [Problem(*f) for f in check_queues(conn, tables.cases, defs, queues, keys_checked)]
        if all_intact:
            report.problems += [Problem(*f) for f in check_counters(tables, counted)]
        _check_attempts(conn, report, expected.get(ATTEMPTS_KEY, {}), key)
    return report


__all__ = ["Problem", "VerifyReport", "verify", "record_checkpoint", "check_case", "checkpoint_digest"]
