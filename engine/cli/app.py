"""The `caseflow` command line: parse, make one Engine call, print.

No logic lives here. Every `CaseflowError` becomes one `error:` line on
stderr and its class's exit code (1 refused, 2 usage, 3 concurrent change,
4 not found, 5 database) in one place, `CaseflowGroup.invoke`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from caseflow.errors import CaseflowError, DefinitionErrors, UsageError
from caseflow.values import ValueProblem, check_text, parse_datetime

# psycopg logs "error ignored terminating …" when a connection dies; our one error line is enough
logging.getLogger("psycopg").addHandler(logging.NullHandler())
logging.getLogger("psycopg").propagate = False


class App:
    """Lazily built pieces: `validate` needs no database, `show` needs no write."""

    def __init__(self, db: str | None, workflows: str | None, user: str | None, now: str | None,
                 as_json: bool) -> None:
        self.db, self.workflows_dir, self.user, self.as_json = db, workflows, user, as_json
        self.fixed_now = _parse_now(now) if now else None
        self._catalog = None
        self._engine = None

    @property
    def catalog(self):  # noqa: ANN201
        if self._catalog is None:
            from caseflow.catalog import Catalog
            self._catalog = Catalog.load(self.workflows_dir)
        return self._catalog

    @property
    def engine(self):  # noqa: ANN201
        if self._engine is None:
            from caseflow.runtime.engine import Engine
            from caseflow.store.database import Store
            store = Store(self.db)
            store.migrate()
            clock = (lambda: self.fixed_now) if self.fixed_now else None
            self._engine = Engine(store, self.catalog, clock)
        return self._engine

    def out(self, payload: Any, human: str) -> None:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2) if self.as_json else human)


def _parse_now(text: str) -> datetime:
    try:
        return parse_datetime(text, None).astimezone(UTC)
    except ValueProblem as exc:
        raise UsageError(f"--now: {exc}") from None


def one_line(text: str) -> str:
    """Whatever an operator typed, an error stays one printable line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text.replace("\n", " ").strip())


def _check_args(args: list[str]) -> None:
    for arg in args:
        check_text(arg, f"argument {arg[:40]!r}")
    user = os.environ.get("CASEFLOW_USER")
    if user:
        check_text(user, "CASEFLOW_USER")


