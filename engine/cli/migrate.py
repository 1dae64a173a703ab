"""`caseflow migrate …`: move open cases to a new version of their workflow. Parse, call the library, print."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from caseflow.cli.app import App, cli, note_option, pass_app
from caseflow.cli.audit import force_option, output_file
from caseflow.errors import NotFound, UsageError
from caseflow.terminal import escape


def _echo(text: str) -> None:
    """Human output, each line escaped (a plan or a refusal may carry control characters)."""
    click.echo("\n".join(escape(line) for line in text.split("\n")))


@cli.group()
def migrate() -> None:
    """Move open cases to a new version of their workflow, checked by replaying each case's history.

    A plan (YAML, reviewable) says which version's cases move to which file,
    where each state goes, what happens to sign-offs and clocks, and how data
    changes (CEL). A dry run judges every case by replaying its logged history
    under the new version; a run moves the cases that may, each in its own
    transaction, and `revert` moves them back. See docs/migration.md.

    \b
    Example:
      caseflow --as zhang.wei migrate plan refund --to tests/migration/review/refund.yaml -o plan.yaml
      caseflow --as zhang.wei migrate run plan.yaml --dry-run
    """


def _old_version(app: App, workflow: str, given: str | None) -> Any:
    """The stored version whose open cases move: --from (a sha256 prefix), else the one with most open cases."""
    import sqlalchemy as sa

    from caseflow.store.tables import cases, definitions
    engine = app.engine
    d = app.catalog.get(workflow)
    finals = [s.id for s in d.states.values() if s.final]
    with engine.store.read() as conn:
        if given:
            shas = conn.execute(sa.select(definitions.c.sha256).where(
                definitions.c.workflow == workflow, definitions.c.sha256.like(f"{given}%"))).scalars().all()
            if len(shas) > 1:
                raise UsageError(f"--from {given!r} matches {len(shas)} stored versions of {workflow}; "
                                 f"give more of the sha256")
            if not shas:
                raise NotFound(f"stored version of {workflow}", given)
            sha = shas[0]
        else:
            found = conn.execute(sa.select(cases.c.definition, sa.func.count()).where(
                cases.c.workflow == workflow, cases.c.state.not_in(finals)).group_by(cases.c.definition)
                .order_by(sa.func.count().desc(), cases.c.definition)).first()
            if found is None:
                raise NotFound(f"open case of {workflow} (nothing to migrate)", workflow)
            sha = found[0]
        old = engine.definition_of(conn, sha)
        counts = dict(conn.execute(sa.select(cases.c.state, sa.func.count()).where(
            cases.c.definition == sha, cases.c.state.not_in(finals)).group_by(cases.c.state)).all())
    return old, counts


def _new_version(app: App, path: Path, display: str | None = None) -> Any:
    from caseflow.definition.compile import load_definition
    return load_definition(path, app.catalog.org, app.catalog.calendars, display=display or str(path))


def _load(app: App, plan_file: str) -> Any:
    from caseflow.migration.plan import load_plan

    def old_of(workflow: str, sha: str) -> Any:
        import sqlalchemy as sa

        from caseflow.store.tables import definitions
        with app.engine.store.read() as conn:
            found = conn.execute(sa.select(definitions.c.sha256).where(
                definitions.c.sha256 == sha, definitions.c.workflow == workflow)).first()
            return app.engine.definition_of(conn, sha) if found else None

    if not Path(plan_file).is_file():
        raise NotFound("migration plan file", plan_file)
    return load_plan(plan_file, old_of, lambda p: _new_version(app, p))


@migrate.command("plan")
@click.argument("workflow")
@click.option("--to", "to_file", required=True, type=click.Path(dir_okay=False),
              help="The new version's workflow file.")
@click.option("--from", "from_sha", metavar="SHA", help="The stored version whose cases move (a sha256 prefix; "
              "default: the version most open cases run on).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the plan here (default: stdout).")
@force_option
@pass_app
def plan_cmd(app: App, workflow: str, to_file: str, from_sha: str | None, output: str | None, force: bool) -> None:
    """Write a reviewable migration plan from the version WORKFLOW's open cases run on to FILE.

    The plan maps each state to the state of the same id (null where the new
    version has none), keeps sign-offs, recomputes clocks, copies fields of
    the same name and lists the fields only one version has. Edit it, then
    check it with `caseflow migrate run PLAN --dry-run`.

    \b
    Example:
      caseflow --as zhang.wei migrate plan refund --to tests/migration/review/refund.yaml -o plan.yaml
    """
    from caseflow.migration import record
    from caseflow.migration.plan import plan_text
    with app.engine.attempting("migrate plan", None, app.user, workflow):     # a refusal is recorded
        record.require(app.engine, app.engine.person(app.user), f"plan a migration of {workflow}", audit_may=True)
    output_file(app, output, force)
    if not Path(to_file).is_file():
        raise NotFound("workflow file", to_file)
    old, counts = _old_version(app, workflow, from_sha)
    new = _new_version(app, Path(to_file), to_file)
    if new.workflow != workflow:
        raise UsageError(f"--to {to_file} is workflow {new.workflow!r}, not {workflow!r}")
    if new.sha256 == old.sha256:
        raise UsageError(f"--to {to_file} is the version most open cases already run on ({old.sha256[:12]}); "
                         f"name the version to move from with --from SHA")
    import os
    base = os.path.dirname(os.path.abspath(output)) if output else os.getcwd()
    shown = os.path.relpath(os.path.abspath(to_file), base)
    text = plan_text(old, new, shown, counts)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"-o {output}: {exc.strerror}") from None
        app.out({"plan": output, "workflow": workflow, "from": old.sha256, "to": new.sha256,
                 "open_cases": sum(counts.values())},
                f"wrote {output}: {sum(counts.values())} open case(s) of {workflow} {old.sha256[:12]} → "
                f"{new.sha256[:12]}; review it, then: caseflow migrate run {output} --dry-run")
    else:
        click.echo(text, nl=False)


def _render(report: Any, plan: Any) -> str:
    c = report.counts()
    from caseflow.values import show_datetime
    lines = [v.line() + "".join(f"; {c.name} due {show_datetime(c.due_at, plan.new.tz)}" if c.due_at
                                else f"; {c.name} paused" for c in v.clocks.values())
             + _outcome(report, v) for v in report.verdicts]
    head = (f"{plan.workflow} {plan.old.sha256[:12]} → {plan.new.sha256[:12]} (plan {plan.sha256[:12]}, "
            f"{report.kind} {report.run}): {len(report.verdicts)} open case(s): "
            + ", ".join(f"{c[k]} {k}" for k in ("migratable", "elsewhere", "forbidden", "invalid", "filtered")))
    if report.kind != "dry-run":
        head += f"; moved {c['migrated']}" + (f", changed meanwhile {c['lost']}" if c["lost"] else "") \
            + (f", moved by another runner {c['skipped']}" if c["skipped"] else "") \
            + (f", failed {c['failed']}" if c["failed"] else "") \
            + (f", held back by --limit {c['held_back']}" if c.get("held_back") else "")
    refused = Counter(v.refused.event for v in report.verdicts if v.refused is not None)
    if refused:
        head += "\nfirst refused action: " + ", ".join(f"{e} {n}" for e, n in refused.most_common())
    return "\n".join([head, *lines])


def _outcome(report: Any, v: Any) -> str:
    out = report.outcome(v.case_id)
    return f" [{out}]" if out else ""


@migrate.command("run")
@click.argument("plan_file", metavar="PLAN")
@click.option("--dry-run", is_flag=True, help="Judge every case; change nothing (the dry run is recorded).")
@click.option("--case", "case_ids", multiple=True, metavar="ID",
              help="Only this open case (repeat for more): a canary before the rest.")
@click.option("--limit", type=int, metavar="N", help="Move at most N cases (the first by id); hold back the rest.")
@note_option
@click.option("--json", "local_json", is_flag=True, help="Machine-readable output.")
@pass_app
def run_cmd(app: App, plan_file: str, dry_run: bool, case_ids: tuple[str, ...], limit: int | None,
            note: str | None, local_json: bool) -> None:
    """Judge (--dry-run) or migrate the open cases a PLAN covers.

    Each case's logged history is replayed under the new version: migratable
    (it replays and ends in the state the plan maps to), elsewhere (it replays
    but ends in another state), forbidden (the new version refuses a logged
    action: the first one is named), invalid (the data breaks the new schema).
    Without --dry-run each case that may move does, in its own transaction
    (needs can_migrate); a case changed meanwhile stays and the command exits 3
    (run it again). Several runs of one plan at once share the work. --case
    and --limit move a few first (a canary); running the plan again moves the
    rest, and `migrate revert RUN` undoes one run.

    \b
    Example:
      caseflow --as zhang.wei migrate plan refund --to tests/migration/review/refund.yaml -o plan.yaml
      caseflow --as zhang.wei migrate run plan.yaml --dry-run
      caseflow --as zhang.wei migrate run plan.yaml --limit 1 --note "先迁移一件"
      caseflow --as zhang.wei migrate run plan.yaml --note "新增财务审核"
    """
    import json as _json

    from caseflow.migration import run as runs
    plan = _load(app, plan_file)
    engine = app.engine
    select = runs.Selection(tuple(dict.fromkeys(case_ids)), limit)
    report = (runs.dry_run(engine, plan, app.user, select) if dry_run
              else runs.migrate(engine, plan, app.user, note, select=select))
    if app.as_json or local_json:
        click.echo(_json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _echo(_render(report, plan))


@migrate.command("revert")
@click.argument("run_id", metavar="RUN", type=int)
@note_option
@click.option("--json", "local_json", is_flag=True, help="Machine-readable output.")
@pass_app
def revert_cmd(app: App, run_id: int, note: str | None, local_json: bool) -> None:
    """Move the cases migration run RUN moved back to their old version (needs can_migrate).

    A case is moved back to the state, data and sign-offs it had before the
    run, its clocks recomputed from its history under the old version, with a
    `migrate` audit row. A case that was advanced under the new version since
    stays there (listed).

    \b
    Example:
      caseflow --as zhang.wei migrate plan refund --to tests/migration/review/refund.yaml -o plan.yaml
      caseflow --as zhang.wei migrate run plan.yaml
      caseflow --as zhang.wei migrate revert 1
    """
    import json as _json

    from caseflow.migration.revert import revert
    report = revert(app.engine, run_id, app.user, note)
    if app.as_json or local_json:
        click.echo(_json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    c = report.counts()
    lines = [f"revert of run {run_id} (run {report.run}): moved back {c['migrated']}"
             + (f", changed meanwhile {c['lost']}" if c["lost"] else "")
             + (f", stay on the new version {len(report.failed)}" if report.failed else "")]
    lines += [f"{v.case_id}: back to {v.landed}" for v in report.verdicts if v.case_id in report.migrated]
    lines += [f"{case}: stays: {why}" for case, why in report.failed.items()]
    _echo("\n".join(lines))


@migrate.command("runs")
@click.option("--workflow", help="Only this workflow's runs.")
@click.option("--json", "local_json", is_flag=True, help="Machine-readable output.")
@pass_app
def runs_cmd(app: App, workflow: str | None, local_json: bool) -> None:
    """Every recorded dry run, run and revert: plan, who, when, verdict counts (can_migrate or can_audit).

    \b
    Example:
      caseflow --as jiang.wen migrate runs
    """
    import json as _json

    from caseflow.migration import record
    record.require(app.engine, app.engine.person(app.user), "read migration runs", audit_may=True)
    rows = record.runs(app.engine, workflow)
    if app.as_json or local_json:
        click.echo(_json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no migration runs")
        return
    for r in rows:
        counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items() if v)
        extra = f" reverts {r['reverts']}" if r["reverts"] else ""
        _echo(f"{r['id']} {r['kind']}{extra} {r['workflow']} {r['from'][:12]} → {r['to'][:12]} plan "
                   f"{r['plan'][:12]} by {r['actor']} at {r['started_at']}"
                   f"{'' if r['finished_at'] else ' (unfinished)'}: {counts or 'no cases'}")


@migrate.command("show")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--json", "local_json", is_flag=True, help="Machine-readable output.")
@pass_app
def show_cmd(app: App, run_id: int, local_json: bool) -> None:
    """One recorded run: its plan's full text and every case's verdict (can_migrate or can_audit).

    \b
    Example:
      caseflow --as zhang.wei migrate plan refund --to tests/migration/review/refund.yaml -o plan.yaml
      caseflow --as zhang.wei migrate run plan.yaml --dry-run
      caseflow --as jiang.wen migrate show 1
    """
    import json as _json

    from caseflow.migration import record
    record.require(app.engine, app.engine.person(app.user), "read migration runs", audit_may=True)
    r = record.run(app.engine, run_id)
    if app.as_json or local_json:
        click.echo(_json.dumps(r, ensure_ascii=False, indent=2))
        return
    lines = [f"run {r['id']} ({r['kind']}) of {r['workflow']} by {r['actor']} at {r['started_at']}, plan "
             f"{r['plan']}:", r["plan_text"].rstrip(), "verdicts:"]
    for v in r["verdicts"]:
        why = v["refused"]["reason"] if v.get("refused") else v.get("reason") or v.get("landed") or ""
        lines.append(f"  {v['case']} {v['state']}: {v['verdict']}" + (f" ({why})" if why else "")
                     + (f" [{v['outcome']}]" if v.get("outcome") else ""))
    _echo("\n".join(lines))
