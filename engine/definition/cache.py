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

Bounded: an entry is `<build>-<key>.pickle`, `<build>` naming the code
fingerprint that wrote it. Every save (a save follows a compile, so the
commands that only read never pay for it) prunes the directory: entries of
another build (an older caseflow, or another install sharing the directory)
and the older unprefixed layout go once they are a day old; then, newest
first, at most MAX_ENTRIES entries and MAX_BYTES are kept. A hit refreshes an
entry's mtime when it is an hour old, so "oldest" means "least recently
used". Only caseflow's own files are ever removed, and only from a directory
that passes the checks above: regular files owned by this user (never a link),
named as an entry (another build's must also start as a pickle of a caseflow
class), or a `.caseflow-tmp-` write an hour old. `prune` does the same for
the verification records (verification/record.py).
"""

from __future__ import annotations

import copyreg
import hashlib
import os
import pickle
import re
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from caseflow.definition.expressions import Environment

_PACKAGE = Path(__file__).resolve().parent
_fingerprint: str | None = None

MAX_ENTRIES = 256                  # compiled definitions kept (a shipped one is ~40 KB)
MAX_BYTES = 32 * 1024 * 1024       # and at most this much of them
OTHER_BUILD_DAYS = 1               # another build's entries are left alone this long (two installs, one cache)
TOUCH_AFTER_S = 3600               # a hit refreshes an entry's mtime when it is older than this
TMP_PREFIX = ".caseflow-tmp-"      # a write in progress; one a crash left behind goes after an hour
_ENTRY = re.compile(r"(?:([0-9a-f]{16})-)?[0-9a-f]{64}\.pickle")


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
    """The entry's name: this build's fingerprint, then a digest of everything the compiled object depends on."""
    build = code_fingerprint()
    return f"{build[:16]}-" + hashlib.sha256(f"{text_sha}|{org_sha}|{kind}|{build}".encode()).hexdigest()


def private(path: Path, st: os.stat_result | None = None) -> bool:
    """Owned by this user and writable by nobody else (`st`: its stat, if already made)."""
    st = st or path.stat()
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def touch_if_old(path: Path, st: os.stat_result) -> None:
    """Mark a hit (least recently used goes first), at most once an hour per entry: reads stay reads."""
    if st.st_mtime < time.time() - TOUCH_AFTER_S:
        try:
            os.utime(path)
        except OSError:
            return                     # a read-only cache still serves; it only ages


def load(entry: str, expected: type) -> Any:
    """The cached object, if it is there, private to this user and of the expected type; else None."""
    where = directory()
    if where is None:
        return None
    path = where / f"{entry}.pickle"
    try:
        st = path.stat()
        if not (private(where) and private(path, st)):
            return None
        with path.open("rb") as f:
            found = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None                    # missing or unreadable: compile instead
    if not isinstance(found, expected):
        return None
    touch_if_old(path, st)
    return found


def save(entry: str, value: Any) -> None:
    where = directory()
    if where is None:
        return
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not private(where):
            return
        fd, tmp = tempfile.mkstemp(dir=where, prefix=TMP_PREFIX)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, where / f"{entry}.pickle")       # atomic: a concurrent reader sees old or new
    except (OSError, pickle.PicklingError):
        return                         # a cache that cannot be written only costs the next call a compile
    prune(where, _pickle_entry, keep=f"{entry}.pickle")


def _pickle_entry(name: str, path: Path) -> bool | None:
    """True: this build's entry; False: caseflow's, but another build's (or the older layout); None: not ours."""
    found = _ENTRY.fullmatch(name)
    if found is None:
        return None
    if found.group(1) == code_fingerprint()[:16]:
        return True
    try:
        with path.open("rb") as f:
            head = f.read(256)
    except OSError:
        return None
    return False if head.startswith(b"\x80") and b"caseflow." in head else None   # a pickle of our classes


def prune(where: Path, entry: Callable[[str, Path], bool | None], keep: str, *,
          max_entries: int | None = None, max_bytes: int | None = None) -> list[str]:
    """Remove caseflow's surplus entries from `where` (see the module docstring); the names removed.

    `entry(name, path)` says whether a file is one of this build's entries (True), one caseflow
    wrote but this build cannot use (False), or anything else (None: never touched). `keep` (the
    entry just written) always stays. Nothing happens unless `where` is private to this user.
    """
    try:
        if not private(where):
            return []
        names = os.listdir(where)
    except OSError:
        return []
    max_entries = MAX_ENTRIES if max_entries is None else max_entries
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    now, euid = time.time(), os.geteuid()
    found: list[tuple[float, int, str, bool]] = []
    for name in names:
        path = where / name
        try:
            st = path.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_uid != euid:
            continue                   # links, directories, other people's files: never ours to remove
        if name.startswith(TMP_PREFIX):
            if st.st_mtime < now - TOUCH_AFTER_S:
                found.append((st.st_mtime, st.st_size, name, False))
            continue
        if name == keep:
            continue
        current = entry(name, path)
        if current is None:
            continue
        found.append((st.st_mtime, st.st_size, name, current))
    doomed = [name for mtime, _, name, current in found
              if not current and (name.startswith(TMP_PREFIX) or mtime < now - OTHER_BUILD_DAYS * 86400)]
    kept = sorted((x for x in found if x[2] not in doomed and not x[2].startswith(TMP_PREFIX)), reverse=True)
    try:
        size = (where / keep).stat().st_size
    except OSError:
        size = 0
    count = 1
    for _, bytes_, name, _ in kept:        # newest first
        count, size = count + 1, size + bytes_
        if count > max_entries or size > max_bytes:
            doomed.append(name)
    removed = []
    for name in doomed:
        try:
            os.unlink(where / name)
        except OSError:
            continue                   # gone already (another process pruned it) or not ours to remove
        removed.append(name)
    return removed


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
