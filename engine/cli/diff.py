"""`caseflow diff OLD NEW`: what changes between two versions of a workflow, and for whom."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from caseflow.cli.app import App, cli, pass_app
from caseflow.definition.model import Definition
from caseflow.errors import NotFound, UsageError


@cli.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--bound", type=click.IntRange(1, 30), default=8, show_default=True,
              help="Longest action sequence searched for a behavioural difference.")
@click.option("--json", "local_json", is_flag=True, help="Machine-readable output.")
@pass_app
def diff_cmd(app: App, old: str, new: str, bound: int, local_json: bool) -> None:
    """Compare two versions: structure, behaviour, changed guards, open cases affected.

    OLD and NEW are each a file, a workflow id (its current file) or a stored
    version's sha256 prefix (from the database). Prints the structural changes
    aligned by id, the shortest action sequence one version accepts and the other
    refuses (same data and people), a witness for each changed guard, and the
    open cases of OLD per state with the NEW state of the same id.

    \b
    Example:
      caseflow --as jiang.wen diff refund tests/verification/mutants/strict_refund.yaml
    """
    from caseflow.verification.diff import behavioural, guard_witnesses, structural
    a, b = _resolve(app, old), _resolve(app, new)
    if a.workflow != b.workflow:
        raise UsageError(f"diff: {old} is workflow {a.workflow!r} but {new} is {b.workflow!r}")
    org = app.catalog.org
    changes = structural(a, b)
    witnesses = guard_witnesses(a, b, org)
    difference = behavioural(a, b, org, bound)
    impact = _impact(app, a, b)
    names = {p.id: p.name for p in org.people.values()}
    payload = {
        "workflow": a.workflow, "old": a.sha256, "new": b.sha256, "bound": bound,
        "changes": [{"kind": c.kind, "id": c.id, "change": c.change, "old": c.old, "new": c.new} for c in changes],
        "guard_witnesses": witnesses,
        "behaviour": None if difference is None else {
            "accepted_by": difference.accepted_by, "action": difference.event,
            "moves": [{"kind": m.kind, "event": m.event, "actor": m.actor, "role": m.role, "set": m.sets,
                       "now": m.now.strftime("%Y-%m-%dT%H:%M:%SZ"), "state": m.state} for m in difference.moves]},
        "open_cases": impact,
    }
    if app.as_json or local_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
        return
    lines = [f"{a.workflow}: {a.sha256[:12]} → {b.sha256[:12]}"]
    lines += [c.line() for c in changes] or ["(no structural change)"]
    for w in witnesses:
        lines.append(f"guard of {w['transition']}: only {w['allowed_by']} allows data {w['data']}"
                     + (f" inputs {w['inputs']}" if w["inputs"] else ""))
    if difference is None:
        lines.append(f"behaviour: no difference within bound {bound}")
    else:
        refuser = "new" if difference.accepted_by == "old" else "old"
        lines.append(f"behaviour: {difference.accepted_by} accepts, {refuser} refuses the last action "
                     f"({difference.event}):")
        ref = a if difference.accepted_by == "old" else b
        lines += [f"    {i}. {m.describe(ref, names)}" for i, m in enumerate(difference.moves, 1)]
    if impact is None:
        lines.append("open cases: no database (pass --db to see the cases of OLD)")
    else:
        lines += [f"open cases in {r['state']}: {r['cases']} → {r['maps_to'] or '(no such state in NEW)'}"
                  for r in impact] or ["open cases: none on OLD"]
    click.echo("\n".join(lines))


def _resolve(app: App, ref: str) -> Definition:
    from caseflow.definition.compile import definition_from_text, load_definition
    path = Path(ref)
    if path.is_file():
        return load_definition(path, app.catalog.org, app.catalog.calendars, display=ref)
    if ref in app.catalog.current:
        return app.catalog.current[ref]
    if _has_db(app):
        import sqlalchemy as sa

        from caseflow.store.tables import definitions
        with app.engine.store.read() as conn:
            rows = conn.execute(sa.select(definitions.c.text, definitions.c.path, definitions.c.sha256)
                                .where(definitions.c.sha256.like(f"{ref}%"))).all()
        if len(rows) == 1:
            return definition_from_text(rows[0].text, app.catalog.org, app.catalog.calendars,
                                        f"{rows[0].path}@{rows[0].sha256[:12]}")
        if len(rows) > 1:
            raise UsageError(f"diff: {ref!r} matches {len(rows)} stored versions; give more of the sha256")
    raise NotFound("workflow file, id or stored version", ref)


def _has_db(app: App) -> bool:
    import os
    return bool(app.db or os.environ.get("CASEFLOW_DB") or Path("caseflow.db").exists())


def _impact(app: App, a: Definition, b: Definition) -> list[dict[str, Any]] | None:
    if not _has_db(app):
        return None
    import sqlalchemy as sa

    from caseflow.store.tables import cases
    with app.engine.store.read() as conn:
        rows = conn.execute(sa.select(cases.c.state, sa.func.count()).where(cases.c.definition == a.sha256)
                            .group_by(cases.c.state).order_by(cases.c.state)).all()
    return [{"state": state, "cases": n, "maps_to": state if state in b.states else None}
            for state, n in rows if not a.states[state].final]
