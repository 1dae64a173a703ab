"""The `caseflow` command line: parse, make one Engine call, print.

No logic lives here. The global options (--db, --workflows, --as, --now,
--json) are accepted before and after the subcommand. Every `CaseflowError` becomes one `error:` line on
stderr and its class's exit code (1 refused, 2 usage, 3 concurrent change,
4 not found, 5 database, 6 lock wait timed out) in one place, `CaseflowGroup.invoke`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from caseflow.errors import CaseflowError, DefinitionErrors, UsageError
from caseflow.values import ValueProblem, check_text, parse_datetime

# psycopg logs "error ignored terminating …" when a connection dies; our one error line is enough
logging.getLogger("psycopg").addHandler(logging.NullHandler())
logging.getLogger("psycopg").propagate = False


# Commands over the whole log or every workflow: they need a role with can_audit (docs/security.md).
# `audit` (the listing) checks it in the library, after an --unmask refusal has been said and recorded.
AUDITOR_COMMANDS = frozenset({"audit verify", "audit checkpoint", "report complaints", "report signoffs",
                              "report sla", "sla status"})


class App:
    """Lazily built pieces: `validate` needs no database, `show` needs no write."""

    def __init__(self, db: str | None, workflows: str | None, user: str | None, now: str | None,
                 as_json: bool, simulation: bool = False, lock_timeout: str | None = None) -> None:
        self.db, self.workflows_dir, self.user, self.as_json = db, workflows, user, as_json
        self.fixed_now = _parse_now(now) if now else None
        self.now_is_local = now is not None and _naive(now)     # no offset: read in the workflows' zone
        self.simulation, self.lock_timeout = simulation, lock_timeout  # as a simulation (--now counts); lock wait
        self.anonymous = False           # `demo`: acts as the story's people, not as --as
        self.person = None               # who runs this command, identified when the engine is built
        self._catalog = None
        self._engine = None

    def set_global(self, name: str, value: Any) -> None:
        """A global option given after the subcommand (`caseflow show X --json`): it wins over the group's."""
        if name == "now":
            self.fixed_now, self.now_is_local = _parse_now(value), _naive(value)
        elif name == "json":
            self.as_json = self.as_json or bool(value)
        elif name == "simulation":
            self.simulation = self.simulation or bool(value)
        else:
            setattr(self, {"workflows": "workflows_dir", "as": "user"}.get(name, name.replace("-", "_")), value)

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
            what = " ".join(ctx.command_path.split()[1:]) if (ctx := click.get_current_context(silent=True)) else ""
            from caseflow.cli.opening import READ_ONLY_COMMANDS, open_store
            store = open_store(self.db, self.lock_timeout, readonly=what in READ_ONLY_COMMANDS)
            if ctx is not None:                     # the pools close with the command, refused or not
                ctx.find_root().call_on_close(store.dispose)
            if store.backend.has_logins:            # the runtime role owns nothing: `db init` migrates
                from caseflow.store.migrate import require_current
                require_current(store)
            else:
                store.migrate(simulation=self.simulation)
            engine = Engine(store, self.catalog, (lambda: self.fixed_now) if self.fixed_now else None)
            if self.fixed_now is not None and self.now_is_local:    # as every other time an operator types
                from caseflow.audit.query import default_tz
                local = self.fixed_now.replace(tzinfo=default_tz(engine, None))
                self.fixed_now = local.astimezone(UTC)
            self._catalog = engine.catalog          # the org chart stored in the database, not the file's
            if not self.anonymous:                  # every command, reads included, needs a known person
                self.person = engine.identify(self.user, what or "caseflow")
                if what in AUDITOR_COMMANDS:
                    from caseflow.views.access import require_audit
                    require_audit(engine, self.person, what)
            self._engine = engine
        return self._engine

    def out(self, payload: Any, human: str) -> None:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2) if self.as_json else human)


