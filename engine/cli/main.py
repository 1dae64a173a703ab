"""The `caseflow` console script: the group from app.py with every command module registered."""

from __future__ import annotations

from caseflow.cli import (  # noqa: F401  (importing a command module registers its commands)
    admin,
    audit,
    bulk,
    completion,
    demo,
    diff,
    export,
    migrate,
    read,
    sla,
    starter,
    verify,
    work,
)
from caseflow.cli.app import cli


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="caseflow", standalone_mode=True)


__all__ = ["cli", "main"]
