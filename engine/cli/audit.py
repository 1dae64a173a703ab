"""`caseflow audit …` and `caseflow report …`: the auditor's commands.

Each parses its options, makes one library call (auditlog, verify, reports)
and prints; errors reach the one handler in `cli.CaseflowGroup`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from caseflow.cli.app import App, cli, pass_app, unmask_option

FORMATS = click.Choice(["table", "json", "csv", "jsonl"])
output_option = click.option("-o", "--output", type=click.Path(dir_okay=False),
                             help="Write to this file instead of stdout (never the database; an existing file "
                                  "only with --force).")
force_option = click.option("--force", is_flag=True, help="Replace the -o file if it exists.")


def output_file(app: App, output: str | None, force: bool) -> None:
    """Refuse, before anything is read, an -o that is the database or an existing file (without --force)."""
    if output:
        from caseflow.files import check_output
        from caseflow.store.database import DEFAULT_URL
        check_output(output, app.db or DEFAULT_URL, force)


def _fmt(app: App, fmt: str | None) -> str:
    """--format wins; otherwise the global --json picks json, and a person gets a table."""
    return fmt or ("json" if app.as_json else "table")


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8", newline="")     # checked by output_file first
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@cli.group(invoke_without_command=True)
@click.option("--case", "case_id", help="Only this case.")
@click.option("--workflow", help="Only this workflow.")
@click.option("--actor", help="Only rows written by this user.")
@click.option("--event", help="Only this event (e.g. accept, sign, reject, escalate, unmask).")
@click.option("--since", help="From this time (ISO 8601 or YYYY-MM-DD, in the workflow's zone).")
@click.option("--until", help="Before this time; a bare date includes that whole day.")
@click.option("--attempts", is_flag=True, help="List refused and denied attempts instead.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--format", "fmt", type=FORMATS, help="Output format (default table; --json means json).")
@click.option("--bom", is_flag=True, help="Start CSV with a UTF-8 BOM, for Excel.")
@output_option
@force_option
@unmask_option
@pass_app
@click.pass_context
def audit(ctx: click.Context, app: App, case_id: str | None, workflow: str | None, actor: str | None,
          event: str | None, since: str | None, until: str | None, attempts: bool, limit: int | None,
          fmt: str | None, bom: bool, output: str | None, force: bool, unmask: bool) -> None:
    """The audit log, filtered; personal data masked unless --unmask (permitted roles; logged).

    \b
    Example:
      caseflow --as jiang.wen audit --case COM-1A2B3C4D
      caseflow --as jiang.wen audit --workflow complaint --since 2025-03-01 --until 2025-03-31 \\
          --format csv --bom -o 三月.csv
      caseflow --as jiang.wen audit --case COM-1A2B3C4D --unmask --format jsonl
      caseflow --as jiang.wen audit --attempts --actor liu.yang
    """
    if ctx.invoked_subcommand is not None:
        given = [name for name, value in ctx.params.items() if value not in (None, False)]
        if given:
            from caseflow.errors import UsageError
            raise UsageError(f"--{given[0].replace('_id', '').replace('fmt', 'format')} is an option of the listing; "
                             f"it does not apply to `caseflow audit {ctx.invoked_subcommand}`")
        return
    output_file(app, output, force)
    from caseflow.audit.query import AuditQuery, default_tz, parse_bound, query, render
    tz = default_tz(app.engine, workflow)
    q = AuditQuery(case_id, workflow, actor, event, parse_bound(since, tz), parse_bound(until, tz, end=True),
                   attempts, limit)
    chosen = _fmt(app, fmt)
    rows = query(app.engine, q, app.user, unmask, what=f"caseflow audit --format {chosen}")
    _emit(render(rows, chosen, attempts=attempts, bom=bom), output)


anchor_option = click.option("--anchor", metavar="FILE", help="Checkpoint digests kept outside the database "
                             "(default: $CASEFLOW_ANCHOR_FILE); checkpoint appends to it, verify checks it.")


@audit.command()
@click.option("--expect", "expect", metavar="DIGEST", help="Fail unless a checkpoint with this digest "
              "(kept outside the database) is in the chain.")
@anchor_option
@pass_app
def verify(app: App, expect: str | None, anchor: str | None) -> None:
    """Prove every case from its chain; exit 0 only if the log and every case agree.

    Recomputes every hash chain and checkpoint, replays each case's log against
    its case row, clocks, unique keys, decision counters and work queues, checks definition
    texts and the log's guards; with CASEFLOW_AUDIT_KEY_FILE every row's MAC,
    with --anchor every checkpoint kept outside the database.

    \b
    Example:
      caseflow --as jiang.wen audit verify
      caseflow --as jiang.wen audit verify --json
    """
    from caseflow.audit.verify import verify as run_verify
    from caseflow.runtime.queue import queues
    report = run_verify(app.engine.store, expect=expect, catalog=app.engine.catalog, anchor=anchor, queues=queues)
    app.out(report.as_dict(), _render_verify(report))
    if not report.ok:
        raise click.exceptions.Exit(1)


def _render_verify(report: Any) -> str:
    summary = (f"{report.cases} cases, {report.rows} audit rows, {report.attempts} attempts, "
               f"{report.checkpoints} checkpoints")
    if report.keyed:
        summary += f", MACs checked (key {report.keyed})"
    if report.anchored:
        summary += f", {report.anchored} anchored"
    cp = report.last_checkpoint
    tail = f"\nlast checkpoint {cp['id']} ({cp['created_at']}): {cp['digest']}" if cp else \
        "\nno checkpoint yet: run `caseflow audit checkpoint` so deleted histories can be detected"
    if report.ok:
        return f"ok: audit log intact — {summary}{tail}"
    from caseflow.terminal import escape
    lines = [f"✘ {escape(str(p))}" for p in report.problems]     # a tampered case id cannot forge a line
    lines.append(f"FAILED: {len(report.problems)} problem(s) in {summary}{tail}")
    return "\n".join(lines)


@audit.command()
@anchor_option
@pass_app
def checkpoint(app: App, anchor: str | None) -> None:
    """Record a digest over every case's last audit row (and the attempts log's).

    Deleting a case's whole history, or cutting off its tail, leaves no broken
    link; comparing with a checkpoint shows it. Keep the printed digest outside
    the database (e-mail, ticket, paper) to detect a rewrite of everything.

    With --anchor (or CASEFLOW_ANCHOR_FILE) the checkpoint is also appended
    to that file, kept where the database's owner cannot write.

    \b
    Example:
      caseflow --as jiang.wen audit checkpoint
      caseflow --as jiang.wen audit checkpoint --anchor caseflow-anchors.jsonl   # e.g. on a WORM mount
    """
    from caseflow.audit.integrity import anchor_path, write_anchor
    from caseflow.audit.verify import record_checkpoint
    actor = app.engine.person(app.user).id if app.user else "system"
    cp = record_checkpoint(app.engine.store, actor)
    path = anchor_path(anchor)
    if path is not None:
        write_anchor(path, cp)
    app.out(cp, f"checkpoint {cp['id']}: {cp['cases']} cases, digest {cp['digest']}")


# -- reports --------------------------------------------------------------------------------

@cli.group()
def report() -> None:
    """Reports for auditors: complaint statistics, sign-off chains, SLA compliance (report sla).

    \b
    Example:
      caseflow --as jiang.wen report complaints --month 2025-03
      caseflow --as jiang.wen report signoffs --workflow refund
    """


report_format = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]),
                             help="Output format (default table; --json means json).")


@report.command()
@click.option("--month", required=True, metavar="YYYY-MM", help="Complaints received in this month.")
@report_format
@click.option("--bom", is_flag=True, help="Start CSV with a UTF-8 BOM, for Excel.")
@pass_app
def complaints(app: App, month: str, fmt: str | None, bom: bool) -> None:
    """顾客投诉分类统计表: complaints received in a month, by category, channel, department, outcome.

    \b
    Example:
      caseflow --as jiang.wen report complaints --month 2025-03
      caseflow --as jiang.wen report complaints --month 2025-03 --format csv --bom > 2025-03投诉统计.csv
    """
    from caseflow.audit.query import to_csv
    from caseflow.views.reports import complaints as build
    from caseflow.views.reports import render_complaint_statistics
    r = build(app.engine, month)
    chosen = _fmt(app, fmt)
    flat = [{"dimension": dim["field"], "dimension_zh": dim["label_zh"], "value": row["value"] or "",
             "label_zh": row["label_zh"], "count": row["count"]} for dim in r["dimensions"] for row in dim["rows"]]
    if chosen == "json":
        app.as_json = True
        app.out(r, "")
    elif chosen == "csv":
        click.echo(to_csv(flat, ("dimension", "dimension_zh", "value", "label_zh", "count"), bom), nl=False)
    else:
        click.echo(render_complaint_statistics(r))


@report.command()
@click.option("--workflow", help="Only this workflow.")
@click.option("--since", help="Rounds with a signature or rejection from this time.")
@click.option("--until", help="… and before this time (a bare date includes that day).")
@report_format
@pass_app
def signoffs(app: App, workflow: str | None, since: str | None, until: str | None, fmt: str | None) -> None:
    """Sign-off chains: who signed which case in which role and when; rejections with notes.

    \b
    Example:
      caseflow --as jiang.wen report signoffs --workflow refund --since 2025-03-01
    """
    from caseflow.audit.query import default_tz, parse_bound, to_csv
    from caseflow.views.reports import signoffs as build
    tz = default_tz(app.engine, workflow)
    rounds = build(app.engine, workflow, parse_bound(since, tz), parse_bound(until, tz, end=True))
    chosen = _fmt(app, fmt)
    if chosen == "json":
        app.as_json = True
        app.out(rounds, "")
        return
    if chosen == "csv":
        cols = ("case_id", "workflow", "round", "event", "action", "role", "by", "name", "at", "note", "outcome")
        flat = [{**r, **m, "action": act} for r in rounds
                for act, m in [("signed", s) for s in r["signatures"]] + ([("rejected", r["rejection"])]
                                                                          if r["rejection"] else [])]
        click.echo(to_csv(flat, cols), nl=False)
        return
    click.echo(_render_rounds(rounds))


def _render_rounds(rounds: list[dict[str, Any]]) -> str:
    if not rounds:
        return "(no sign-offs)"
    lines = []
    for r in rounds:
        what = f"{r['event_zh']}({r['event']})" if r["event"] else r["state"]
        lines.append(f"{r['case_id']}  {what}  第{r['round']}轮  {r['outcome_zh']}")
        for s in r["signatures"]:
            note = f"  «{s['note']}»" if s["note"] else ""
            lines.append(f"  ✔ {s['role_zh']}  {s['name']}({s['by']})  {s['at_local']}{note}")
        if r["rejection"]:
            x = r["rejection"]
            lines.append(f"  ✘ {x['role_zh']}  {x['name']}({x['by']})  {x['at_local']}  驳回：{x['note'] or ''}")
        pending = [q["role_zh"] for q in r["required"] if q["role"] not in {s["role"] for s in r["signatures"]}]
        if r["outcome"] == "pending" and pending:
            lines.append(f"  … 待签：{'、'.join(pending)}")
    return "\n".join(lines)
