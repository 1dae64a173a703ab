"""Undoing a migration run the way it was done: each case moved back in its own transaction.

The cases are the ones whose last `migrate` row belongs to the run. A case goes
back to exactly what that row says it was — state, data, sign-offs, version —
with its clocks recomputed by replaying its history before the migration under
the old version (`verdict.judge` on an identity plan), and a `migrate` row of
event `revert`. A case advanced under the new version since the run stays there:
its new history may mean nothing under the old one, and guessing would rewrite it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from caseflow.errors import MigrationIncomplete, NotFound, UsageError
from caseflow.migration import record
from caseflow.migration.move import Move
from caseflow.migration.plan import Plan
from caseflow.migration.run import Report, _move, case_histories
from caseflow.migration.verdict import Verdict, judge
from caseflow.store.tables import audit, cases, migration_runs

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine


def identity(d: Any) -> Plan:
    """A plan from a version to itself: what replaying a case under its own version gives."""
    states = {s.id: s.id for s in d.states.values() if not s.final}
    return Plan(d.workflow, d, d, states, "keep", "recompute", {}, None, "stay", "stay", "", "",
                same_fields=frozenset(d.fields))


def revert(engine: Engine, run_id: int, user: str | None, note: str | None = None) -> Report:
    with engine._recording("migrate revert", None, user):
        person = engine.person(user)
        roles = record.require(engine, person, f"revert migration run {run_id}")
        now = engine.now()
        with engine.store.consistent() as conn:
            run = conn.execute(sa.select(migration_runs).where(migration_runs.c.id == run_id)).first()
            if run is None:
                raise NotFound("migration run", str(run_id))
            if run.kind != "run":
                raise UsageError(f"migration run {run_id} is a {run.kind}; only a run moved cases")
            old, new = engine.definition_of(conn, run.from_sha), engine.definition_of(conn, run.to_sha)
            marks = _moved_by(conn, run.workflow, run_id)
            ids = sa.select(cases.c.id).where(cases.c.id.in_(sorted(marks)))
            histories = list(case_histories(conn, ids))
        report = Report(None, "revert")
        with engine.store.write() as conn:
            report.run = record.start(conn, engine, kind="revert", workflow=run.workflow, from_sha=run.to_sha,
                                      to_sha=run.from_sha, plan_sha=run.plan_sha, plan_text=run.plan_text,
                                      actor=person.id, reverts=run_id)
        back = identity(old)
        for case, rows, timers in histories:
            seq = marks[case["id"]]
            idx = next(i for i, r in enumerate(rows) if r["seq"] == seq)
            mark = rows[idx]
            verdict = Verdict(case["id"], case["version"], case["state"], "migratable", mark["from_state"],
                              mark["from_state"])
            report.verdicts.append(verdict)
            why = _cannot(case, rows, idx, new.sha256)
            if why:
                verdict.verdict, verdict.reason = "forbidden", why
                report.failed[case["id"]] = why
                continue
            changes = json.loads(mark["changes"])
            data = json.loads(case["data"])
            before = dict(data)
            for k, v in changes.items():
                if not k.startswith("@") and isinstance(v, list) and len(v) == 2:
                    if v[0] is None:
                        before.pop(k, None)
                    else:
                        before[k] = v[0]
            meta = changes.get("@migration") or {}
            sigs = (meta.get("signoffs") or [[], []])
            prior = {**case, "state": mark["from_state"], "data": json.dumps(before), "signoffs": json.dumps(sigs[0])}
            clocks = judge(back, engine, prior, rows[:idx], timers, now).clocks
            m = Move(case["id"], case["version"], new, old, case["state"], mark["from_state"], data, before,
                     json.loads(case["signoffs"]), list(sigs[0]), clocks, "recompute",
                     {"from": new.sha256, "to": old.sha256, "plan": run.plan_sha, "run": report.run,
                      "reverts": run_id, "state_map": {case["state"]: mark["from_state"]}}, event="revert")
            _move(engine, m, person.id, roles, now, note, report, None, wait=True)
        record.finish(engine, report.run, report.counts(),
                      [v.as_dict() | {"outcome": report.outcome(v.case_id)} for v in report.verdicts])
        if report.lost:
            raise MigrationIncomplete(report.run, report.lost, "moving back")
    return report


def _moved_by(conn: sa.Connection, workflow: str, run_id: int) -> dict[str, int]:
    """case id → seq of the `migrate` row run `run_id` wrote for it."""
    out: dict[str, int] = {}
    q = sa.select(audit.c.case_id, audit.c.seq, audit.c.changes).where(
        audit.c.workflow == workflow, audit.c.kind == "migrate", audit.c.event == "migrate")
    for r in conn.execute(q):
        meta = json.loads(r.changes).get("@migration") or {}
        if meta.get("run") == run_id:
            out[r.case_id] = r.seq
    return out


def _cannot(case: dict[str, Any], rows: list[dict[str, Any]], idx: int, new_sha: str) -> str | None:
    """Why a case the run moved cannot be moved back now, or None."""
    if case["definition"] != new_sha:
        return "no longer on the version the run moved it to (reverted or migrated again)"
    later = [r for r in rows[idx + 1:] if r["kind"] in ("transition", "signoff", "reject", "migrate")]
    if later or case["version"] != rows[idx]["case_version"]:
        first = later[0] if later else None
        what = f"row {first['seq']} {first['event']} by {first['actor']}" if first else "a later change"
        return f"advanced under the new version since the migration ({what}); it stays there"
    return None


__all__ = ["revert", "identity"]
