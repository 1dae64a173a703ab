"""`caseflow init` and `caseflow schema`: a starter workflows directory, the files' JSON Schemas."""

from __future__ import annotations

import click

from caseflow.cli.app import App, cli, pass_app


@cli.command()
@click.argument("directory", default="workflows", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@pass_app
def init(app: App, directory: str, force: bool) -> None:
    """Write a starter workflows DIRECTORY (default ./workflows) to edit and validate.

    It holds the shipped processes, org.yaml and calendars.yaml, and their JSON
    Schemas in DIRECTORY/schemas/, which the files' editor modelines point at.
    Nothing is overwritten unless --force.

    \b
    Example:
      caseflow init wf
      caseflow --workflows wf validate
    """
    from caseflow.starter import write_starter
    written = write_starter(directory, force)
    payload = {"directory": directory, "files": [str(p) for p in written]}
    app.out(payload, "\n".join(str(p) for p in written) +
            f"\nnext: caseflow --workflows {directory} validate   (or export CASEFLOW_WORKFLOWS={directory})")


@cli.command("schema")
@click.argument("kind", type=click.Choice(["workflow", "org", "calendars"]), default="workflow")
def schema_cmd(kind: str) -> None:
    """Print the JSON Schema (draft 2020-12) of a workflow file, org.yaml or calendars.yaml.

    \b
    Example:
      caseflow schema > workflow.schema.json
      caseflow schema org
    """
    from caseflow.starter import schema_text
    click.echo(schema_text(kind), nl=False)