def _naive(text: str) -> bool:
    try:
        return datetime.fromisoformat(str(text).strip().replace("Z", "+00:00")).tzinfo is None
    except ValueError:
        return False


def _parse_now(text: str) -> datetime:
    try:
        return parse_datetime(text, None).astimezone(UTC)
    except ValueProblem as exc:
        raise UsageError(f"--now: {exc}") from None


def one_line(text: str) -> str:
    """Whatever an operator typed, an error stays one printable line, with phone and ID numbers masked."""
    from caseflow.masking import mask_text
    from caseflow.terminal import escape
    return mask_text(escape(text.replace("\n", " ").strip())) or ""


def _check_args(args: list[str]) -> None:
    for arg in args:
        check_text(arg, f"argument {arg[:40]!r}")
    user = os.environ.get("CASEFLOW_USER")
    if user:
        check_text(user, "CASEFLOW_USER")


# The global options (flag, name, env var, help), before and after the subcommand: copies are put on
# each command as the group looks it up (`CaseflowGroup.get_command`), whichever module registered it.
GLOBAL_OPTIONS = [
    ("--db", "db", "CASEFLOW_DB", "Database URL (default sqlite:///caseflow.db)."),
    ("--workflows", "workflows", "CASEFLOW_WORKFLOWS",
     "Workflows directory (default ./workflows if it has an org.yaml, else the shipped ones)."),
    ("--as", "user", "CASEFLOW_USER", "Act as this user (from org.yaml)."),
    ("--now", "now", "CASEFLOW_NOW", "Act as if at this ISO 8601 time (simulation databases only; without an "
     "offset, in the workflows' zone)."),
    ("--simulation", "simulation", "CASEFLOW_SIMULATION",
     "Create the database as a simulation (training, tests): only there is --now honoured."),
    ("--lock-timeout", "lock_timeout", "CASEFLOW_LOCK_TIMEOUT",
     "Seconds to wait for a database lock held by another process (default 30); then exit 6, nothing changed."),
    ("--json", "as_json", None, "Machine-readable output."),
]
FLAGS = ("--json", "--simulation")


class GlobalOption(click.Option):
    """A copy of a global option on a subcommand; sets the App only when typed on the command line."""

    def __init__(self, flag: str, envvar: str | None, help_text: str) -> None:
        kind: dict[str, Any] = {"is_flag": True, "default": False} if flag in FLAGS else {}
        super().__init__([flag, "global_" + flag[2:].replace("-", "_")], expose_value=False, envvar=envvar,
                         show_envvar=bool(envvar), help=help_text, callback=_late_global, **kind)
        self.flag = flag


def _late_global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if ctx.resilient_parsing or param.name is None:
        return
    if ctx.get_parameter_source(param.name) is not click.core.ParameterSource.COMMANDLINE:
        return
    app = ctx.find_object(App)
    if app is not None and isinstance(param, GlobalOption):
        app.set_global(param.flag[2:], value)


def _add_globals(command: click.Command) -> None:
    taken = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for flag, _name, envvar, help_text in GLOBAL_OPTIONS:
        if flag not in taken:
            command.params.append(GlobalOption(flag, envvar, help_text))


def _spread_globals(group: click.Group) -> None:
    for command in group.commands.values():
        _add_globals(command)
        if isinstance(command, click.Group):
            _spread_globals(command)


# Run over the whole tree before completing (completion.py attaches what TAB offers) and for docs/cli.md.
PREPARE: list[Callable[[click.Group], None]] = []


def prepare_tree(group: click.Group) -> None:
    """Global options onto every command, then each PREPARE step; idempotent."""
    _spread_globals(group)
    for prepare in PREPARE:
        prepare(group)


