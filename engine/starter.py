"""`caseflow init`: a starter workflows directory, and the JSON Schemas that describe its files.

Everything comes from the package itself (the shipped workflows and schemas are package
data), so it works from a wheel in an empty directory. The copies' editor modelines point at
the schema files written beside them, in DIR/schemas/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from caseflow.catalog import SHIPPED
from caseflow.definition.schema import SCHEMAS
from caseflow.errors import AlreadyExists, UsageError

KINDS = {"workflow": "a workflow file (one process)", "org": "org.yaml (roles and people)",
         "calendars": "calendars.yaml (working-time calendars)"}
_MODELINE = re.compile(r"^(# yaml-language-server: \$schema=)\.\./schemas/", re.MULTILINE)


def schema_text(kind: str) -> str:
    """The JSON Schema of one kind of file, as shipped."""
    if kind not in KINDS:
        raise UsageError(f"unknown schema {kind!r}: one of {', '.join(KINDS)}")
    return (SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8")


def schema(kind: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_text(kind))
    return data


def starter_files() -> dict[str, str]:
    """Relative path → text of every file `init` writes."""
    files = {p.name: _MODELINE.sub(r"\1schemas/", p.read_text(encoding="utf-8"))
             for p in sorted(SHIPPED.glob("*.yaml"))}
    files.update({f"schemas/{kind}.schema.json": schema_text(kind) for kind in KINDS})
    return files


def write_starter(directory: str | Path, force: bool = False) -> list[Path]:
    """Write the starter directory; refuse (nothing written) if a file would be overwritten, unless force."""
    root = Path(directory)
    files = starter_files()
    if not force:
        taken = sorted(name for name in files if (root / name).exists())
        if taken:
            raise AlreadyExists(str(root / taken[0]), len(taken))
    written = []
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


__all__ = ["KINDS", "schema", "schema_text", "starter_files", "write_starter"]
