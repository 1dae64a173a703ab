"""The `caseflow` console script: the group from app.py with every command module registered.

A command module is imported when its command is first looked up (`caseflow show` imports
cli/read.py only, not the verifier's z3 or the exporters), so start-up pays for the command
that runs. Listing the group (`caseflow --help`, completion, docs/cli.md) imports them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import click

from caseflow.cli.app import cli

# Each top-level command and the modules that register it and its subcommands (`report sla` is
# cli/sla.py's); tests/test_cli_startup.py checks this against the modules themselves.
LAZY: dict[str, tuple[str, ...]] = {
    "db": ("admin",), "org": ("admin",),
    "audit": ("audit",), "report": ("audit", "sla"),
    "import": ("bulk",),
    "completion": ("completion",),
    "demo": ("demo",),
    "diff": ("diff",),
    "export": ("export",),
    "migrate": ("migrate",),
    **{name: ("read",) for name in ("diagram", "history", "list", "show", "validate", "workflows")},
    "sla": ("sla",),
    "init": ("starter",), "schema": ("starter",),
    "verify": ("verify",),
    **{name: ("work",) for name in ("assign", "claim", "inbox", "release")},
}
MODULES = tuple(sorted({m for modules in LAZY.values() for m in modules}))


class LazyCommands(dict[str, click.Command]):
    """A group's command table that imports a command's module on its first lookup, and every
    module before the whole table is listed."""

    def __init__(self, found: Mapping[str, click.Command], lazy: dict[str, tuple[str, ...]]) -> None:
        super().__init__(found)
        self.lazy = {name: modules for name, modules in lazy.items() if name not in found}

    def _load(self, name: object) -> None:
        modules = self.lazy.pop(name, None) if isinstance(name, str) else None
        for module in modules or ():
            importlib.import_module(f"caseflow.cli.{module}")     # its decorators add its commands here

    def load_all(self) -> None:
        while self.lazy:
            self._load(next(iter(self.lazy)))

    def get(self, name: str, default: Any = None) -> Any:
        self._load(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> click.Command:
        self._load(name)
        return super().__getitem__(name)

    def __contains__(self, name: object) -> bool:
        self._load(name)
        return super().__contains__(name)

    def __iter__(self) -> Iterator[str]:
        self.load_all()
        return super().__iter__()

    def __len__(self) -> int:
        self.load_all()
        return super().__len__()

    def keys(self) -> Any:
        self.load_all()
        return super().keys()

    def values(self) -> Any:
        self.load_all()
        return super().values()

    def items(self) -> Any:
        self.load_all()
        return super().items()


if not isinstance(cli.commands, LazyCommands):
    cli.commands = LazyCommands(cli.commands, LAZY)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="caseflow", standalone_mode=True)


__all__ = ["cli", "main", "LAZY", "LazyCommands"]
