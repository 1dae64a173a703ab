"""Database URLs as operators give them: what messages may show, and what is refused.

A URL's password is never echoed (`shown_url`); a database that vanishes when the command ends
(in-memory SQLite) is refused, because its cases would be lost. Which URLs those are is the
backend's (`Backend.in_memory`, `Backend.database_file`, store/backend.py).
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from caseflow.errors import UsageError


def shown_url(url: str) -> str:
    """A database URL as messages show it: the password, if any, as `***` (never echoed)."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        # not parseable: hide whatever lies between `[scheme://]user:` and `@`
        return re.sub(r"^([^:/@]*://)?([^:/@]*):[^@]*@", r"\1\2:***@", url)
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def refuse_in_memory(url: str, in_memory: bool) -> None:
    """Cases must outlive the command (`in_memory`: the backend's verdict on the URL)."""
    if in_memory:
        raise UsageError(f"--db {url}: an in-memory database vanishes when the command ends; "
                         "give a file (sqlite:///caseflow.db)")


__all__ = ["shown_url", "refuse_in_memory"]
