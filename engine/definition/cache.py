"""Compiled definitions cached on disk by the sha256 of their text, so a CLI call does not recompile.

Compiling a workflow file (YAML, JSON Schema phase, lint, CEL) costs more than
the command that needs it; the result depends only on the file's text, the
organisation and calendars it was checked against, and caseflow's own code.
The key covers all of them, so a changed file, org.yaml or caseflow release
simply misses. Entries are pickles; a pickle runs code when it is loaded, so
the cache lives in a directory only the current user can write (created 0700,
refused when it or an entry is writable by anyone else or owned by someone
else) — the same trust as the user's own Python files.

Where: `$CASEFLOW_CACHE_DIR`, else `$XDG_CACHE_HOME/caseflow`, else
`~/.cache/caseflow`. `CASEFLOW_CACHE_DIR=off` turns the cache off. A cache
that cannot be used (read-only home, foreign owner, corrupt entry) is
skipped: the definition is compiled as if there were no cache.
"""

from __future__ import annotations

import copyreg
import hashlib
import os
import pickle
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from caseflow.definition.expressions import Environment

_PACKAGE = Path(__file__).resolve().parent
_fingerprint: str | None = None


def directory() -> Path | None:
    given = os.environ.get("CASEFLOW_CACHE_DIR")
    if given is not None:
        return None if given.strip().lower() in ("", "off", "0", "none") else Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "caseflow"


def code_fingerprint() -> str:
    """caseflow's definition code, its JSON Schemas and the CEL binding as installed: a change misses the cache."""
    global _fingerprint
    if _fingerprint is None:
        from cel_expr_python import cel  # its files stand for its version (importlib.metadata is slow)
        parts = [sys.version, str(pickle.HIGHEST_PROTOCOL)]
        schemas = sorted((_PACKAGE.parent / "schemas").glob("*.json"))       # a schema change re-checks files
        for path in sorted(_PACKAGE.glob("*.py")) + schemas + [_PACKAGE.parent / "catalog.py",
                                                               Path(str(cel.__file__))]:
            st = path.stat()
            parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
        _fingerprint = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return _fingerprint


def key(text_sha: str, org_sha: str, kind: str) -> str:
    return hashlib.sha256(f"{text_sha}|{org_sha}|{kind}|{code_fingerprint()}".encode()).hexdigest()


def _private(path: Path) -> bool:
    st = path.stat()
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def load(entry: str, expected: type) -> Any:
    """The cached object, if it is there, private to this user and of the expected type; else None."""
    where = directory()
    if where is None:
        return None
    path = where / f"{entry}.pickle"
    try:
        if not (_private(where) and _private(path)):
            return None
        with path.open("rb") as f:
            found = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None                    # missing or unreadable: compile instead
    return found if isinstance(found, expected) else None


def save(entry: str, value: Any) -> None:
    where = directory()
    if where is None:
        return
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(where):
            return
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, where / f"{entry}.pickle")       # atomic: a concurrent reader sees old or new
    except (OSError, pickle.PicklingError):
        return                         # a cache that cannot be written only costs the next call a compile


# -- pickling CEL environments (CEL's own objects do not pickle) ----------------------------

def environment(names: dict[str, str]) -> Environment:
    """An Environment rebuilt from the names of its variables' types."""
    return Environment({name: _type_named(type_name) for name, type_name in names.items()})


copyreg.pickle(Environment, lambda env: (environment, ({n: t.name() for n, t in env.variables.items()},)))


def _type_named(name: str) -> Any:
    """`MAP<STRING, LIST<INT>>` → the cel.Type (the inverse of `cel.Type.name()` for the types we use)."""
    from cel_expr_python import cel
    t = cel.Type
    name = name.strip()
    if name.startswith("LIST<") and name.endswith(">"):
        return t.List(_type_named(name[5:-1]))
    if name.startswith("MAP<") and name.endswith(">"):
        inner, depth = name[4:-1], 0
        for i, ch in enumerate(inner):
            depth += (ch == "<") - (ch == ">")
            if ch == "," and depth == 0:
                return t.Map(_type_named(inner[:i]), _type_named(inner[i + 1:]))
    return getattr(t, name, t.DYN)
