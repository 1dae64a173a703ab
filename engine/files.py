"""Reading the files operators and designers name: regular files only, never more than a limit.

A workflows directory or a `--data` argument may hold anything: a symlink to
/dev/zero (reads forever), a FIFO (opening it waits for a writer), a directory
named `x.yaml`. Every file caseflow reads on someone's word goes through
`read_bounded`: it is refused before it is opened unless it is a regular file
(symlinks followed), opened non-blocking, and read only up to the limit, so
the size is checked while reading, not after.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from caseflow.errors import DefinitionError
from caseflow.values import ValueProblem

MAX_BYTES = 1_000_000          # a workflow file or a --data file; a real one is a few KB


def read_bounded(path: str | Path, limit: int = MAX_BYTES) -> tuple[bytes, int]:
    """(at most `limit` + 1 bytes, the file's size) of a regular file; ValueProblem otherwise."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ValueProblem(f"not a regular file ({kind_of(info.st_mode)})")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))    # swapped for a FIFO meanwhile: no wait
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ValueProblem("not a regular file")
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise ValueProblem(f"cannot read file: {exc.strerror or exc}") from None
    return raw, (len(raw) if len(raw) <= limit else max(info.st_size, len(raw)))


def kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def check_regular(path: str | Path) -> None:
    """ValueProblem unless `path` is a regular file (symlinks followed); a missing file is the caller's OSError."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise ValueProblem(f"not a regular file ({kind_of(mode)})")


def read_workflow_bytes(path: str | Path, shown: str) -> tuple[bytes, int]:
    """`read_bounded` for YAML files (workflows, org.yaml, calendars.yaml): problems as file:1:1 errors."""
    try:
        return read_bounded(path, MAX_BYTES)
    except ValueProblem as exc:
        message = str(exc)
        if message == "not a regular file (a directory)":
            message = "is a directory, not a workflow file"
        elif message.startswith("not a regular file"):
            message = f"is {message}; workflow files are plain files"
        raise DefinitionError(message, file=shown, line=1, col=1) from None


def read_workflow_text(path: str | Path, shown: str) -> str:
    """A YAML file's text for hashing and caching, with the checks `read_source` applies."""
    raw, size = read_workflow_bytes(path, shown)
    if len(raw) > MAX_BYTES:
        raise DefinitionError(f"file is {size:,} bytes; workflow files are limited to {MAX_BYTES:,}",
                              file=shown, line=1, col=1, hint="is this the right file? a workflow is a few KB")
    return raw.decode("utf-8", errors="replace")





def check_output(output: str | Path, database_url: str, force: bool) -> Path:
    """Where `-o` may write: never the database itself (nor its -wal/-shm/-journal files), and an
    existing file only with --force. Raises UsageError naming the option."""
    from caseflow.errors import UsageError
    from caseflow.store.backend import backend_for
    target = Path(output)
    database = backend_for(database_url).database_file(database_url)
    if database is not None:
        companions = [database] + [database.with_name(database.name + s) for s in ("-wal", "-shm", "-journal")]
        if any(_same_file(target, c) for c in companions):
            raise UsageError(f"-o {output}: that is the database itself; write the output somewhere else")
    if os.path.lexists(target):
        if os.path.isdir(target):
            raise UsageError(f"-o {output}: is a directory")
        if not force:
            raise UsageError(f"-o {output}: the file exists; add --force to replace it")
    return target


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)     # a hard link to the database
    except OSError:
        return False

__all__ = ["MAX_BYTES", "read_bounded", "check_regular", "read_workflow_bytes", "read_workflow_text", "check_output"]
