"""`caseflow verify`: prove a workflow's declared properties for every case data and person."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from caseflow.cli.app import App, cli, pass_app
from caseflow.definition.model import Definition, Org
from caseflow.errors import DefinitionErrors
from caseflow.verification.explorer import DEFAULT_BOUND


@cli.command("verify")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--bound", type=click.IntRange(1, 40), default=DEFAULT_BOUND, show_default=True,
              help="Longest event sequence searched (each state at most twice per sequence).")
@click.option("--emit-script", "script_dir", type=click.Path(file_okay=False),
              help="Write each counterexample as a runnable shell script of caseflow commands into DIR.")
@click.option("--fresh", is_flag=True, help="Search again even if this version was verified before.")
@click.option("--json", "local_json", is_flag=True, help="Machine-readable output.")
@pass_app
def verify_cmd(app: App, files: tuple[str, ...], bound: int, script_dir: str | None, fresh: bool,
               local_json: bool) -> None:
    """Prove the `properties:` of workflow files for every possible case, within a bound.

    A bounded, exhaustive symbolic search (z3) over the definition: every case
    data the schema and the engine's value rules allow, every person in
    org.yaml holding the roles. Each violation prints the property's
    file:line:col, its Chinese label and the shortest counterexample with real
    people and values, replayed through the engine on a temporary SQLite
    database (a replay the engine refuses is discarded as spurious). Also
    reports the lints `validate` prints. Exit 0 when everything holds, 1 otherwise.

    \b
    Example:
      caseflow init workflows
      caseflow verify workflows/refund.yaml
      caseflow verify --bound 8 --emit-script /tmp/cex workflows/refund.yaml
    """
    definitions, org, directory = load_targets(app, files)
    as_json = app.as_json or local_json
    payload, failed = [], False
    for d in definitions:
        outcome = run_one(d, org, directory, bound, reuse=not fresh and not script_dir)
        failed |= bool(outcome.errors)
        if as_json:
            payload.append(_json(outcome))
        else:
            for line in _lines(outcome, org):
                click.echo(line)
        if script_dir and outcome.report is not None:
            for path in write_scripts(outcome.report, Path(script_dir), directory):
                click.echo(f"wrote {path}", err=True)
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    if failed:
        raise click.exceptions.Exit(1)


def load_targets(app: App, files: tuple[str, ...]) -> tuple[list[Definition], Org, Path]:
    from caseflow.catalog import SPECIAL
    from caseflow.cli.read import _expand, _org_dir
    from caseflow.definition.compile import load_definition, load_org
    from caseflow.sla.calendar import load_calendars
    targets = _expand(files)
    directory = _org_dir(app.workflows_dir, targets)
    if not files:
        targets = sorted(directory.glob("*.yaml"))
    org = load_org(directory / "org.yaml")
    cal = directory / "calendars.yaml"
    calendars = load_calendars(cal) if cal.exists() else {}
    out, errors = [], []
    for path in targets:
        if path.name in SPECIAL:
            continue
        try:
            out.append(load_definition(path, org, calendars, display=str(path)))
        except DefinitionErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise DefinitionErrors(errors)
    return out, org, directory


def run_one(d: Definition, org: Org, directory: Path, bound: int, reuse: bool = True) -> Any:
    from caseflow.catalog import Catalog
    from caseflow.verification.session import verify_one
    return verify_one(d, org, Catalog.load(directory), bound, reuse=reuse)


def _lines(outcome: Any, org: Org) -> list[str]:
    from caseflow.verification.check import declared
    from caseflow.verification.report import VERDICTS, render
    lines = [str(e) for e in outcome.lints]
    if outcome.report is not None:
        return lines + render(outcome.report, org)
    entry = outcome.recorded or {}
    statuses = entry.get("properties", {})
    for p in declared(outcome.definition):
        lines.append(f"{p.file}:{p.line}:{p.col}: {p.label_zh} ({p.id}): "
                     f"{VERDICTS.get(statuses.get(p.id, 'holds'), 'holds')} within bound {entry.get('bound')}")
    from caseflow.verification.record import made_for
    how = made_for(entry, outcome.definition.sha256)
    lines.append(f"{outcome.definition.workflow}: {len(statuses)}/{len(statuses)} properties hold within bound "
                 f"{entry.get('bound')} (verified {entry.get('verified_at')}{how}; --fresh searches again)")
    return lines


def _json(outcome: Any) -> dict[str, Any]:
    from caseflow.verification.report import as_json
    lint_rows = [{"file": e.file, "line": e.line, "col": e.col, "message": e.message, "hint": e.hint,
                  "warning": type(e).__name__ == "Warning_"} for e in outcome.lints]
    if outcome.report is not None:
        row = as_json(outcome.report, (outcome.recorded or {}).get("verified_at"))
    else:
        entry = outcome.recorded or {}
        row = {"workflow": outcome.definition.workflow, "file": outcome.definition.path,
               "definition": outcome.definition.sha256, "bound": entry.get("bound"), "ok": entry.get("ok"),
               "verified_at": entry.get("verified_at"), "recorded": True,
               "recorded_for": entry.get("definition"), "packaged": bool(entry.get("packaged")),
               "properties": [{"id": k, "verdict": v} for k, v in entry.get("properties", {}).items()]}
    row["lints"] = lint_rows
    return row


def write_scripts(report: Any, target: Path, directory: Path) -> list[Path]:
    from caseflow.verification.replay import script
    target.mkdir(parents=True, exist_ok=True)
    out = []
    for f in report.findings:
        if f.status != "violated":
            continue
        moves = [m for m in f.moves[:len(f.moves) - (1 if f.prop.pattern == "exclusive" else 0)]]
        path = target / f"{report.definition.workflow}-{f.prop.id}.sh"
        path.write_text(script(report.definition, moves, directory,
                               f"{f.prop.label_zh} ({f.prop.id}) violated: {f.detail or 'see the last step'}"),
                        encoding="utf-8")
        path.chmod(0o755)
        out.append(path)
    return out
