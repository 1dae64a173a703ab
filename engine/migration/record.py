"""Who may migrate, and the record of every dry run, run and revert (the `migration_runs` table).

A run row keeps the plan's full text and sha256, who ran it (and the OS
account), when, the verdict counts and every case's verdict, so an auditor
can see what was decided without the plan file. Moving or reverting cases needs
a role with `can_migrate` in org.yaml; a dry run needs `can_migrate` or
`can_audit`; a refusal is recorded in the attempts log like any other.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from caseflow.definition.evaluate import stamp
from caseflow.definition.model import Person
from caseflow.errors import NotFound, NotPermitted
from caseflow.store.tables import migration_runs

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine


def require(engine: Engine, person: Person, what: str, *, audit_may: bool = False) -> list[str]:
    """The person's roles carrying can_migrate (or can_audit, for reads); NotPermitted otherwise."""
    org = engine.catalog.org
    flags = ("can_migrate", "can_audit") if audit_may else ("can_migrate",)
    roles = sorted(r for r in person.roles if r in org.roles and any(getattr(org.roles[r], f) for f in flags))
    if not roles:
        held = ", ".join(org.role_label(r) for r in sorted(person.roles)) or "none"
        need = " or ".join(flags)
        raise NotPermitted(person.id, what, f"no role with {need} in the org chart in force (holds: {held})")
    return roles


def start(conn: sa.Connection, engine: Engine, *, kind: str, workflow: str, from_sha: str, to_sha: str,
          plan_sha: str, plan_text: str, actor: str, reverts: int | None = None) -> int:
    key = conn.execute(migration_runs.insert().values(
        kind=kind, workflow=workflow, from_sha=from_sha, to_sha=to_sha, plan_sha=plan_sha, plan_text=plan_text,
        reverts=reverts, actor=actor, os_user=engine.os_user, started_at=stamp(engine.now()))).inserted_primary_key
    assert key is not None
    return int(key[0])


def finish(engine: Engine, run_id: int, counts: dict[str, int], verdicts: list[dict[str, Any]]) -> None:
    with engine.store.write() as conn:
        conn.execute(migration_runs.update().where(migration_runs.c.id == run_id).values(
            finished_at=stamp(engine.now()), counts=json.dumps(counts, sort_keys=True),
            verdicts=json.dumps(verdicts, ensure_ascii=False, sort_keys=True)))


def _row(r: Any, full: bool) -> dict[str, Any]:
    out = {"id": r.id, "kind": r.kind, "workflow": r.workflow, "from": r.from_sha, "to": r.to_sha,
           "plan": r.plan_sha, "reverts": r.reverts, "actor": r.actor, "os_user": r.os_user,
           "started_at": r.started_at, "finished_at": r.finished_at, "counts": json.loads(r.counts)}
    if full:
        out["plan_text"] = r.plan_text
        out["verdicts"] = json.loads(r.verdicts)
    return out


def runs(engine: Engine, workflow: str | None = None) -> list[dict[str, Any]]:
    q = sa.select(migration_runs).order_by(migration_runs.c.id)
    if workflow:
        q = q.where(migration_runs.c.workflow == workflow)
    with engine.store.read() as conn:
        return [_row(r, False) for r in conn.execute(q)]


def run(engine: Engine, run_id: int) -> dict[str, Any]:
    with engine.store.read() as conn:
        r = conn.execute(sa.select(migration_runs).where(migration_runs.c.id == run_id)).first()
    if r is None:
        raise NotFound("migration run", str(run_id))
    return _row(r, True)


__all__ = ["require", "start", "finish", "runs", "run"]
