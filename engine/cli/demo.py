"""`caseflow demo`: the sample run, each time on a database of its own."""

from __future__ import annotations

from pathlib import Path

import click

from caseflow.cli.app import App, cli, pass_app
from caseflow.errors import UsageError


@cli.command()
@pass_app
def demo(app: App) -> None:
    """Run sample cases through all three shipped processes and show the result.

    Each run writes a fresh SQLite file in the current directory
    (caseflow-demo-1.db, -2.db, …) and names it; with --db or CASEFLOW_DB it
    uses that database, which must have no cases yet.

    \b
    Example:
      caseflow demo
      caseflow demo            # again: a second, separate database
    """
    from caseflow.demo.story import check_empty, fresh_database, run_demo
    app.simulation, app.anonymous = True, True      # a demo database is a simulation of its own
    own = app.db is None
    if own:
        app.db = f"sqlite:///{fresh_database(Path.cwd()).name}"
        click.echo(f"demo database: {app.db} (a fresh file for this run)")
    else:
        check_empty(app.engine)
    ids, unexpected = run_demo(app.engine, click.echo)
    first = ids["refund"][0] if ids["refund"] else "CASE"
    db = f"--db {app.engine.store.url} " if own else ""
    click.echo(f"\ndone: {sum(len(v) for v in ids.values())} cases in {app.engine.store.url}")
    click.echo(f"next: caseflow {db}--as wang.fang show {first}   |   caseflow {db}--as jiang.wen history {first}")
    if unexpected:
        raise UsageError(f"the demo hit {len(unexpected)} unexpected refusal(s); first: {unexpected[0].strip()}")
