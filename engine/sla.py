"""SLA clocks and timers (placeholder until the SLA module lands).

The runtime calls `on_transition` inside the same transaction as every state
change, and `clocks` when showing a case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from .audit import Entry
from .calendar import BusinessCalendar
from .model import Definition


def on_transition(conn: Connection, definition: Definition, calendar: BusinessCalendar | None,
                  case_id: str, event: str, source: str | None, dest: str,
                  data: dict[str, Any], now: datetime) -> list[Entry]:
    """Start, stop, pause, resume or restart the case's clocks; return audit entries."""
    return []


def clocks(conn: Connection, definition: Definition, calendar: BusinessCalendar | None,
           case_id: str, now: datetime) -> list[dict[str, Any]]:
    return []
