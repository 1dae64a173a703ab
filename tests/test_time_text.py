"""The stored time text: the real time an audit row is recorded, in the one stored format."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from caseflow.values import format_datetime, format_now, parse_datetime

STORED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_the_recorded_time_is_the_real_time_in_the_stored_format():
    """format_now (cached per second) gives what format_datetime gives for a moment between the
    readings around it, across second boundaries, and reads back as that moment to the millisecond."""
    seen = set()
    deadline = time.monotonic() + 1.1        # spans at least one change of second
    while time.monotonic() < deadline:
        before = format_datetime(datetime.now(UTC))
        now = format_now()
        after = format_datetime(datetime.now(UTC))
        assert STORED.match(now), now
        assert before <= now <= after
        assert format_datetime(parse_datetime(now)) == now
        seen.add(now[:19])
    assert len(seen) >= 2
