"""`caseflow sla …`: run the sweeper, summarise compliance. Parse, call the library, print."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from caseflow.cli.app import App, cli, pass_app
from caseflow.errors import UsageError
from caseflow.values import ValueProblem, parse_datetime

PROGRESS_FROM = 200      # due timers before a progress bar is worth drawing


@cli.group()
def sla() -> None:
    """SLA clocks and timers: fire due timers, report compliance."""


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
      */5 * * * *  caseflow sla run
      caseflow --now 2025-01-26T10:01 sla run --json
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
        click.echo(f"error: timer {f['timer']}: {f['error']}: {f['message']} (left for the next run)", err=True)
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
    extra = [f"{r[k]} {k}" for k in ("rescheduled", "cancelled", "skipped", "busy", "recomputed") if r[k]]
    if r["failures"]:
        extra.append(f"{len(r['failures'])} failed")
    return line + (f"; {', '.join(extra)}" if extra else "")


@sla.command("status")
@click.option("--workflow", help="Only this workflow.")
@click.option("--since", help="Only clocks started at or after this time (ISO 8601, local time).")
@click.option("--until", help="Only clocks started before this time.")
@pass_app
def status(app: App, workflow: str | None, since: str | None, until: str | None) -> None:
    """Compliance per workflow and SLA: met on time, breached, running, % on time.

    \b
    Example:
      caseflow sla status --workflow complaint --since 2025-01-01 --until 2025-02-01
    """
    from caseflow.sla.clocks import sla_compliance
    tz = app.engine.catalog.get(workflow).tz if workflow else ZoneInfo("Asia/Shanghai")
    rows = sla_compliance(app.engine, workflow, _when(since, "--since", tz), _when(until, "--until", tz))
    app.out(rows, _render_status(rows))


def _when(text: str | None, option: str, tz: ZoneInfo) -> datetime | None:
    if not text:
        return None
    try:
        return parse_datetime(text, tz)
    except ValueProblem as exc:
        raise UsageError(f"{option}: {exc}") from None


def _render_status(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no SLA clocks yet)"
    head = (f"{'workflow':<14} {'sla':<18} {'met':>6} {'breached':>8} {'overdue':>7} {'running':>7} "
            f"{'on time':>8}  label")
    lines = [head]
    for r in rows:
        pct = f"{r['on_time_pct']:.1f}%" if r["on_time_pct"] is not None else "-"
        lines.append(f"{r['workflow']:<14} {r['sla']:<18} {r['met']:>6} {r['breached']:>8} {r['overdue']:>7} "
                     f"{r['running']:>7} {pct:>8}  {r['label_zh']}")
    return "\n".join(lines)