class CaseflowGroup(click.Group):
    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        """Like click's, but every usage error is one `error:` line too (exit 2)."""
        extra.pop("standalone_mode", None)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            _check_args(argv)
            code = super().main(args=argv, prog_name=prog_name, standalone_mode=False, **extra)
        except ValueProblem as exc:
            click.echo(f"error: {one_line(str(exc))}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DefinitionErrors as exc:
            for e in exc.errors:
                click.echo(f"error: {one_line(str(e))}", err=True)
            ctx.exit(exc.exit_code)
        except CaseflowError as exc:
            click.echo(f"error: {one_line(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted; the current action was rolled back", err=True)
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - a traceback is never an operator's answer
            if os.environ.get("CASEFLOW_DEBUG"):
                raise
            line = one_line(str(exc).strip().splitlines()[0]) if str(exc).strip() else ""
            click.echo(f"error: internal error ({type(exc).__name__}: {line}); nothing was changed "
                       "(set CASEFLOW_DEBUG=1 for details)", err=True)
            ctx.exit(70)


pass_app = click.make_pass_decorator(App)


@click.group(cls=CaseflowGroup)
@click.option("--db", envvar="CASEFLOW_DB", help="Database URL (default sqlite:///caseflow.db).")
@click.option("--workflows", envvar="CASEFLOW_WORKFLOWS", help="Workflows directory (default ./workflows).")
@click.option("--as", "user", envvar="CASEFLOW_USER", help="Act as this user (from org.yaml).")
@click.option("--now", envvar="CASEFLOW_NOW", help="Act as if at this ISO 8601 time.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.version_option(package_name="caseflow")
@click.pass_context
def cli(ctx: click.Context, db: str | None, workflows: str | None, user: str | None, now: str | None,
        as_json: bool) -> None:
    """caseflow — customer-service casework run from YAML workflows."""
    ctx.obj = App(db, workflows, user, now, as_json)


def parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE")
        if key.strip() in out:
            raise UsageError(f"--set {key.strip()}: given twice")
        out[key.strip()] = value
    return out


def load_data_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--data {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--data {path}: expected a JSON object")
    _check_json_text(data, path)
    return data


def _check_json_text(value: Any, path: str) -> None:
    """Keys and strings from a --data file must be storable text (no NUL, no lone surrogates)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        for text in (key, item):
            if isinstance(text, str):
                try:
                    check_text(text, "a value")
                except ValueProblem as exc:
                    raise UsageError(f"--data {path}: {exc}") from None
        if isinstance(item, (dict, list)):
            _check_json_text(item, path)


set_option = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Set a field or event input.")
note_option = click.option("--note", help="A note for the audit log.")
unmask_option = click.option("--unmask", is_flag=True, help="Show personal data (needs a permitted role; logged).")


@cli.command("open")
@click.argument("workflow")
@set_option
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="Initial data as a JSON file.")
@note_option
@pass_app
def open_cmd(app: App, workflow: str, sets: tuple[str, ...], data_file: str | None, note: str | None) -> None:
    """Open a new case; prints its id.

    \b
    Example:
      caseflow --as wang.fang open refund --set order_no=D-1 --set amount_paid=5000
    """
    result = app.engine.open(workflow, app.user, parse_sets(sets), load_data_file(data_file), note)
    app.out(result, result["id"])


@cli.command()
@click.argument("case_id")
@click.argument("event")
@set_option
@note_option
@pass_app
def advance(app: App, case_id: str, event: str, sets: tuple[str, ...], note: str | None) -> None:
    """Fire EVENT on a case.

    \b
    Example:
      caseflow --as zhao.lei advance REF-1A2B3C4D measure --set completed_work_value=1200
    """
    r = app.engine.advance(case_id, event, app.user, parse_sets(sets), note)
    d = app.catalog.current.get(r["workflow"])
    label = d.label(r["state"]) if d else r["state"]
    app.out(r, f"{case_id}: {event} → {label}")


@cli.command()
@click.argument("case_id")
@click.option("--reject", is_flag=True, help="Reject: send the case back and clear the signatures.")
@note_option
@pass_app
def sign(app: App, case_id: str, reject: bool, note: str | None) -> None:
    """Sign (or --reject) the sign-off the case is waiting for.

    \b
    Example:
      caseflow --as chen.jing sign REF-1A2B3C4D
      caseflow --as chen.jing sign REF-1A2B3C4D --reject --note "金额有误"
    """
    r = app.engine.sign(case_id, app.user, reject, note)
    verb = "rejected" if reject else ("signed; transition fired" if r["fired"] else "signed")
    app.out(r, f"{case_id}: {verb} → {r['state']}")


@cli.command()
@pass_app
def demo(app: App) -> None:
    """Run sample cases through all three shipped processes and show the result.

    \b
    Example:
      caseflow demo            # creates ./caseflow.db on first use
    """
    from caseflow.demo.story import run_demo
    ids, unexpected = run_demo(app.engine, click.echo)
    first = ids["refund"][0] if ids["refund"] else "CASE"
    click.echo(f"\ndone: {sum(len(v) for v in ids.values())} cases in {app.engine.store.url}")
    click.echo(f"next: caseflow --as wang.fang show {first}   |   caseflow --as jiang.wen history {first}")
    if unexpected:
        raise UsageError(f"the demo hit {len(unexpected)} unexpected refusal(s); first: {unexpected[0].strip()}")


__all__ = ["cli", "App", "pass_app"]
