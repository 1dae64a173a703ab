"""`caseflow import`: open many cases from a .csv or .jsonl file. Parse, call the library, print."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from caseflow.cli.app import App, cli, note_option, one_line, pass_app

PROGRESS_FROM = 200      # rows before a progress bar is worth drawing


@cli.command("import")
@click.argument("workflow")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1), help="Rows per transaction.")
@click.option("--from-line", default=1, type=click.IntRange(1), metavar="N",
              help="Skip the rows that start before line N (to go on after an import that stopped).")
@note_option
@pass_app
def import_cmd(app: App, workflow: str, file: str, batch: int, from_line: int, note: str | None) -> None:
    """Open one case per row of a .csv (header = field names) or .jsonl file (one JSON object per line).

    Each row is checked and audited exactly as `caseflow open` would; a refused
    row is reported with its line number and nothing of it is written, the
    other rows are opened. Exit 1 if any row was refused. An import stopped
    part-way (database gone, lock wait, Ctrl-C) keeps the batches it committed
    and names the line to go on from: run it again with --from-line N (the
    exit code is the cause's).

    \b
    Example:
      echo 'order_no,customer_name,contract_amount,amount_paid,work_started' > in.csv
      echo 'D-7,王建国,86000,20000,false' >> in.csv
      echo 'D-8,李娜,52000,10000,false' >> in.csv
      caseflow --as wang.fang import refund in.csv --from-line 3
    """
    from caseflow.runtime.bulk import import_cases, read_rows
    total = _count_rows(file) if not app.as_json and sys.stderr.isatty() else 0
    skipped = max(from_line - (2 if file.lower().endswith(".csv") else 1), 0)      # (the CSV header is line 1)
    with _progress(max(total - skipped, 0)) as advance:
        report = import_cases(app.engine, workflow, app.user, read_rows(file), batch=batch, note=note,
                              progress=advance, from_line=from_line)
    payload = report.as_dict()
    app.out(payload, f"opened {len(report.opened)} {workflow} case(s) in {report.seconds:.2f}s"
                     + (f"; {len(report.refused)} row(s) refused" if report.refused else ""))
    for r in report.refused:
        click.echo(f"error: line {r['line']}: {one_line(r['message'])}", err=True)
    if report.refused:
        raise click.exceptions.Exit(1)


def _count_rows(file: str) -> int:
    try:
        with Path(file).open("rb") as f:
            return max(sum(1 for _ in f) - (1 if file.lower().endswith(".csv") else 0), 0)
    except OSError:
        return 0


@contextmanager
def _progress(total: int) -> Iterator[Any]:
    """A rich progress bar on a terminal for a large file; otherwise nothing."""
    if total < PROGRESS_FROM:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    with Progress("import", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("rows", total=total)
        yield lambda n: bar.advance(task, n)
