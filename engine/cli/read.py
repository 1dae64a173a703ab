"""Read-only and designer commands: validate, workflows, diagram, show, list, history."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from caseflow.cli.app import App, cli, pass_app, unmask_option
from caseflow.errors import DefinitionError, DefinitionErrors
from caseflow.terminal import escaped
from caseflow.values import show_datetime


@cli.command()
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--all/--first", "show_all", default=True,
              help="Print every error (default), or only the headline error of each file.")
@click.option("--verify/--no-verify", "run_verify", default=True,
              help="Also prove the files' properties and run the verifier's lints (default; see `verify`).")
@pass_app
def validate(app: App, files: tuple[str, ...], show_all: bool, run_verify: bool) -> None:
    """Check workflow files; print every error as file:line:col: message (hint).

    Without FILEs, checks every workflow in the workflows directory, including
    links between them. Roles come from the org.yaml in --workflows, else from
    an org.yaml beside the files, else the default workflows directory. The
    most useful error of each file comes first. Valid files are then verified
    (their `properties:` proven and the verifier's lints run, as `caseflow
    verify` does; a clean result is recorded per version and reused). Exit 0
    when clean, 1 otherwise.

    \b
    Example:
      caseflow init workflows
      caseflow validate workflows/*.yaml
      caseflow validate --first workflows/refund.yaml
    """
    from caseflow.catalog import SPECIAL, Catalog
    from caseflow.definition.compile import load_definition, load_org
    from caseflow.errors import CalendarError
    from caseflow.sla.calendar import load_calendars
    targets = _expand(files)
    directory = _org_dir(app.workflows_dir, targets)
    if not files:
        targets = sorted(directory.glob("*.yaml"))
    errors: list[DefinitionError] = []
    lines: list[str] = []
    org = None
    calendars: dict[str, Any] = {}
    try:
        org = load_org(next((t for t in targets if t.name == "org.yaml"), directory / "org.yaml"))
        cal_path = next((t for t in targets if t.name == "calendars.yaml"), directory / "calendars.yaml")
        calendars = load_calendars(cal_path) if cal_path.exists() else {}
    except (DefinitionErrors, DefinitionError) as exc:
        errors.extend(exc.errors if isinstance(exc, DefinitionErrors) else [exc])
    except CalendarError as exc:
        lines.append(f"{exc}")
    checked = 0
    loaded: list[Any] = []
    for path in targets:
        if path.name in SPECIAL or org is None:
            continue
        checked += 1
        try:
            definition = load_definition(path, org, calendars, display=str(path))
            twin = next((d for d in loaded if d.workflow == definition.workflow), None)
            loaded.append(definition)
            if twin is not None:                        # one id, two files: which one would run?
                errors.append(DefinitionError(f"workflow id {definition.workflow!r} is also declared by {twin.path}",
                                              file=str(path), line=1, col=1, hint="each workflow lives in one "
                                              "file named after its id; remove or rename one"))
            elif definition.workflow != path.stem:      # the catalog finds workflows by file name
                found = re.search(r"^workflow:[ \t]*", definition.text, re.MULTILINE)
                line = definition.text.count("\n", 0, found.start()) + 1 if found else 1
                errors.append(DefinitionError(
                    f"workflow id {definition.workflow!r} must match the file name", file=str(path), line=line,
                    col=found.end() - found.start() + 1 if found else 1,
                    hint=f"rename the file to {definition.workflow}.yaml"))
        except DefinitionErrors as exc:
            errors.extend(exc.errors if show_all else exc.errors[:1])
        except DefinitionError as exc:
            errors.append(exc)
    if not files and not errors and not lines:
        try:
            Catalog.load(directory).check_all()      # cross-file checks (spawned workflows exist)
        except DefinitionErrors as exc:
            errors.extend(exc.errors)
    warnings: list[DefinitionError] = []
    if run_verify and org is not None and loaded and not errors and not lines:
        from caseflow.verification.session import verification_problems
        problems, warnings = verification_problems(loaded, org, directory)
        errors.extend(problems)
    if app.as_json:
        click.echo(json.dumps([{"file": e.file, "line": e.line, "col": e.col, "message": e.message,
                                "hint": e.hint} for e in errors] + [{"message": m} for m in lines],
                              ensure_ascii=False, indent=2))
    else:
        for text in [str(e) for e in errors + warnings] + lines:
            click.echo(text)
    if errors or lines:
        raise click.exceptions.Exit(1)
    click.echo(f"ok: {checked} workflow file(s) valid", err=True)


def _expand(files: tuple[str, ...]) -> list[Path]:
    """FILE arguments; a directory stands for the *.yaml files in it."""
    out: list[Path] = []
    for f in files:
        p = Path(f)
        out.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    return out


def _org_dir(option: str | None, targets: list[Path]) -> Path:
    from caseflow.catalog import default_dir
    if option:
        return Path(option)
    parents = {t.parent for t in targets}
    if len(parents) == 1 and (next(iter(parents)) / "org.yaml").exists():
        return next(iter(parents))
    return default_dir()


@cli.command()
@pass_app
def workflows(app: App) -> None:
    """List the loaded workflow definitions, their versions (sha256) and what was verified.

    The last column says which `properties:` of this version were proven for the
    current org.yaml, to which bound and when (by `caseflow verify` or `validate`).
    A proof is kept by the file's content, not its text: it names the definition it
    was made for when that differs only in comments or layout (`caseflow init`'s
    copies), and the shipped workflows' proofs come with caseflow.

    \b
    Example:
      caseflow workflows
      caseflow workflows --json
    """
    from caseflow.verification.packaged import shown
    from caseflow.verification.record import org_digest
    org_key = org_digest(app.catalog.org)
    rows = []
    for d in app.catalog.current.values():
        entry = shown(d, org_key) or {}
        rows.append({"workflow": d.workflow, "label_zh": d.label_zh, "definition": d.sha256, "path": d.path,
                     "states": len(d.states), "transitions": len(d.transitions),
                     "verified": {"properties": entry.get("properties", {}), "bound": entry.get("bound"),
                                  "at": entry.get("verified_at"), "ok": entry.get("ok"),
                                  "definition": entry.get("definition"),
                                  "packaged": bool(entry.get("packaged"))} if entry else None})
    from caseflow.views.table import render_table
    human = render_table([{**r, "version": r["definition"][:12], "proved": _verified(r["verified"], r["definition"])}
                          for r in rows],
                         [("workflow", "workflow"), ("label_zh", "名称"), ("version", "definition"),
                          ("states", "states"), ("transitions", "transitions"), ("path", "path"),
                          ("proved", "verified")], right=("states", "transitions"), most=80)
    app.out(rows, human)


def _verified(v: dict[str, Any] | None, sha: str) -> str:
    from caseflow.verification.record import made_for
    if not v:
        return "not verified (run: caseflow verify)"
    props = v["properties"]
    held = [k for k, s in props.items() if s == "holds"]
    failed = [k for k, s in props.items() if s != "holds"]
    text = f"verified {len(held)}/{len(props)} within bound {v['bound']} at {v['at']}"
    if held:
        text += f": {', '.join(held)}"
    if failed:
        text += f"; not holding: {', '.join(failed)}"
    how = made_for(v, sha)                 # last: a narrow table cuts this, not the properties
    return text + (f";{how}" if how.startswith(" for") else how)


@cli.command()
@click.argument("workflow")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@pass_app
def diagram(app: App, workflow: str, fmt: str) -> None:
    """Print a state diagram with Chinese labels, sign-offs, guards and SLA clocks.

    Mermaid (stateDiagram-v2) pastes into Markdown; pipe DOT into Graphviz.

    \b
    Example:
      caseflow diagram refund
      caseflow diagram complaint --format dot | dot -Tsvg > complaint.svg
    """
    from caseflow.views.diagram import to_dot, to_mermaid
    d = app.catalog.get(workflow)
    org = app.catalog.org
    click.echo(to_dot(d, org) if fmt == "dot" else to_mermaid(d, org), nl=False)


@cli.command()
@click.argument("case_id")
@unmask_option
@pass_app
def show(app: App, case_id: str, unmask: bool) -> None:
    """Show a case: state, data, what you may do now (and what is missing), sign-offs, SLAs.

    \b
    Example:
      caseflow --as wang.fang show REF-1A2B3C4D
      caseflow --as zheng.hai show REF-1A2B3C4D --unmask --json
    """
    from caseflow.views.cases import show as show_case
    view = show_case(app.engine, case_id, app.user, unmask)
    app.out(view, "" if app.as_json else _render_show(app, escaped(view)))     # no forged lines, no ESC


def _render_show(app: App, v: dict[str, Any]) -> str:
    d = app.engine.catalog.current.get(v["workflow"])
    tz = d.tz if d else None
    lines = [f"{v['id']}  {v['label_zh']}({v['workflow']})  状态: {v['state_label_zh']}({v['state']})"
             f"  version {v['version']}  definition {v['definition'][:12]}"]
    if v.get("parent_case"):
        lines.append(f"linked to: {v['parent_case']}")
    if v.get("assignee"):
        when = show_datetime(v["assigned_at"], tz) if tz and v.get("assigned_at") else v.get("assigned_at")
        work = "working since " + (show_datetime(v["work_started_at"], tz) if tz else v["work_started_at"]) \
            if v.get("work_started_at") else "not started"
        lines.append(f"assignee: {v['assignee']} (since {when}; {work})")
    else:
        lines.append("assignee: none")
    lines.append("data:")
    fields = d.fields if d else {}
    for k, val in sorted(v["data"].items()):
        label = fields.get(k, {}).get("label_zh")
        if tz and fields.get(k, {}).get("format") == "date-time" and isinstance(val, str):
            val = show_datetime(val, tz)            # stored in UTC, shown in the workflow's zone
        lines.append(f"  {k}{f' ({label})' if label else ''}: {val}")
    lines.append("events:" if v["events"] else "events: none (the case is closed)")
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
@click.option("--state", help="Only cases in this state (its id or Chinese label).")
@click.option("--overdue", is_flag=True, help="Only cases with a breached SLA.")
@click.option("--assignee", metavar="USER", help="Only cases assigned to USER.")
@click.option("--unassigned", is_flag=True, help="Only cases nobody holds.")
@click.option("--limit", type=click.IntRange(1), default=500, show_default=True, help="At most this many cases.")
@pass_app
def list_cmd(app: App, workflow: str | None, state: str | None, overdue: bool, assignee: str | None,
             unassigned: bool, limit: int) -> None:
    """List cases, most recently changed first, with their summary and local time.

    The summary is the first two required fields of the workflow's data (form
    number, customer), personal data masked.

    \b
    Example:
      caseflow --as jiang.wen list --workflow refund --state signing
      caseflow --as wang.fang list --state 逐级签字 --limit 20
      caseflow --as wang.fang list --workflow complaint --unassigned --json
    """
    from caseflow.views.cases import list_cases
    from caseflow.views.table import render_table
    rows = list_cases(app.engine, workflow, state, overdue, limit, person=app.person, assignee=assignee,
                      unassigned=unassigned)
    if app.as_json:
        app.out(rows, "")
        return
    shown = []
    for r in rows:
        d = app.catalog.current.get(r["workflow"])
        shown.append({"id": r["id"], "workflow": d.label_zh if d else r["workflow"],
                      "state": f"{r['state_label_zh']}({r['state']})", "assignee": r.get("assignee") or "",
                      "summary": " ".join(str(v) for v in r["summary"].values() if v not in (None, "")),
                      "updated": show_datetime(r["updated_at"], d.tz) if d else r["updated_at"]})
    held = [("assignee", "经办人")] if any(r["assignee"] for r in shown) else []     # only when someone holds one
    click.echo(render_table(shown, [("id", "案件"), ("workflow", "流程"), ("state", "状态"), ("summary", "摘要"),
                                    *held, ("updated", "更新时间")]) if rows else "(no cases)")
    if len(rows) == limit:
        click.echo(f"(showing the {limit} most recent; there may be more: --limit N)", err=True)


@cli.command()
@click.argument("case_id")
@unmask_option
@pass_app
def history(app: App, case_id: str, unmask: bool) -> None:
    """A case's timeline from the audit log, with Chinese labels and SLA events.

    \b
    Example:
      caseflow --as jiang.wen history REF-1A2B3C4D
      caseflow --as jiang.wen history REF-1A2B3C4D --json
    """
    from caseflow.views.cases import history as case_history
    rows = case_history(app.engine, case_id, app.user, unmask)
    snap = app.engine.read_case(case_id)
    d = snap.definition
    lines = []
    for r in escaped(rows):                     # a newline in a note cannot forge a line
        when = show_datetime(r["at"], d.tz)
        move = f"{d.label(r['from'])} → {d.label(r['to'])}" if r["from"] and r["to"] and r["from"] != r["to"] \
            else (d.label(r["to"]) if r["to"] else "")
        what = d.event_label(r["event"]) if r["kind"] in ("transition", "open") else f"[{r['kind']}] {r['event']}"
        note = f"  «{r['note']}»" if r["note"] else ""
        lines.append(f"{r['seq']:>3} {when}  {r['actor']:<12} {what}  {move}{note}")
    app.out([{k: r[k] for k in ("seq", "kind", "event", "from", "to", "actor", "roles", "at", "recorded_at",
                                "note", "changes")} for r in rows], "\n".join(lines))
