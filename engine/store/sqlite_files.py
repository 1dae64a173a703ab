"""The SQLite backend's file handling (store/backend.py, `SQLiteBackend`): opening a file read-only,
a BEGIN IMMEDIATE that waits for the write lock as `LockWait` says (store/locks.py), and how the
driver binds NULL and booleans."""

from __future__ import annotations

import os
from typing import Any

from caseflow.errors import LockTimeout, StorageError
from caseflow.store.locks import NOTICE_AFTER, LockWait


def bind_none_and_bool_directly() -> None:
    """Adapters under which sqlite3 binds None and booleans the way it does anyway, only faster.

    sqlite3 binds an exact str, int, float or bytearray as it is, and takes any other value — None
    and bool among them — through its adapter lookup first: a missed lookup, then two attribute
    lookups that fail (`__adapt__`, `__conform__`), about 0.4 µs a value; an imported complaint binds
    17 NULLs and 4 booleans. With an adapter registered, the lookup finds it at once: None gives None,
    bound as NULL; a bool gives `int(value)`, 0 or 1, what sqlite3 binds for a bool without one. The
    registration is the sqlite3 module's, for the whole process; it changes no value any code binds."""
    import sqlite3
    sqlite3.register_adapter(type(None), _none)
    sqlite3.register_adapter(bool, int)


def _none(_value: None) -> None:
    return None


def begin_immediate(dbapi_conn: Any, wait: LockWait, *, unless_open: bool = False) -> None:
    """BEGIN IMMEDIATE waiting as `wait` says: busy after `first_ms` (the connection's busy timeout),
    the notice, then once more with the rest of the timeout; still busy: LockTimeout.
    `unless_open`: nothing if the connection is in a transaction already."""
    import sqlite3
    if unless_open and dbapi_conn.in_transaction:
        return
    for attempt in (1, 2):
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "database is locked" not in str(exc):
                raise
            if attempt == 2 or wait.timeout <= NOTICE_AFTER:
                raise LockTimeout(wait.timeout) from None
        finally:
            if attempt == 2:
                dbapi_conn.execute(f"PRAGMA busy_timeout = {wait.first_ms}")
        wait.told()
        dbapi_conn.execute(f"PRAGMA busy_timeout = {int((wait.timeout - NOTICE_AFTER) * 1000)}")


def open_read_only(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
    """`mode=ro`; when even that cannot read (a WAL file whose directory nobody may write, so SQLite
    cannot create the `-shm` index: a read-only evidence copy), `immutable=1`: nothing can change
    such a file, so reading it without locks is exact. A copy with a `-wal` file but no `-shm`
    is refused rather than read without the WAL's commits."""
    import sqlite3
    uri = cargs[0]
    conn = sqlite3.connect(uri, **cparams)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        path = _uri_path(uri)
        if not os.path.isfile(path):
            raise
        if os.path.exists(path + "-wal") and os.path.getsize(path + "-wal") > 0:
            raise StorageError(f"cannot read {path} read-only: it has a -wal file but no -shm file and its "
                               "directory is read-only; copy the database with `sqlite3 FILE '.backup COPY'` "
                               f"(SQLite: {exc})") from None
    return sqlite3.connect(uri + "&immutable=1", **cparams)


def _uri_path(uri: str) -> str:
    from urllib.parse import unquote
    return unquote(uri.removeprefix("file:").split("?", 1)[0])


__all__ = ["begin_immediate", "open_read_only"]
