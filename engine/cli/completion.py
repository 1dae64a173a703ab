"""`caseflow completion bash|zsh|fish`, and what TAB offers: workflow ids, case ids, events, users.

Completion runs on every TAB press, before any command: it reads the workflows directory
and the database that --workflows/--db (or CASEFLOW_WORKFLOWS/CASEFLOW_DB) name, never
creates or migrates a database, and offers nothing rather than fail. The values are
attached by parameter name (CASE_ID, WORKFLOW, EVENT, --as, --workflow) to every
registered command, so commands added later complete the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

from caseflow.cli import app as cli_app
from caseflow.cli.app import cli

SHELLS = ["bash", "zsh", "fish"]
PROG = "caseflow"


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL; TAB then completes commands, options,
    workflow ids, case ids, the events possible in a case's state, and user ids.

    \b
    Example:
      caseflow completion bash > ~/.caseflow-complete.bash   # then in ~/.bashrc: . ~/.caseflow-complete.bash
      caseflow completion zsh      # in ~/.zshrc: eval "$(caseflow completion zsh)"
      caseflow completion fish     # caseflow completion fish > ~/.config/fish/completions/caseflow.fish
    """
    cls = get_completion_class(shell)
    assert cls is not None          # click ships all three
    click.echo(cls(cli, {}, PROG, "_CASEFLOW_COMPLETE").source())


# -- what TAB offers ---------------------------------------------------------------------------

def _settings(ctx: click.Context) -> dict[str, Any]:
    """--db/--workflows/--as as typed on the line (anywhere) or from the environment."""
    found: dict[str, Any] = {}
    c: click.Context | None = ctx
    while c is not None:
        for key in ("db", "workflows", "user"):
            if found.get(key) is None and c.params.get(key) is not None:
                found[key] = c.params[key]
        c = c.parent
    return found


def _catalog(ctx: click.Context) -> Any:
    from caseflow.catalog import Catalog
    return Catalog.load(_settings(ctx).get("workflows"))


def _store(ctx: click.Context) -> Any:
    """The database, only if it already exists (a TAB must not create caseflow.db)."""
    from caseflow.store.database import DEFAULT_URL, Store
    url = _settings(ctx).get("db") or DEFAULT_URL
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    return Store(url, readonly=True)


def _quiet(offer: Callable[[click.Context, str], list[CompletionItem]]) -> Any:
    """A completion that cannot read its sources offers nothing instead of printing a traceback."""
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        try:
            return offer(ctx, incomplete)
        except Exception:  # noqa: BLE001 - a TAB press must never print an error into the command line
            return []
    return complete


@_quiet
def complete_workflow(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    catalog = _catalog(ctx)
    return [CompletionItem(w, help=_label(catalog, w)) for w in catalog.current if w.startswith(incomplete)]


def _label(catalog: Any, workflow: str) -> str | None:
    try:
        return str(catalog.current[workflow].label_zh)
    except Exception:  # noqa: BLE001 - a broken file still completes by name
        return None


@_quiet
def complete_case(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    import sqlalchemy as sa

    from caseflow.store.tables import cases
    store = _store(ctx)
    if store is None:
        return []
    q = (sa.select(cases.c.id, cases.c.state).where(cases.c.id.startswith(incomplete.upper(), autoescape=True))
         .order_by(cases.c.updated_at.desc()).limit(50))
    with store.read() as conn:
        return [CompletionItem(r.id, help=r.state) for r in conn.execute(q)]


@_quiet
def complete_event(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    from caseflow.runtime.engine import Engine
    case_id = ctx.params.get("case_id")
    store = _store(ctx)
    if not case_id or store is None:
        return []
    snap = Engine(store, _catalog(ctx)).read_case(case_id)
    return [CompletionItem(t.event, help=t.label_zh) for t in snap.definition.transitions
            if snap.state in t.sources and not t.system and t.event.startswith(incomplete)]


@_quiet
def complete_user(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    org = _catalog(ctx).org
    return [CompletionItem(p.id, help=f"{p.name} {', '.join(sorted(p.roles))}") for p in org.people.values()
            if p.id.startswith(incomplete)]


# parameter name → completion; attached to every command that has such a parameter
BY_NAME = {"case_id": complete_case, "workflow": complete_workflow, "event": complete_event,
           "user": complete_user, "global_as": complete_user}


def attach(group: click.Group) -> None:
    for param in group.params:
        _attach_one(param)
    for command in group.commands.values():
        if isinstance(command, click.Group):
            attach(command)
        else:
            for param in command.params:
                _attach_one(param)


def _attach_one(param: click.Parameter) -> None:
    offer = BY_NAME.get(param.name or "")
    if offer is not None and getattr(param, "_custom_shell_complete", None) is None:
        param._custom_shell_complete = offer      # what click's `shell_complete=` argument sets


cli_app.PREPARE.append(attach)

__all__ = ["completion", "attach", "SHELLS"]
