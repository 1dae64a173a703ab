"""`caseflow export …`: event logs for process-mining tools (XES, OCEL 2.0, CSV) and their verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from caseflow.cli.app import App, cli, pass_app, unmask_option
from caseflow.cli.audit import force_option, output_file, output_option
from caseflow.errors import UsageError

SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


@cli.group(invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["xes", "ocel", "csv"]), help="xes (IEEE 1849), ocel "
              "(OCEL 2.0 JSON; SQLite when -o ends in .sqlite/.db) or csv (one line per activity).")
@click.option("--workflow", help="Only this workflow's cases.")
@click.option("--since", help="Rows from this time (ISO 8601 or YYYY-MM-DD, in the workflow's zone).")
@click.option("--until", help="Rows before this time; a bare date includes that whole day.")
@click.option("--bom", is_flag=True, help="Start CSV with a UTF-8 BOM, for Excel.")
@output_option
@force_option
@unmask_option
@pass_app
@click.pass_context
def export(ctx: click.Context, app: App, fmt: str | None, workflow: str | None, since: str | None,
           until: str | None, bom: bool, output: str | None, force: bool, unmask: bool) -> None:
    """The audit log as an event log process-mining tools read (Disco, Celonis, ProM, pm4py).

    Personal data is masked exactly as `caseflow audit` masks it; a masked
    export carries no hashes. `--unmask` (roles with can_unmask; logged)
    exports every row with its hash and previous hash, which
    `caseflow export verify FILE` recomputes.

    \b
    Example:
      caseflow --as jiang.wen export --format xes --workflow refund -o refunds.xes
      caseflow --as jiang.wen export --format ocel --since 2025-03-01 --until 2025-03-31 -o march.sqlite
      caseflow --as jiang.wen export --format csv --unmask -o audit.csv
    """
    if ctx.invoked_subcommand is not None:
        given = [name for name, value in ctx.params.items() if value not in (None, False)]
        if given:
            raise UsageError(f"--{given[0].replace('fmt', 'format')} is an option of the export; it does not "
                             f"apply to `caseflow export {ctx.invoked_subcommand}`")
        return
    if fmt is None:
        raise UsageError("--format is required: xes, ocel or csv (e.g. caseflow export --format xes -o log.xes)")
    if bom and fmt != "csv":
        raise UsageError("--bom applies to --format csv only")
    output_file(app, output, force)
    from caseflow.audit.export_log import ExportQuery, collect
    from caseflow.audit.query import default_tz, parse_bound
    sqlite = fmt == "ocel" and output is not None and Path(output).suffix.lower() in SQLITE_SUFFIXES
    tz = default_tz(app.engine, workflow)
    q = ExportQuery(workflow, parse_bound(since, tz), parse_bound(until, tz, end=True))
    log = collect(app.engine, q, app.user, unmask, what=f"caseflow export --format {fmt}")
    if sqlite:
        from caseflow.audit.export_ocel import write_sqlite
        assert output is not None
        write_sqlite(log, Path(output))
        click.echo(f"wrote {output}", err=True)
        return
    body = _render(log, fmt, bom)
    if output:
        Path(output).write_bytes(body)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(body, nl=False)          # bytes go to the binary stream as they are


def _render(log: Any, fmt: str, bom: bool) -> bytes:
    if fmt == "xes":
        from caseflow.audit.export_xes import write
        return write(log)
    if fmt == "ocel":
        from caseflow.audit.export_ocel import write_json
        return write_json(log).encode("utf-8")
    from caseflow.audit.export_csv import write as write_csv
    return write_csv(log, bom).encode("utf-8")


@export.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def verify(app: App, file: str) -> None:
    """Recompute every hash chain in an export file; exit 0 only if each row and link is intact.

    Needs no database: the file alone is checked. The first broken row is
    named (case and seq). A masked export has no hashes and cannot be verified.

    \b
    Example:
      caseflow --as jiang.wen export --format xes --unmask -o refunds.xes
      caseflow export verify refunds.xes
    """
    from caseflow.audit.export_verify import verify_file
    report = verify_file(Path(file))
    app.out(report.as_dict(), _render_verify(report))
    if not report.ok:
        raise click.exceptions.Exit(1)


def _render_verify(report: Any) -> str:
    summary = f"{report.cases} cases, {report.rows} rows ({report.format})"
    if report.ok:
        return f"ok: every chain intact — {summary}"
    if not report.problems:
        why = "no rows" if not report.rows else (f"{report.rows - report.hashed} of {report.rows} rows carry no "
                                                 f"hash (a masked export cannot be verified; export with --unmask)")
        return f"FAILED: nothing to prove — {why}"
    lines = [f"✘ {p}" for p in report.problems]
    first = report.first
    lines.append(f"FAILED: {len(report.problems)} problem(s) in {summary}; first broken row: {first.case_id} "
                 f"row {first.seq}")
    return "\n".join(lines)
