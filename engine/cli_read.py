"""Read-only and designer commands: validate, workflows, diagram, show, list, history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .cli import App, cli, pass_app, unmask_option
from .errors import DefinitionError, DefinitionErrors
from .values import show_datetime


@cli.command()
@click.argument("files", nargs=-1, type=click.Path())
@pass_app
def validate(app: App, files: tuple[str, ...]) -> None:
    """Check workflow files; print every error as file:line:col: message.

    \b
    Example:
      caseflow validate workflows/*.yaml
    """
    from .catalog import SPECIAL, Catalog, default_dir
    from .definition import load_definition, load_org
    directory = Path(app.workflows_dir) if app.workflows_dir else default_dir()
    targets = [Path(f) for f in files] or sorted(directory.glob("*.yaml"))
    errors: list[DefinitionError] = []
    checked = 0
    try:
        org_path = next((t for t in targets if t.name == "org.yaml"), directory / "org.yaml")
        org = load_org(org_path)
        from .calendar import load_calendars
        cal_path = next((t for t in targets if t.name == "calendars.yaml"), directory / "calendars.yaml")
        calendars = load_calendars(cal_path) if cal_path.exists() else {}
    except DefinitionErrors as exc:
        errors.extend(exc.errors)
        org, calendars = None, {}
    for path in targets:
        if path.name in SPECIAL or org is None:
            continue
        checked += 1
        try:
            load_definition(path, org, calendars, display=str(path))
        except DefinitionErrors as exc:
            errors.extend(exc.errors)
        except DefinitionError as exc:
            errors.append(exc)
    if not files and not errors:
        try:
            Catalog.load(directory)      # cross-file checks (spawned workflows exist)
        except DefinitionErrors as exc:
            errors.extend(exc.errors)
    for e in errors:
        click.echo(f"{e}")
    if errors:
        raise click.exceptions.Exit(1)
    click.echo(f"ok: {checked} workflow file(s) valid", err=True)


@cli.command()
@pass_app
def workflows(app: App) -> None:
    """List the loaded workflow definitions and their versions (sha256)."""
    rows = [{"workflow": d.workflow, "label_zh": d.label_zh, "definition": d.sha256, "path": d.path,
             "states": len(d.states), "transitions": len(d.transitions)} for d in app.catalog.current.values()]
    human = "\n".join(f"{r['workflow']:<16} {r['label_zh']:<10} {r['definition'][:12]}  {r['path']}" for r in rows)
    app.out(rows, human)


@cli.command()
@click.argument("workflow")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@pass_app
def diagram(app: App, workflow: str, fmt: str) -> None:
    """Print a state diagram (pipe DOT into `dot -Tsvg`).

    \b
    Example:
      caseflow diagram complaint --format dot | dot -Tsvg > complaint.svg
    """
    from .diagram import to_dot, to_mermaid
    d = app.catalog.get(workflow)
    click.echo(to_dot(d) if fmt == "dot" else to_mermaid(d), nl=False)


@cli.command()
@click.argument("case_id")
@unmask_option
@pass_app
def show(app: App, case_id: str, unmask: bool) -> None:
    """Show a case: state, data, what you may do now (and what is missing), sign-offs, SLAs."""
    from .views import show as show_case
    view = show_case(app.engine, case_id, app.user, unmask)
    app.out(view, _render_show(app, view))


def _render_show(app: App, v: dict[str, Any]) -> str:
    d = app.engine.catalog.current.get(v["workflow"])
    tz = d.tz if d else None
    lines = [f"{v['id']}  {v['label_zh']}({v['workflow']})  状态: {v['state_label_zh']}({v['state']})"
             f"  version {v['version']}  definition {v['definition'][:12]}"]
    if v.get("parent_case"):
        lines.append(f"linked to: {v['parent_case']}")
    lines.append("data:")
    lines += [f"  {k}: {val}" for k, val in sorted(v["data"].items())]
    lines.append("events:")
    for e in v["events"]:
        mark = "✔" if e["allowed"] else "✘"
        why = "" if e["allowed"] else "  — " + "; ".join(e["missing"])
        lines.append(f"  {mark} {e['event']} ({e['label_zh']}) → {e['to_label_zh']}({e['to']}){why}")
    if v["signoffs"] or v["pending_signoff"]:
        lines.append("sign-offs:")
        for s in v["signoffs"]:
            when = show_datetime(s["at"], tz) if tz else s["at"]
            lines.append(f"  ✔ {app.engine.catalog.org.role_label(s['role'])} {s['by']} {when}")
        if v["pending_signoff"]:
            lines.append(f"  … next: {app.engine.catalog.org.role_label(v['pending_signoff']['role'])}")
    if v["slas"]:
        lines.append("clocks:")
        for c in v["slas"]:
            due = show_datetime(c.get("due_at"), tz) if tz and c.get("due_at") else "-"
            extra = f"  remaining {c['remaining']}" if c.get("remaining") else ""
            prov = " (provisional)" if c.get("provisional") else ""
            lines.append(f"  {c.get('label_zh', c['name'])}({c['name']}): {c['status']}, due {due}{prov}{extra}")
    return "\n".join(lines)


@cli.command("list")
@click.option("--workflow", help="Only this workflow.")
@click.option("--state", help="Only cases in this state.")
@click.option("--overdue", is_flag=True, help="Only cases with a breached SLA.")
@pass_app
def list_cmd(app: App, workflow: str | None, state: str | None, overdue: bool) -> None:
    """List cases, most recently changed first."""
    from .views import list_cases
    rows = list_cases(app.engine, workflow, state, overdue)
    human = "\n".join(f"{r['id']:<14} {r['workflow']:<14} {r['state_label_zh']}({r['state']})  {r['updated_at']}"
                      for r in rows) or "(no cases)"
    app.out(rows, human)


@cli.command()
@click.argument("case_id")
@unmask_option
@pass_app
def history(app: App, case_id: str, unmask: bool) -> None:
    """A case's timeline from the audit log, with Chinese labels and SLA events."""
    from .views import history as case_history
    rows = case_history(app.engine, case_id, app.user, unmask)
    snap = app.engine.read_case(case_id)
    d = snap.definition
    lines = []
    for r in rows:
        when = show_datetime(r["at"], d.tz)
        move = f"{d.label(r['from'])} → {d.label(r['to'])}" if r["from"] and r["to"] and r["from"] != r["to"] \
            else (d.label(r["to"]) if r["to"] else "")
        what = d.event_label(r["event"]) if r["kind"] in ("transition", "open") else f"[{r['kind']}] {r['event']}"
        note = f"  «{r['note']}»" if r["note"] else ""
        lines.append(f"{r['seq']:>3} {when}  {r['actor']:<12} {what}  {move}{note}")
    app.out([{k: r[k] for k in ("seq", "kind", "event", "from", "to", "actor", "roles", "at", "recorded_at",
                                "note", "changes")} for r in rows], "\n".join(lines))