class CaseflowCommand(click.Command):
    """A command whose --help lists the global options apart from its own."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _format_split_options(self, ctx, formatter)


def _format_split_options(command: click.Command, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    own = [p.get_help_record(ctx) for p in command.get_params(ctx)
           if isinstance(p, click.Option) and not isinstance(p, GlobalOption)]
    shared = [p.get_help_record(ctx) for p in command.get_params(ctx) if isinstance(p, GlobalOption)]
    if any(own):
        with formatter.section("Options"):
            formatter.write_dl([r for r in own if r])
    if any(shared):
        with formatter.section("Global options (also accepted before the command)"):
            formatter.write_dl([r for r in shared if r])
    if isinstance(command, click.Group):
        command.format_commands(ctx, formatter)


class CaseflowGroup(click.Group):
    command_class = CaseflowCommand
    group_class = type          # subgroups are CaseflowGroups too

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _format_split_options(self, ctx, formatter)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command with the global options on it, added when it is first looked up (a call
        resolves one path of the tree, so start-up does not pay for every command)."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _add_globals(command)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """A bare group (`caseflow`, `caseflow sla`) prints its help and exits 0, like `--help`."""
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        """Like click's, but every usage error is one `error:` line too (exit 2)."""
        extra.pop("standalone_mode", None)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            _check_args(argv)
            if "_CASEFLOW_COMPLETE" in os.environ:      # TAB: completion walks the whole tree
                prepare_tree(self)
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
        except BrokenPipeError:             # `caseflow list | head`: the reader stopped reading
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush is quiet too
            ctx.exit(0)
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


EPILOG = ("Exit codes: 0 done, 1 refused, 2 usage or invalid workflow file, 3 changed by someone else (retry), "
          "4 not found, 5 database unreachable, 6 database lock wait timed out, 70 internal error, 130 interrupted.")


def _global_options(f: Any) -> Any:
    for flag, name, envvar, help_text in reversed(GLOBAL_OPTIONS):
        kind: dict[str, Any] = {"is_flag": True} if flag in FLAGS else {}
        f = click.option(flag, name, envvar=envvar, show_envvar=bool(envvar), help=help_text, **kind)(f)
    return f


@click.group("caseflow", cls=CaseflowGroup, epilog=EPILOG)
@_global_options
@click.version_option(package_name="caseflow")
@click.pass_context
def cli(ctx: click.Context, db: str | None, workflows: str | None, user: str | None, now: str | None,
        simulation: bool, lock_timeout: str | None, as_json: bool) -> None:
    """caseflow — customer-service casework run from YAML workflows.

    Global options go before or after the command (`caseflow --json show X` is
    `caseflow show X --json`). `caseflow COMMAND --help` explains each command.

    \b
    Example:
      caseflow demo
      caseflow --as wang.fang list --workflow refund
    """
    ctx.obj = App(db, workflows, user, now, as_json, simulation, lock_timeout)


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
    """A --data file: regular, at most 1 MB, 64 levels deep, no duplicate keys, storable text (datafile.py)."""
    if not path:
        return {}
    from caseflow.datafile import load_data, read_limited
    try:
        return load_data(read_limited(path))
    except ValueProblem as exc:
        raise UsageError(f"--data {path}: {exc}") from None


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
      caseflow --as wang.fang open refund --set order_no=D-1 --set customer_name=王建国 \\
          --set contract_amount=86000 --set amount_paid=20000 --set work_started=true
    """
    with app.engine.attempting("open", None, app.user, workflow):     # a refused file is an attempt too
        data = load_data_file(data_file)
    result = app.engine.open(workflow, app.user, parse_sets(sets), data, note)
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
      caseflow --as wang.fang advance REF-1A2B3C4D start_after_work
      caseflow --as song.tao advance REF-1A2B3C4D measure --set completed_work_value=1200
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
      caseflow --as huang.lei sign REF-1A2B3C4D
      caseflow --as gao.feng sign REF-1A2B3C4D --reject --note "设计费应扣除"
    """
    r = app.engine.sign(case_id, app.user, reject, note)
    verb = "rejected" if reject else ("signed; transition fired" if r["fired"] else "signed")
    app.out(r, f"{case_id}: {verb} → {r['state']}")


__all__ = ["cli", "App", "pass_app"]
