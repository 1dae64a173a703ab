"""`caseflow sla …`: run the sweeper, summarise compliance. Parse, call the library, print."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from caseflow.cli.app import App, cli, one_line, pass_app
from caseflow.cli.audit import report

PROGRESS_FROM = 200      # due timers before a progress bar is worth drawing


@cli.group()
def sla() -> None:
    """SLA clocks and timers: fire due timers, report compliance.

    \b
    Example:
      caseflow --as jiang.wen sla run
      caseflow --as jiang.wen sla status
    """


@sla.command("run")
@click.option("--batch", default=200, show_default=True, type=click.IntRange(1),
              help="Due timers read per query.")
@click.option("--limit", type=click.IntRange(1), help="Stop after handling this many timers.")
@click.option("--recompute", is_flag=True,
              help="First recompute every provisional deadline (after updating the holiday data).")
@pass_app
def run(app: App, batch: int, limit: int | None, recompute: bool) -> None:
    """Fire every due timer exactly once; safe from cron and as several processes at once.

    \b
    Example:
      caseflow --as jiang.wen sla run          # from cron, e.g. every 5 minutes
      caseflow --as jiang.wen --now 2025-03-04T10:01 sla run --json
    """
    from caseflow.runtime.sweep import count_due, recompute_provisional, sweep
    engine = app.engine
    now = engine.now()
    moved = recompute_provisional(engine, now) if recompute else 0
    total = min(count_due(engine, now), limit or sys.maxsize) if _tty(app) else 0
    with _progress(total) as advance:
        report = sweep(engine, now, batch=batch, limit=limit, progress=advance)
    payload = {**report.as_dict(), "recomputed": moved}
    app.out(payload, _render_run(payload))
    for f in report.failures:
        click.echo(f"error: timer {f['timer']}: {f['error']}: {one_line(f['message'])} (left for the next run)",
                   err=True)
    if report.failures:
        raise click.exceptions.Exit(1)


def _tty(app: App) -> bool:
    return not app.as_json and sys.stdout.isatty()


@contextmanager
def _progress(total: int) -> Iterator[Any]:
    """A rich progress bar on a terminal with many due timers; otherwise nothing."""
    if total < PROGRESS_FROM:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    with Progress("sla run", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("timers", total=total)
        yield lambda n: bar.advance(task, n)


def _render_run(r: dict[str, Any]) -> str:
    line = (f"handled {r['handled']} due timer(s) in {r['seconds']:.2f}s: {r['fired']} fired, "
            f"{r['breached']} breached, {r['warnings']} warning(s)")
    extra = [f"{r[k]} {k}" for k in ("rescheduled", "rejudged", "cancelled", "skipped", "busy", "recomputed") if r[k]]
    if r["failures"]:
        extra.append(f"{len(r['failures'])} failed")
    return line + (f"; {', '.join(extra)}" if extra else "")


@click.command("sla")
@click.option("--workflow", help="Only this workflow (default: all).")
@click.option("--month", metavar="YYYY-MM", help="Only windows opened in this month (the workflow's zone).")
@click.option("--since", help="Only windows opened at or after this time (ISO 8601 or YYYY-MM-DD, local time).")
@click.option("--until", help="Only windows opened before this time; a bare date includes that day.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]),
              help="Output format (default table; --json means json).")
@pass_app
def compliance(app: App, workflow: str | None, month: str | None, since: str | None, until: str | None,
               fmt: str | None) -> None:
    """SLA compliance per workflow, clock and month, counted per window.

    Each start or restart of an SLA clock is a window that ends met, late or
    breached; a window open and past due counts as breached now (the cases
    `list --overdue` shows). `caseflow sla status` is the same command.

    \b
    Example:
      caseflow --as jiang.wen report sla --workflow refund --month 2025-03
      caseflow --as jiang.wen sla status --since 2025-01-01 --until 2025-03-31 --format csv
    """
    from caseflow.audit.query import default_tz, parse_bound, to_csv, to_table
    from caseflow.sla.compliance import COLUMNS
    from caseflow.views.reports import month_range
    from caseflow.views.reports import sla as build
    tz = default_tz(app.engine, workflow)
    start, end = parse_bound(since, tz), parse_bound(until, tz, end=True)
    if month:
        first, after = month_range(month, tz)
        start, end = max(first, start or first), min(after, end or after)
    rows = build(app.engine, workflow, start, end)
    chosen = fmt or ("json" if app.as_json else "table")
    if chosen == "json":
        app.as_json = True
        app.out(rows, "")
    elif chosen == "csv":
        click.echo(to_csv(rows, COLUMNS), nl=False)
    else:
        cols = [("workflow", "流程"), ("label_zh", "时限"), ("within", "要求"), ("month", "月份"),
                ("windows", "窗口"), ("met", "按时"), ("breached", "超时"), ("overdue", "其中仍逾期"),
                ("running", "进行中"), ("cancelled", "取消"), ("clocks", "时钟"), ("clocks_breached", "曾超时时钟"),
                ("on_time_pct", "按时率%")]
        title = f"时限达成情况（按窗口）{month or ''}".rstrip()
        click.echo(f"{title}\n" + (to_table(rows, cols) if rows else "(no SLA windows)"))


report.add_command(compliance, "sla")        # the report, beside the other reports
sla.add_command(compliance, "status")        # kept as an alias: the same command, options and output
