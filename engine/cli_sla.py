"""`caseflow sla …` commands (being written)."""

from __future__ import annotations

from .cli import cli  # noqa: F401
