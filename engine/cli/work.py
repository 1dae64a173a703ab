"""The operator's work queue: inbox, assign, claim, release."""

from __future__ import annotations

from typing import Any

import click

from caseflow.cli.app import App, cli, note_option, pass_app
from caseflow.terminal import escape, escaped
from caseflow.values import show_datetime


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows (the most urgent).")
@click.option("--explain", is_flag=True,
              help="Print the database's plan for the inbox query (with --limit: for its first page) instead.")
@pass_app
def inbox(app: App, limit: int | None, explain: bool) -> None:
    """The cases waiting for you, most urgent first.

    Cases assigned to you come first, then those whose sign-off is yours, those
    you may advance now, those that need fields you can give, and unassigned
    cases you may claim (or assign). Each row shows the state, summary fields
    and the nearest SLA deadline (! = overdue). See docs/inbox.md.

    \b
    Example:
      caseflow --as wang.fang inbox
      caseflow --as gao.feng --json inbox --limit 20
    """
    from caseflow.views import inbox as view
    if explain:
        for line in view.explain(app.engine, app.user, limit):
            click.echo(line)
        return
    rows = view.inbox(app.engine, app.user, limit)
    app.out(rows, "" if app.as_json else _render(app, escaped(rows)))      # summaries: no forged lines


def _render(app: App, rows: list[dict[str, Any]]) -> str:
    from caseflow.views.inbox import GROUPS, LABELS_ZH
    if not rows:
        return "(nothing waiting for you)"
    lines: list[str] = []
    for group in GROUPS:
        mine = [r for r in rows if r["group"] == group]
        if not mine:
            continue
        lines.append(f"{LABELS_ZH[group]} ({group}): {len(mine)}")
        for r in mine:
            d = app.catalog.current.get(r["workflow"])
            due = "-"
            if r["due_at"]:
                due = (show_datetime(r["due_at"], d.tz) if d else r["due_at"]) + (" !" if r["overdue"] else "")
            summary = " ".join(str(v) for v in r["summary"].values() if v is not None)
            todo = _todo(r)
            lines.append(f"  {r['id']:<14} {r['label_zh']} {r['state_label_zh']}({r['state']})  due {due}"
                         f"  {summary}{'  → ' + todo if todo else ''}")
    return "\n".join(lines)


def _todo(r: dict[str, Any]) -> str:
    if r["signoff"]:
        return f"sign as {r['signoff']['label_zh']}"
    parts = [e["event"] for e in r["ready"]]
    parts += [f"{e['event']} (needs {', '.join(e['fields'])})" for e in r["needs_input"]]
    if r["group"] == "to_claim":
        parts.append(f"claim {r['id']}")
    if r["group"] == "to_assign":
        parts.append(f"assign {r['id']} --balance")
    return ", ".join(parts)


@cli.command()
@click.argument("case_id")
@click.argument("user", required=False)
@click.option("--balance", is_flag=True, help="Pick the holder of --role with the fewest open assigned cases.")
@click.option("--role", help="With --balance: the role to pick from (default: the workflow's assign_to).")
@click.option("--dry-run", is_flag=True, help="With --balance: show the loads and the pick, change nothing.")
@note_option
@pass_app
def assign(app: App, case_id: str, user: str | None, balance: bool, role: str | None, dry_run: bool,
           note: str | None) -> None:
    """Assign a case to USER, or with --balance to the least loaded holder of a role.

    Needs one of the workflow's assign_roles. --balance counts each holder's open
    assigned cases (all workflows); a tie goes to whoever was least recently
    given a case, then to the user id in alphabetical order.

    \b
    Example:
      caseflow --as zhou.jie assign COM-1A2B3C4D liu.yang --note "熟悉防水问题"
      caseflow --as zhou.jie assign COM-1A2B3C4D --balance --role cs_agent --dry-run
    """
    from caseflow.runtime.assignment import assign as do_assign
    r = do_assign(app.engine, case_id, app.user, user, balance=balance, role=role, note=note, dry_run=dry_run)
    lines = []
    if r.get("loads"):
        lines += [f"  {x['user']:<12} {x['name']}  open cases {x['open_cases']}"
                  f"  last assigned {x['last_assigned_at'] or '-'}" for x in r["loads"]]
    verb = "would assign" if dry_run else "assigned"
    head = f"{case_id}: {verb} to {r['assignee']}" + (f" ({escape(r['why'])})" if r.get("why") else "")
    app.out(r, "\n".join([head] + lines))


@cli.command()
@click.argument("case_id")
@note_option
@pass_app
def claim(app: App, case_id: str, note: str | None) -> None:
    """Take an unassigned case for yourself; your work on it starts now.

    \b
    Example:
      caseflow --as liu.yang claim COM-1A2B3C4D
    """
    from caseflow.runtime.assignment import claim as do_claim
    r = do_claim(app.engine, case_id, app.user, note)
    app.out(r, f"{case_id}: claimed by {r['assignee']}")


@cli.command()
@click.argument("case_id")
@note_option
@pass_app
def release(app: App, case_id: str, note: str | None) -> None:
    """Give a case back: unassign it (its assignee, or someone with the workflow's assign_roles).

    \b
    Example:
      caseflow --as liu.yang claim COM-1A2B3C4D
      caseflow --as liu.yang release COM-1A2B3C4D --note "休假"
    """
    from caseflow.runtime.assignment import release as do_release
    r = do_release(app.engine, case_id, app.user, note)
    app.out(r, f"{case_id}: released by {r['by']} (was {r['previous']})")
