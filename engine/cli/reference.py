"""docs/cli.md, the command reference: every command's --help, generated.

    python -m caseflow.cli.reference > docs/cli.md

tests/test_examples.py fails when docs/cli.md differs from this output, and runs every
example it shows (they are the --help examples).
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from caseflow.cli.app import prepare_tree
from caseflow.cli.main import cli

WIDTH = 100


def walk(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """(path, command) for the group itself and every command under it, in help order."""
    yield path, group
    for name in group.list_commands(click.Context(group)):
        command = group.commands[name]
        if isinstance(command, click.Group):
            yield from walk(command, path + (name,))
        else:
            yield path + (name,), command


def help_text(path: tuple[str, ...]) -> str:
    """What `caseflow PATH --help` prints, at a fixed width."""
    prepare_tree(cli)
    ctx = click.Context(cli, info_name="caseflow", terminal_width=WIDTH, max_content_width=WIDTH)
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
        ctx = click.Context(command, info_name=name, parent=ctx, terminal_width=WIDTH, max_content_width=WIDTH)
    return command.get_help(ctx)


def reference() -> str:
    prepare_tree(cli)
    out = ["# caseflow command reference", "",
           "Generated from each command's `--help` by `python -m caseflow.cli.reference > docs/cli.md`;",
           "`tests/test_examples.py` fails when this file is out of date and runs every example in it.", ""]
    paths = [path for path, _ in walk()]
    out += [f"- [`caseflow {' '.join(p)}`](#{_anchor(p)})".replace("caseflow `", "caseflow`") for p in paths]
    out.append("")
    for path in paths:
        out += [f"## caseflow {' '.join(path)}".rstrip(), "", "```text", help_text(path).rstrip(), "```", ""]
    return "\n".join(out)


def _anchor(path: tuple[str, ...]) -> str:
    return "-".join(("caseflow", *path))


if __name__ == "__main__":
    print(reference(), end="")
